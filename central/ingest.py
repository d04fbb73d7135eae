"""MQTT ingest: paho-mqtt with manual acknowledgement, ack only after the commit.

paho's network thread only queues messages. A shipper thread takes everything queued (up to
``batch_max``) and sends it to the store process (:mod:`central.ingest_store_process`), which
commits each batch in one transaction and answers in order; an acker thread then sends the
PUBACKs, in arrival order as MQTT requires. Under load the queue fills while a commit runs, so
batches grow by themselves; when quiet, a single message is committed at once. Receiving and
storing run in two processes so that each has a core (they measured 0.58 and 0.50 of a core
taking turns on one interpreter lock).

A killed ingest process has acknowledged nothing it had not committed; the broker redelivers the
rest to the persistent session (or to another member of the shared-subscription group) and the
unique (agent, epoch, seq) index turns the repeats into counted duplicates.

The session is MQTT 5's (``mqtt5``): the broker keeps it for ``session_expiry`` seconds after
the process goes away, so a restart resumes it, while a member stopped for good stops holding
its share of the shared subscription once that time has passed (docs/operations.md).

Message ids are only valid on the connection that delivered them, so each connect and disconnect
starts a new *generation*; messages of an older generation are stored but not acknowledged (the
broker sends them again on the new connection).

A connection that ends other than by :meth:`Ingest.stop` (a CONNACK that never came within the
keepalive, a lost broker) is reset rather than closed in order, so that a CONNECT still queued in
the kernel during a network outage cannot reach the broker at the heal and take over the session
of the next connection.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from multiprocessing.process import BaseProcess
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.broker_sys import SYS_FILTER, SYS_PREFIX, BrokerSysState, SysValueError
from central.ingest_store_process import run_store_process
from central.ingest_writer import BatchOutcome
from central.settings import CentralSettings
from central.store import central_client_id
from edge_agent.broker_outage import SESSION_TAKEN_OVER, BrokerOutage, ClientIdClash
from edge_agent.wire import Channel, subscription
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

# How long a killed store process is given to be reaped.
_KILL_WAIT_SECONDS = 2.0

_BATCHES_IN_FLIGHT = 2
# SO_LINGER on, 0 seconds: close() sends a reset and discards whatever is still queued.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)

_Queued = tuple[int, mqtt.MQTTMessage]

_RECONNECT_MAX_DELAY = 30


def _connect_properties(settings: CentralSettings) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call] # paho's own
    properties.SessionExpiryInterval = settings.session_expiry
    # What the broker may send before acknowledgements come back: two batches (one committing,
    # one on its way). Under MQTT 3.1.1 the broker's max_inflight_messages bounds it instead.
    properties.ReceiveMaximum = min(65535, _BATCHES_IN_FLIGHT * settings.batch_max)
    return properties


# The reason a malformed $SYS value is counted under in precinct_ingest_rejected_total.
BAD_SYS_VALUE = "bad_sys_value"


class Ingest:
    def __init__(
        self,
        settings: CentralSettings,
        metrics: CentralMetrics,
        broker_sys: BrokerSysState | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._broker_sys = broker_sys if broker_sys is not None else BrokerSysState()
        self._sys_mid: int | None = None
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._stopping = threading.Event()
        # Set by stop(), before _stopping: how many queued messages are still shipped. What
        # arrives after the stop began is left unacknowledged, for the broker to deliver again
        # after the restart; otherwise an agent that keeps publishing keeps the queue from ever
        # emptying and the stop from ever ending.
        self._drain_left = 0
        self._generation = 0
        self._ack_lock = threading.Lock()
        self.connected = threading.Event()
        # Set once the broker has granted the subscriptions: from then on nothing is missed.
        self.subscribed = threading.Event()
        self.writer_alive = threading.Event()
        # Set while the store's disk is full: nothing is committed, so nothing is acknowledged.
        self.store_full = threading.Event()
        # Set after each commit: whoever derives from the store (alarms) need not wait its turn.
        self.committed = threading.Event()
        self._failing_since: float | None = None
        self._failed_commits = 0
        url = settings.broker_url
        self.client_id = settings.client_id or central_client_id(settings.db)
        # Reported once per outage and then at the reconnect backoff's cap (30 s, below).
        self._outage = BrokerOutage(repeat_every=_RECONNECT_MAX_DELAY)
        self._clash = ClientIdClash()
        self._connected_at: float | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            # MQTT 5 sets its clean start at connect (never: the session is resumed).
            clean_session=None if settings.mqtt5 else False,
            protocol=mqtt.MQTTv5 if settings.mqtt5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set(
                ca_certs=str(settings.tls_ca) if settings.tls_ca else None,
                certfile=str(settings.tls_cert) if settings.tls_cert else None,
                keyfile=str(settings.tls_key) if settings.tls_key else None,
            )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_close = self._on_socket_close
        client.reconnect_delay_set(min_delay=1, max_delay=_RECONNECT_MAX_DELAY)
        self._client = client
        self._pending: deque[list[_Queued]] = deque()
        self._pending_lock = threading.Lock()
        self._slots = threading.Semaphore(_BATCHES_IN_FLIGHT)
        # "spawn": forking a process that already runs threads (uvicorn, paho) is unsafe.
        context = multiprocessing.get_context("spawn")
        # Pipe(duplex=False) gives (receiving end, sending end).
        child_requests, self._requests = context.Pipe(duplex=False)
        self._replies, child_replies = context.Pipe(duplex=False)
        self._child_ends = (child_requests, child_replies)
        self._store: BaseProcess = context.Process(
            target=run_store_process,
            args=(child_requests, child_replies, str(settings.db)),
            name="precinct-ingest-store",
            daemon=True,
        )
        self._shipper = threading.Thread(target=self._ship_loop, name="ingest-shipper", daemon=True)
        self._acker = threading.Thread(target=self._ack_loop, name="ingest-acker", daemon=True)

    def start(self) -> None:
        self._store.start()
        for end in self._child_ends:
            end.close()  # the child holds them now; closing ours makes its death visible as EOF
        self._acker.start()
        self._shipper.start()
        url = self._settings.broker_url
        if self._settings.mqtt5:
            self._client.connect_async(
                url.host,
                url.port,
                keepalive=self._settings.keepalive,
                clean_start=False,
                properties=_connect_properties(self._settings),
            )
        else:
            self._client.connect_async(url.host, url.port, keepalive=self._settings.keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what is queued, then disconnect, all within ``timeout``.

        What was queued when the stop began is shipped; what arrives later is not acknowledged
        (the broker delivers it again after the restart, and the store keeps each reading once).
        One deadline for every step, not one each: three waits of ``timeout`` in a row outlasted
        a service manager's patience (a SIGTERM unanswered for 15 s, then SIGKILL)."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        self._drain_left = self._queue.qsize()
        self._stopping.set()
        self._shipper.join(left())
        self._acker.join(left())
        self._client.disconnect()
        self._client.loop_stop()
        self._store.join(left())
        if self._store.is_alive():
            # Mid-commit is safe to kill: a transaction commits whole or not at all.
            self._store.kill()
            self._store.join(_KILL_WAIT_SECONDS)

    def publish(self, topic_name: str, payload: bytes) -> None:
        """QoS 1 publish from any thread; paho queues it while disconnected."""
        self._client.publish(topic_name, payload, qos=1)

    # paho network thread
    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if reason.is_failure:
            self._report_failure(f"the broker refused the connection: {reason}", lost=False)
            return
        recovery = self._outage.connected(time.monotonic())
        if recovery is not None:
            log.info(
                "ingest connected to broker %s again after %.1f s (%d failures)",
                self._settings.broker_url,
                recovery.seconds,
                recovery.attempts,
            )
        with self._ack_lock:
            self._generation += 1
        group = self._settings.share_group if self._settings.shared_subscription else None
        client.subscribe(
            [
                (subscription(Channel.EVENT, group), 1),
                (subscription(Channel.TELEMETRY, group), 1),
                (subscription(Channel.ACK, group), 1),
                (subscription(Channel.HEALTH, group), 1),
                # Retained births are not delivered to shared subscriptions, and every worker may
                # record a status (it is idempotent), so status is a plain subscription.
                (subscription(Channel.STATUS), 1),
            ]
        )
        # Apart from the data: a broker whose ACL forbids $SYS must not make ingest unready.
        # QoS 0, as the broker publishes them: nothing to acknowledge, nothing queued while away.
        if self._settings.broker_sys:
            _, self._sys_mid = client.subscribe(SYS_FILTER, 0)
        else:
            # The persistent session may hold the subscription from a run with it on.
            client.unsubscribe(SYS_FILTER)
        self.connected.set()
        self._metrics.broker_connected.set(1)
        self._connected_at = time.monotonic()
        # While two processes take one session from each other this repeats every second.
        (log.debug if self._clash.suspected else log.info)(
            "ingest connected to %s as %s", self._settings.broker_url, self.client_id
        )

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this from inside its ``except OSError`` around the connect and passes no
        # error; the one being handled is it.
        error = sys.exc_info()[1]
        self._report_failure(error if error is not None else "connection failed", lost=False)

    def _report_failure(self, error: object, *, lost: bool) -> None:
        """Log an outage once, then every _RECONNECT_MAX_DELAY while it lasts."""
        url = self._settings.broker_url
        report = self._outage.failed(time.monotonic())
        if report is None:
            log.debug("broker %s unreachable: %s", url, error)
        elif lost:
            log.warning("ingest lost its connection to broker %s: %s", url, error)
        elif report.first:
            log.warning(
                "broker %s unreachable: %s (retrying; reported again every %.0f s while it lasts)",
                url,
                error,
                self._outage.repeat_every,
            )
        else:
            log.warning(
                "broker %s still unreachable after %.0f s (%d failures): %s",
                url,
                report.seconds,
                report.attempts,
                error,
            )

    def _report_clash(self, reason: ReasonCode) -> None:
        cause = (
            "the broker says the session was taken over"
            if reason == SESSION_TAKEN_OVER
            else "the broker closes each connection within seconds of accepting it"
        )
        log.error(
            "another client uses the MQTT client id %r (%s): two processes with one client id "
            "knock each other off the broker and split the session's messages; give each ingest "
            "process its own client_id (--client-id, PRECINCT_CLIENT_ID)",
            self.client_id,
            cause,
        )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Any,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if _mid == self._sys_mid:
            if failed:
                log.warning(
                    "broker refused the %s subscription (%s): the precinct_broker_* metrics stay "
                    "absent; grant the central read access to it, or set broker_sys = false",
                    SYS_FILTER,
                    ", ".join(failed),
                )
            return
        if failed:
            log.error("broker refused ingest subscriptions: %s", ", ".join(failed))
            return
        self.subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        self.connected.clear()
        self.subscribed.clear()
        self._metrics.broker_connected.set(0)
        if self._stopping.is_set():
            return
        now = time.monotonic()
        lasted = now - self._connected_at if self._connected_at is not None else float("inf")
        self._connected_at = None
        verdict = self._clash.lost(lasted=lasted, taken_over=reason == SESSION_TAKEN_OVER, now=now)
        if verdict.reported:
            self._report_clash(reason)
        elif verdict.clash:
            log.debug("session of %s taken again: %s", self.client_id, reason)
        else:
            self._report_failure(reason, lost=True)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        # Called by paho just before it closes the socket.
        if self._stopping.is_set() or not isinstance(sock, socket.socket):
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if _topic_of(message).startswith(SYS_PREFIX):
            self._on_sys(message)
            return
        self._queue.put((self._generation, message))

    def _on_sys(self, message: mqtt.MQTTMessage) -> None:
        if not self._settings.broker_sys:
            return
        try:
            self._broker_sys.observe(message.topic, bytes(message.payload), time.time())
        except SysValueError as exc:
            self._metrics.rejected.labels(BAD_SYS_VALUE).inc()
            log.debug("ignored a $SYS value: %s", exc)

    # shipper thread: batches to the store process
    def _collect(self, limit: int) -> list[_Queued]:
        if limit <= 0:
            return []
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ship_loop(self) -> None:
        try:
            while True:
                stopping = self._stopping.is_set()
                batch = self._collect(
                    min(self._drain_left, self._settings.batch_max)
                    if stopping
                    else self._settings.batch_max
                )
                if not batch:
                    if stopping:
                        return
                    continue
                if stopping:
                    self._drain_left -= len(batch)
                # Two batches in flight: one committing while the next is on its way.
                while not self._slots.acquire(timeout=0.5):
                    if not self._store_process_alive():
                        return
                with self._pending_lock:
                    self._pending.append(batch)
                self._requests.send([(_topic_of(m), m.payload) for _, m in batch])
        except (BrokenPipeError, OSError) as exc:
            log.warning("store process unreachable: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                self._requests.send(None)

    # acker thread: answers from the store process, then PUBACKs
    def _ack_loop(self) -> None:
        self.writer_alive.set()
        try:
            while True:
                try:
                    kind, payload, totals = self._replies.recv()
                except (EOFError, OSError):
                    return
                if kind != "ok":
                    self._commit_failed(kind, str(payload))
                    continue
                assert isinstance(payload, BatchOutcome)
                self._commit_succeeded()
                with self._pending_lock:
                    batch = self._pending.popleft()
                self._acknowledge(batch)
                self._slots.release()
                self._record(payload, len(batch))
                self.committed.set()
                if totals is not None:
                    self._metrics.agents_online.set(totals[0])
                    self._metrics.missing.set(totals[1])
        finally:
            self.writer_alive.clear()
            if not self._stopping.is_set():
                # Without its store the process can only lose track: stop, so that the service
                # manager restarts it and the broker redelivers what was not acknowledged.
                log.critical("ingest store process ended unexpectedly; stopping")
                os.kill(os.getpid(), signal.SIGTERM)

    def _commit_failed(self, kind: str, error: str) -> None:
        """A batch's commit failed and is being retried; one warning per episode."""
        self._metrics.write_errors.inc()
        self._failed_commits += 1
        if kind == "disk_full" and not self.store_full.is_set():
            self.store_full.set()
            self._metrics.store_disk_full.set(1)
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "store commit failed (%s): %s; acknowledging nothing and retrying until it "
                "is writable again",
                "disk full" if kind == "disk_full" else "error",
                error,
            )

    def _commit_succeeded(self) -> None:
        if self._failing_since is None:
            return
        log.info(
            "store writable again after %.1f s (%d failed commits retried)",
            time.monotonic() - self._failing_since,
            self._failed_commits,
        )
        self._failing_since = None
        self._failed_commits = 0
        self.store_full.clear()
        self._metrics.store_disk_full.set(0)

    def _store_process_alive(self) -> bool:
        return self._store.is_alive()

    def _acknowledge(self, batch: list[_Queued]) -> None:
        with self._ack_lock:
            generation = self._generation
            for message_generation, message in batch:
                if message.qos > 0 and message_generation == generation:
                    self._client.ack(message.mid, message.qos)

    def _record(self, outcome: BatchOutcome, size: int) -> None:
        metrics = self._metrics
        metrics.batch_size.observe(size)
        for cls, count in outcome.stored.items():
            metrics.ingested.labels(cls.value).inc(count)
        if outcome.duplicates:
            metrics.duplicates.inc(outcome.duplicates)
        if outcome.gaps:
            metrics.gaps.inc(outcome.gaps)
        if outcome.resets:
            metrics.agent_resets.inc(outcome.resets)
        for reason, count in outcome.rejected.items():
            metrics.rejected.labels(reason).inc(count)
        for lag in outcome.lags:
            metrics.lag.observe(max(0.0, lag))


def _topic_of(message: mqtt.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:
        return "<undecodable topic>"
