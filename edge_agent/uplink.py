"""MQTT uplink: drains the outbox to the broker and executes commands from the centre.

One connection attempt is one fresh ``aiomqtt.Client`` (a client cannot be re-entered after a
failure). Attempts are spaced by :class:`~devices.backoff.Backoff`. An attempt that ends without
a clean disconnect resets its socket (see :func:`_abort_socket`).

On each connection the rows already in the outbox are the *backlog*; rows that arrive while
connected are *live*. Every round fills the publish window with live rows first and tops it up
with backlog rows, at most ``backlog_rate`` per second, so a long backlog after an outage never
holds back a fresh tamper alarm. Within each lane rows go out in sequence order, at QoS 1, and a
row counts as sent only after its PUBACK. Rows the centre asks for again (``replay``) rejoin the
backlog lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from devices.backoff import Backoff
from edge_agent.broker_outage import SESSION_TAKEN_OVER, BrokerOutage, ClientIdClash
from edge_agent.outbox import Outbox, Pending
from edge_agent.settings import AgentSettings
from edge_agent.wire import (
    Ack,
    Channel,
    Health,
    HealthReport,
    MessageClass,
    Status,
    WireError,
    decode_command,
    topic,
)
from monitoring.agent_metrics import AgentMetrics

log = logging.getLogger(__name__)

CommandHandler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]

_DATA_CHANNEL = {MessageClass.EVENT: Channel.EVENT, MessageClass.TELEMETRY: Channel.TELEMETRY}
# Bound on the final offline notice and disconnect during a clean stop.
_STOP_DEADLINE = 3.0
_COMMAND_DEADLINE = 30.0


# SO_LINGER on, 0 seconds: close() sends a reset and discards whatever is still queued.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def _abort_socket(client: aiomqtt.Client) -> None:
    """Reset the socket of an attempt that did not end with a clean disconnect.

    aiomqtt 2.5 leaves the socket open when ``__aenter__`` times out waiting for the CONNACK
    (until paho's keepalive check, one keepalive later), and offers no public way to close it.
    A plain close is not enough either: during a blackhole the kernel keeps retransmitting the
    queued CONNECT, which at the heal would take over the session of the agent's newer
    connection. A reset discards it.
    """
    paho = client._client  # no public accessor in aiomqtt 2.5
    sock = paho.socket()
    if sock is None:  # never opened, or closed after a clean DISCONNECT
        return
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    # paho's close also runs aiomqtt's socket-close callback (reader removed, misc task ended).
    paho._sock_close()


class _TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self, wanted: int) -> int:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted


class Uplink:
    def __init__(
        self,
        settings: AgentSettings,
        outbox: Outbox,
        metrics: AgentMetrics,
        wakeup: asyncio.Event,
        handlers: Mapping[str, CommandHandler],
        health: Callable[[], Health] | None = None,
    ) -> None:
        self._settings = settings
        self._health = health
        self._outbox = outbox
        self._metrics = metrics
        self._wakeup = wakeup
        self._handlers = dict(handlers)
        self._stopping = asyncio.Event()
        self._connection = 0
        # Publishing lanes: live rows are above _live_cursor; backlog rows at or below it and
        # above _backlog_cursor, while _backlog_pending.
        self._live_cursor = 0
        self._backlog_cursor = 0
        self._backlog_pending = False
        self._requeued_from: int | None = None
        # Set by the publish loop whenever it finds nothing to send.
        self._idle = asyncio.Event()
        self._topics = {cls: topic(settings.id, ch) for cls, ch in _DATA_CHANNEL.items()}
        self._status_topic = topic(settings.id, Channel.STATUS)
        self._health_topic = topic(settings.id, Channel.HEALTH)
        self.connected = asyncio.Event()
        self._outage = BrokerOutage(repeat_every=settings.backoff_max)
        self._clash = ClientIdClash()
        self._connected_at: float | None = None
        self._identifier = f"precinct-agent-{settings.id}"

    def stop(self) -> None:
        self._stopping.set()

    def requeued(self, first_seq: int) -> None:
        """Rows from ``first_seq`` on were made unsent again: send them through the backlog."""
        # Applied at the top of the next round, so a round in flight cannot undo it.
        self._requeued_from = min(first_seq, self._requeued_from or first_seq)
        self._wakeup.set()

    def _status(self, *, online: bool, reason: str | None = None) -> bytes:
        # A birth tells the centre at once how the agent fared while it was away (its backlog);
        # a will is written at connect time, when its health would already be stale.
        health = self._health() if online and reason is None and self._health else None
        return Status(
            agent=self._settings.id,
            online=online,
            session=self._outbox.session,
            connection=self._connection,
            time=datetime.now(UTC),
            station=self._settings.station,
            reason=reason,
            epoch=self._outbox.epoch,
            first_seq=self._outbox.first_seq,
            health=health,
        ).encode()

    async def _health_loop(self, client: aiomqtt.Client) -> None:
        """Every ``health_interval`` seconds while connected, the agent's health."""
        assert self._health is not None
        while True:
            await asyncio.sleep(self._settings.health_interval)
            report = HealthReport(
                self._settings.id, self._outbox.epoch, self._outbox.session, self._health()
            )
            await client.publish(
                self._health_topic,
                report.encode(),
                qos=1,
                timeout=self._settings.publish_timeout,
            )

    def _client(self) -> aiomqtt.Client:
        url = self._settings.broker_url
        settings = self._settings
        tls = None
        if url.tls:
            # Read again on every attempt: a certificate renewed in place is used at the next
            # connection.
            tls = aiomqtt.TLSParameters(
                ca_certs=str(settings.tls_ca) if settings.tls_ca else None,
                certfile=str(settings.tls_cert) if settings.tls_cert else None,
                keyfile=str(settings.tls_key) if settings.tls_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client = aiomqtt.Client(
            url.host,
            url.port,
            username=url.username,
            password=url.password,
            identifier=self._identifier,
            # A persistent session keeps commands queued at the broker while the agent is away;
            # each command's expiry decides whether it still runs.
            clean_session=False,
            will=aiomqtt.Will(
                self._status_topic, self._status(online=False, reason="lost"), qos=1, retain=True
            ),
            keepalive=self._settings.keepalive,
            timeout=self._settings.connect_timeout,
            max_inflight_messages=self._settings.publish_window,
            tls_params=tls,
        )
        # The publish window keeps many QoS 1 publishes pending on purpose.
        client.pending_calls_threshold = 2 * self._settings.publish_window
        return client

    async def run(self) -> None:
        """Connect, publish, reconnect; returns after :meth:`stop`."""
        backoff = Backoff(
            self._settings.backoff_initial,
            self._settings.backoff_max,
            self._settings.backoff_jitter,
        )
        attempts = 0
        while not self._stopping.is_set():
            if attempts:
                self._metrics.reconnects.inc()
            attempts += 1
            self._connection += 1
            try:
                await self._connected_session(backoff)
            except* (aiomqtt.MqttError, TimeoutError, OSError) as group:
                self._lost(group.exceptions[0])
            finally:
                self.connected.clear()
                self._metrics.connected.set(0)
            if self._stopping.is_set():
                break
            delay = backoff.next_delay()
            log.debug("reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def _lost(self, error: BaseException) -> None:
        if self._connected_at is None:  # the attempt failed before the broker accepted it
            self._report_failure(error, lost=False)
            return
        now = time.monotonic()
        taken_over = isinstance(error, aiomqtt.MqttCodeError) and error.rc == SESSION_TAKEN_OVER
        verdict = self._clash.lost(lasted=now - self._connected_at, taken_over=taken_over, now=now)
        self._connected_at = None
        if verdict.reported:
            log.error(
                "another client uses the MQTT client id %r (%s): two agents with one id knock "
                "each other off the broker; give each agent its own id",
                self._identifier,
                "the broker says the session was taken over"
                if taken_over
                else "the broker closes each connection within seconds of accepting it",
            )
        elif verdict.clash:
            log.debug("session of %s taken again: %s", self._identifier, error)
        else:
            self._report_failure(error, lost=True)

    def _report_failure(self, error: BaseException, *, lost: bool) -> None:
        """Log an outage once, then at the backoff's cap while it lasts (BrokerOutage)."""
        report = self._outage.failed(time.monotonic())
        if report is None:
            log.debug("broker %s unreachable: %s", self._settings.broker_url, error)
        elif lost:
            log.warning("broker connection to %s lost: %s", self._settings.broker_url, error)
        elif report.first:
            log.warning(
                "broker %s unreachable: %s (retrying; reported again every %.0f s while it lasts)",
                self._settings.broker_url,
                error,
                self._outage.repeat_every,
            )
        else:
            log.warning(
                "broker %s still unreachable after %.0f s (%d failures): %s",
                self._settings.broker_url,
                report.seconds,
                report.attempts,
                error,
            )

    async def _connected_session(self, backoff: Backoff) -> None:
        client = self._client()
        try:
            await self._session(client, backoff)
        finally:
            _abort_socket(client)

    async def _session(self, client: aiomqtt.Client, backoff: Backoff) -> None:
        async with client:
            await client.subscribe(
                topic(self._settings.id, Channel.COMMAND),
                qos=1,
                timeout=self._settings.publish_timeout,
            )
            await client.publish(
                self._status_topic,
                self._status(online=True),
                qos=1,
                retain=True,
                timeout=self._settings.publish_timeout,
            )
            backoff.reset()
            recovery = self._outage.connected(time.monotonic())
            if recovery is not None:
                log.info(
                    "connected to broker %s again after %.1f s (%d failures)",
                    self._settings.broker_url,
                    recovery.seconds,
                    recovery.attempts,
                )
            self.connected.set()
            self._metrics.connected.set(1)
            self._connected_at = time.monotonic()
            # While two agents take one session from each other this repeats every second.
            (log.debug if self._clash.suspected else log.info)(
                "connected to %s (epoch %s, session %d, connection %d)",
                self._settings.broker_url,
                self._outbox.epoch,
                self._outbox.session,
                self._connection,
            )
            async with asyncio.TaskGroup() as group:
                publisher = group.create_task(self._publish_loop(client), name="uplink-publish")
                commands = group.create_task(self._command_loop(client), name="uplink-commands")
                health = None
                if self._health is not None and self._settings.health_interval > 0:
                    health = group.create_task(self._health_loop(client), name="uplink-health")
                await self._stopping.wait()
                # The sources have stopped: give what is still unsent a bounded chance to go.
                await self._drain(_STOP_DEADLINE)
                publisher.cancel()
                commands.cancel()
                if health is not None:
                    health.cancel()
            # A clean stop says so explicitly; the will covers every other way of going away.
            await client.publish(
                self._status_topic,
                self._status(online=False, reason="stopped"),
                qos=1,
                retain=True,
                timeout=_STOP_DEADLINE,
            )

    async def _drain(self, deadline: float) -> None:
        # Clear first and wake the loop: an idle flag from before the last readings means nothing.
        self._idle.clear()
        self._wakeup.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=deadline)

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        window = self._settings.publish_window
        self._live_cursor = self._outbox.last_seq
        self._backlog_cursor = 0
        self._backlog_pending = True
        bucket = _TokenBucket(
            self._settings.backlog_rate,
            burst=max(1.0, min(float(window), self._settings.backlog_rate)),
        )
        while True:
            if self._requeued_from is not None:
                self._backlog_cursor = min(self._backlog_cursor, self._requeued_from - 1)
                self._backlog_pending = True
                self._requeued_from = None
            batch = self._outbox.fetch(after=self._live_cursor, limit=window)
            backlog: list[Pending] = []
            room = window - len(batch)
            if room > 0 and self._backlog_pending:
                allowance = bucket.take(room)
                if allowance:
                    backlog = self._outbox.fetch(
                        after=self._backlog_cursor, limit=allowance, before=self._live_cursor + 1
                    )
                    if not backlog:
                        self._backlog_pending = False
                        self._backlog_cursor = self._live_cursor
            if not batch and not backlog:
                if not self._backlog_pending:  # a backlog held back by its rate is not idle
                    self._idle.set()
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=0.05 if self._backlog_pending else 1.0
                    )
                continue
            sent = backlog + batch
            await asyncio.gather(
                *(
                    client.publish(
                        self._topics[item.cls],
                        item.payload,
                        qos=1,
                        timeout=self._settings.publish_timeout,
                    )
                    for item in sent
                )
            )
            self._outbox.mark_sent(sent)
            for cls, count in Counter(item.cls for item in sent).items():
                self._metrics.published.labels(cls.value).inc(count)
            if batch:
                self._live_cursor = max(self._live_cursor, batch[-1].seq)
            if backlog:
                self._backlog_cursor = max(self._backlog_cursor, backlog[-1].seq)

    async def _command_loop(self, client: aiomqtt.Client) -> None:
        ack_topic = topic(self._settings.id, Channel.ACK)
        command_topic = topic(self._settings.id, Channel.COMMAND)
        async for message in client.messages:
            payload = message.payload
            # The embedded demo broker (amqtt) has been seen to hand a client its own retained
            # birth on the command subscription: only the command topic carries commands.
            if message.topic.value != command_topic or not isinstance(payload, bytes | bytearray):
                continue
            ack = await self._execute(bytes(payload))
            if ack is not None:
                await client.publish(ack_topic, ack, qos=1, timeout=self._settings.publish_timeout)

    async def _execute(self, payload: bytes) -> bytes | None:
        try:
            command = decode_command(payload)
        except WireError as exc:
            self._metrics.commands.labels("rejected").inc()
            log.warning("command rejected: %s (%r)", exc, payload[:200])
            return None
        previous = self._outbox.command_ack(command.id)
        if previous is not None:
            # A redelivered command is answered again, never executed again.
            self._metrics.commands.labels("repeated").inc()
            return previous
        now = datetime.now(UTC)
        handler = self._handlers.get(command.name)
        if command.expires <= now:
            ack = Ack(command.id, ok=False, time=now, error="expired")
            outcome = "expired"
        elif handler is None:
            ack = Ack(command.id, ok=False, time=now, error=f"unknown command {command.name}")
            outcome = "unknown"
        else:
            deadline = min(_COMMAND_DEADLINE, (command.expires - now).total_seconds())
            try:
                result = await asyncio.wait_for(handler(command.args), timeout=deadline)
                ack = Ack(command.id, ok=True, time=datetime.now(UTC), result=result)
                outcome = "ok"
            except TimeoutError:
                ack = Ack(command.id, ok=False, time=datetime.now(UTC), error="timeout")
                outcome = "timeout"
            except Exception as exc:  # noqa: BLE001 - any handler failure becomes an error ack
                ack = Ack(command.id, ok=False, time=datetime.now(UTC), error=str(exc)[:300])
                outcome = "error"
        encoded = ack.encode()
        self._outbox.record_command(command.id, encoded)
        self._metrics.commands.labels(outcome).inc()
        return encoded
