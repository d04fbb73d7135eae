"""Runs the agent's devices: builds drivers from config, feeds their readings to the outbox,
turns their health into metrics and availability events, routes commands to them.

A driver recovers from transport errors itself; an exception escaping ``run`` is a driver fault,
logged, counted, and answered with a restart after a delay, so one broken device never stops the
others or the agent.

When the outbox cannot commit an event (a full disk, its reserve used up) the device's sink
raises :class:`~devices.base.ReadingRefused` and the device keeps the event for later; an
availability event refused that way is kept here and handed again by :meth:`DeviceSupervisor.retry`
or the device's next frame.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from devices.base import (
    CommandRejected,
    Device,
    DeviceConfig,
    DeviceConfigError,
    DeviceReading,
    ReadingRefused,
)
from edge_agent.outbox import EventsRefusedError, Reading
from edge_agent.wire import AVAILABILITY_KIND, MessageClass
from monitoring.agent_metrics import AgentMetrics

log = logging.getLogger(__name__)

# Device class -> module whose create_device(DeviceConfig) builds its driver.
DEVICE_CLASSES: Mapping[str, str] = {
    "cabinet": "devices.cabinet",
    "wristband": "devices.wristband",
    "gps": "devices.gps",
}
RESTART_DELAY_SECONDS = 5.0
# Telemetry waits this long to share one outbox transaction with its neighbours; 50 bands at 1 Hz
# otherwise cost a commit each. Events never wait (a cabinet acknowledges its cursor only after
# the sink has taken the event).
TELEMETRY_BATCH_SECONDS = 0.05

Submit = Callable[[list[Reading]], object]


class DeviceSetupError(ValueError):
    """A ``[[devices]]`` table that cannot be built; ``key`` is ``devices[i].option``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def build_devices(configs: Sequence[DeviceConfig]) -> list[tuple[DeviceConfig, Device]]:
    built: list[tuple[DeviceConfig, Device]] = []
    for index, config in enumerate(configs):
        module_name = DEVICE_CLASSES.get(config.kind)
        if module_name is None:
            raise DeviceSetupError(
                f"devices[{index}].kind",
                f"unknown device class {config.kind!r} (one of {', '.join(DEVICE_CLASSES)})",
            )
        factory: Callable[[DeviceConfig], Device] = importlib.import_module(
            module_name
        ).create_device
        try:
            built.append((config, factory(config)))
        except DeviceConfigError as exc:
            raise DeviceSetupError(
                f"devices[{index}].{exc.key}", str(exc).partition(": ")[2]
            ) from None
    return built


class _Health:
    """One device's health, as metrics and as availability events on change."""

    def __init__(self, config: DeviceConfig, metrics: AgentMetrics, submit: Submit) -> None:
        self._config = config
        self._metrics = metrics
        self._submit = submit
        self._online: bool | None = None
        # The availability the outbox has taken; differs from _online while one is refused.
        self._reported: bool | None = None
        # The labelled children, looked up once: frame() runs for every frame of every band.
        self._frames = metrics.device_frames.labels(config.id)
        self._last_seen = metrics.device_last_seen.labels(config.id)
        self._online_gauge = metrics.device_online.labels(config.id)
        self._online_gauge.set(0)

    def frame(self) -> None:
        self._frames.inc()
        self._last_seen.set(time.time())
        if self._reported != self._online:
            self.retry()

    def error(self, kind: str) -> None:
        self._metrics.device_errors.labels(self._config.id, kind[:32]).inc()

    def available(self, online: bool) -> None:
        if online == self._online:
            return
        self._online = online
        self._online_gauge.set(1 if online else 0)
        self.retry()

    def retry(self) -> None:
        """Hand the current availability to the outbox unless it already has it."""
        online = self._online
        if online is None or online == self._reported:
            return
        body = {"online": online, "class": self._config.kind}
        try:
            self._submit(
                [
                    Reading(
                        self._config.id,
                        AVAILABILITY_KIND,
                        MessageClass.EVENT,
                        datetime.now(UTC),
                        json.dumps(body),
                    )
                ]
            )
        except EventsRefusedError:
            return  # kept: the next frame, change or retry() hands it again
        self._reported = online


class DeviceSupervisor:
    def __init__(
        self, devices: Sequence[tuple[DeviceConfig, Device]], metrics: AgentMetrics, submit: Submit
    ) -> None:
        self._devices = {config.id: (config, device) for config, device in devices}
        self._metrics = metrics
        self._submit = submit
        self._pending: list[Reading] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._health: dict[str, _Health] = {}

    def retry(self) -> None:
        """Hand again what the outbox refused (called when the disk has room again)."""
        for health in self._health.values():
            health.retry()

    def flush(self) -> None:
        """Hand waiting telemetry to the outbox now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._pending:
            pending, self._pending = self._pending, []
            self._submit(pending)

    def _submit_in_order(self, readings: list[Reading]) -> object:
        self.flush()
        return self._submit(readings)

    def _sink(self, reading: DeviceReading) -> None:
        try:
            body = json.dumps(reading.body, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            log.exception("device %s produced a reading that is not JSON", reading.device)
            self._metrics.device_errors.labels(reading.device, "unserialisable").inc()
            return
        cls = MessageClass.EVENT if reading.event else MessageClass.TELEMETRY
        self._pending.append(Reading(reading.device, reading.kind, cls, reading.time, body))
        if reading.event:
            try:
                self.flush()
            except EventsRefusedError as exc:
                raise ReadingRefused(str(exc)) from exc
            return
        if self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_timer = loop.call_later(TELEMETRY_BATCH_SECONDS, self.flush)

    async def run(self) -> None:
        """Run every device until cancelled."""
        if not self._devices:
            return
        try:
            async with asyncio.TaskGroup() as group:
                for config, device in self._devices.values():
                    group.create_task(self._supervise(config, device), name=f"device-{config.id}")
        finally:
            self.flush()

    async def _supervise(self, config: DeviceConfig, device: Device) -> None:
        health = _Health(config, self._metrics, self._submit_in_order)
        self._health[config.id] = health
        while True:
            try:
                await device.run(self._sink, health)
                log.warning("device %s driver returned; restarting it", config.id)
            except Exception:
                log.exception(
                    "device %s driver failed; restarting it in %.0f s",
                    config.id,
                    RESTART_DELAY_SECONDS,
                )
            health.available(False)
            self._metrics.device_restarts.labels(config.id).inc()
            await asyncio.sleep(RESTART_DELAY_SECONDS)

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Route a device command; ``args["device"]`` names the device."""
        device_id = args.get("device")
        entry = self._devices.get(device_id) if isinstance(device_id, str) else None
        if entry is None:
            raise CommandRejected(f"no device {device_id!r} on this agent")
        return await entry[1].command(name, args)
