"""The edge agent process: outbox, uplink, sources and its own metrics, under one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from devices.base import Device, DeviceConfig
from edge_agent.device_supervisor import DeviceSupervisor
from edge_agent.health import HealthReporter
from edge_agent.outbox import DiskFullError, EventsRefusedError, Outbox, PutResult, Reading
from edge_agent.reserve import Reserve, free_bytes
from edge_agent.settings import AgentSettings
from edge_agent.settings_source import parse_host_port
from edge_agent.synthetic import run_synthetic
from edge_agent.tls import CertificateWatch
from edge_agent.uplink import CommandHandler, Uplink
from edge_agent.wire import REPLAY_COMMAND, MessageClass, WireError, decode_replay_args
from monitoring.agent_metrics import AgentMetrics

log = logging.getLogger(__name__)

METRICS_REFRESH_SECONDS = 1.0
# The certificate file is read again this often (it may be renewed in place), and a near expiry
# is logged at most this often.
CERTIFICATE_CHECK_SECONDS = 60.0
CERTIFICATE_WARN_EVERY = timedelta(hours=6)
# Device name of the agent's own events (health, alarms about itself).
AGENT_DEVICE = "agent"


async def _ping(args: Mapping[str, Any]) -> dict[str, Any]:
    return {"pong": True, "echo": args.get("echo")}


# Commands the centre addresses to one of the agent's devices (args["device"]).
DEVICE_COMMANDS = ("unlock", "clear_tamper")


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        registry: CollectorRegistry,
        devices: Sequence[tuple[DeviceConfig, Device]] = (),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = AgentMetrics.create(registry)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            settings.data_dir / "outbox.sqlite3",
            settings.id,
            max_rows=settings.outbox_max,
            keep_sent=settings.replay_keep,
            sync=settings.outbox_sync,
            keep_sent_bytes=settings.replay_keep_bytes,
            wal_max_bytes=settings.wal_max_bytes,
            reserve=Reserve(settings.data_dir / "outbox.reserve", settings.disk_reserve_bytes),
        )
        # The disk_full state the agent has reported (gauge, event); the outbox's may be newer.
        self._disk_full_reported = False
        # The agent's own events the outbox refused, handed again at the next check.
        self._own_events: list[Reading] = []
        self.wakeup = asyncio.Event()
        self.devices = DeviceSupervisor(devices, self.metrics, self.submit)
        handlers: dict[str, CommandHandler] = {"ping": _ping, REPLAY_COMMAND: self._replay}
        for name in DEVICE_COMMANDS:
            handlers[name] = functools.partial(self.devices.command, name)
        # The certificate's expiry as last read (None: no certificate, or unreadable).
        self.certificate_expires: datetime | None = None
        self.health = HealthReporter(self.outbox, lambda: self.certificate_expires)
        self.uplink = Uplink(
            settings, self.outbox, self.metrics, self.wakeup, handlers, self.health.take
        )
        self.certificate = (
            CertificateWatch(
                settings.tls_cert,
                timedelta(days=settings.tls_expiry_warning_days),
                CERTIFICATE_WARN_EVERY,
            )
            if settings.tls_cert is not None
            else None
        )
        self._certificate_checked = -CERTIFICATE_CHECK_SECONDS

    async def _replay(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``first..last`` again: the centre found them missing."""
        try:
            replay = decode_replay_args(dict(args))
        except WireError as exc:
            raise ValueError(f"replay needs integers 1 <= first <= last: {exc.detail}") from None
        # Numbers of another epoch are another disk's: requeueing ours would send other readings.
        # A centre of the previous release names no epoch; it cannot tell them apart anyway.
        if replay.epoch is not None and replay.epoch != self.outbox.epoch:
            raise ValueError(
                f"replay for epoch {replay.epoch}, but this outbox is epoch {self.outbox.epoch}"
            )
        first, last = replay.first, replay.last
        requeued = self.outbox.requeue(first, last)
        if requeued:
            self.uplink.requeued(first)
        log.info("replay %d..%d requested: %d messages requeued", first, last, requeued)
        return {"requeued": requeued, "oldest_kept": self.outbox.oldest_kept()}

    def submit(self, readings: list[Reading]) -> PutResult:
        """Hand readings to the outbox; the uplink is woken to publish them.

        Raises :class:`EventsRefusedError` when the disk is full and not even the reserve holds
        the events: the caller keeps them and hands them again later.
        """
        was_full = self.outbox.full
        try:
            result = self.outbox.put(readings)
        except EventsRefusedError as exc:
            self._count_refused(exc.telemetry_refused)
            self.metrics.events_refused.inc(len(exc.events))
            self._sync_disk_state()
            raise
        if self.outbox.full and not was_full:
            # The alarm travels as an event, which the full outbox still accepts.
            self._own_event(
                "outbox_full",
                {
                    "events_waiting": self.outbox.depth[MessageClass.EVENT],
                    "bound": self.outbox.max_rows,
                },
            )
        if result.dropped_oldest:
            self.metrics.dropped.labels("telemetry", "outbox_full_oldest").inc(
                result.dropped_oldest
            )
        if result.refused:
            self.metrics.dropped.labels("telemetry", "outbox_full_refused").inc(result.refused)
        self._count_refused(result.refused_disk_full)
        self._sync_disk_state()
        self.wakeup.set()
        return result

    def _count_refused(self, telemetry: int) -> None:
        if telemetry:
            self.metrics.dropped.labels("telemetry", "disk_full").inc(telemetry)

    def _own_event(self, kind: str, body: Mapping[str, Any]) -> None:
        """Queue an event about the agent itself and hand over every one still waiting."""
        self._own_events.append(
            Reading(AGENT_DEVICE, kind, MessageClass.EVENT, datetime.now(UTC), json.dumps(body))
        )
        self._flush_own_events()

    def _flush_own_events(self) -> None:
        if not self._own_events:
            return
        try:
            self.outbox.put(self._own_events)
        except EventsRefusedError:
            return  # kept, in order, for the next disk check
        self._own_events = []
        self.wakeup.set()

    def _sync_disk_state(self) -> None:
        """Report a change of the outbox's disk state: the gauge and a ``disk_full`` event.

        The outbox logs the one warning of an episode when it begins; the event is committed
        from the reserve the outbox has just released.
        """
        full = self.outbox.disk_full
        if full == self._disk_full_reported:
            return
        self._disk_full_reported = full
        self.metrics.disk_full.set(1 if full else 0)
        if full:
            self._own_event(
                "disk_full",
                {
                    "free_bytes": free_bytes(self.settings.data_dir),
                    "reserve_bytes": self.outbox.reserve.size,
                    "events_waiting": self.outbox.depth[MessageClass.EVENT],
                },
            )

    def check_disk(self) -> None:
        """The periodic disk check: bound the log, end an episode when there is room again."""
        if self.outbox.check_space():
            resend_from = self.outbox.take_resend_from()
            if resend_from is not None:
                self.uplink.requeued(resend_from)
            self.devices.retry()
        self._flush_own_events()
        self._sync_disk_state()

    async def _disk_loop(self) -> None:
        while True:
            self.check_disk()
            await asyncio.sleep(self.settings.disk_check_interval)

    def refresh_metrics(self) -> None:
        for cls in MessageClass:
            self.metrics.outbox_depth.labels(cls.value).set(self.outbox.depth[cls])
        self.metrics.outbox_oldest_age.set(self.outbox.oldest_age(time.time()))
        self.metrics.outbox_full.set(1 if self.outbox.full else 0)
        now = time.monotonic()
        if self.certificate is not None and now - self._certificate_checked >= (
            CERTIFICATE_CHECK_SECONDS
        ):
            self._certificate_checked = now
            expiry = self.certificate.check(datetime.now(UTC))
            if expiry is not None:
                self.certificate_expires = expiry
                self.metrics.certificate_expiry.set(expiry.timestamp())
        # A disk found full by the uplink (an acknowledgement it could not write) shows at once.
        self._sync_disk_state()

    async def _refresh_loop(self) -> None:
        while True:
            self.refresh_metrics()
            await asyncio.sleep(METRICS_REFRESH_SECONDS)

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "agent %s: epoch %s, session %d, %d messages waiting",
            self.settings.id,
            self.outbox.epoch,
            self.outbox.session,
            self.outbox.total_depth,
        )
        # Before the first connect: the first birth carries the certificate's expiry.
        self.refresh_metrics()
        try:
            async with asyncio.TaskGroup() as group:
                uplink = group.create_task(self.uplink.run(), name="uplink")
                helpers = [
                    group.create_task(self._refresh_loop(), name="metrics-refresh"),
                    group.create_task(self._disk_loop(), name="disk-check"),
                    group.create_task(self.devices.run(), name="devices"),
                ]
                if self.settings.synthetic > 0:
                    helpers.append(
                        group.create_task(
                            run_synthetic(
                                self.settings.synthetic,
                                self.settings.synthetic_event_every,
                                self.submit,
                            ),
                            name="synthetic-source",
                        )
                    )
                await stop.wait()
                for task in helpers:
                    task.cancel()
                self.uplink.stop()
                await uplink
        finally:
            self.refresh_metrics()
            self.outbox.close()


async def _open_agent(
    settings: AgentSettings, devices: Sequence[tuple[DeviceConfig, Device]]
) -> Agent:
    """The agent, once its outbox can be opened: on a disk without room (and no reserve left
    from an earlier run) it waits for room instead of exiting, which would only start a loop of
    restarts that fail the same way."""
    warned = False
    while True:
        try:
            return Agent(settings, CollectorRegistry(), devices)
        except DiskFullError as exc:
            if not warned:
                warned = True
                log.warning(
                    "disk full: %s; waiting for room, checking every %.1f s",
                    exc,
                    settings.disk_check_interval,
                )
        await asyncio.sleep(settings.disk_check_interval)


async def run_agent(
    settings: AgentSettings, devices: Sequence[tuple[DeviceConfig, Device]] = ()
) -> None:
    settings.check_files()
    agent = await _open_agent(settings, devices)
    registry = agent.registry
    server = None
    if settings.metrics_listen:
        host, port = parse_host_port(settings.metrics_listen, "metrics_listen")
        server, _thread = start_http_server(port, addr=host, registry=registry)
        log.info("agent metrics on http://%s:%d/metrics", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await agent.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if server is not None:
            with contextlib.suppress(Exception):
                server.shutdown()
