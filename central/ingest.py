"""MQTT ingest: paho-mqtt with manual acknowledgement, a writer thread, ack after commit.

paho's network thread only queues messages. The writer thread takes everything queued (up to
``batch_max``), commits it in one transaction and only then sends the PUBACKs, in arrival order as
MQTT requires. Under load the queue fills while a commit runs, so batches grow by themselves;
when quiet, a single message is committed at once.

A killed ingest process has acknowledged nothing it had not committed; the broker redelivers the
rest to the persistent session (or to another member of the shared-subscription group) and the
unique (agent, seq) index turns the repeats into counted duplicates.

Message ids are only valid on the connection that delivered them, so each connect and disconnect
starts a new *generation*; messages of an older generation are stored but not acknowledged (the
broker sends them again on the new connection).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from central.ingest_writer import BatchOutcome, IngestWriter
from central.settings import CentralSettings
from central.store import connect
from edge_agent.wire import Channel, subscription
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

_RETRY_SECONDS = 0.5
_TOTALS_EVERY_SECONDS = 0.5

_Queued = tuple[int, mqtt.MQTTMessage]


class Ingest:
    def __init__(self, settings: CentralSettings, metrics: CentralMetrics,
                 on_batch: Callable[[BatchOutcome], None] | None = None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._generation = 0
        self._ack_lock = threading.Lock()
        self.connected = threading.Event()
        # Set once the broker has granted the subscriptions: from then on nothing is missed.
        self.subscribed = threading.Event()
        self.writer_alive = threading.Event()
        url = settings.broker_url
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client = client
        self._writer = threading.Thread(target=self._writer_loop, name="ingest-writer",
                                        daemon=True)

    def start(self) -> None:
        url = self._settings.broker_url
        self._writer.start()
        self._client.connect_async(url.host, url.port, keepalive=self._settings.keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what is queued, then disconnect; bounded by ``timeout``."""
        self._stopping.set()
        self._writer.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic_name: str, payload: bytes) -> None:
        """QoS 1 publish from any thread; paho queues it while disconnected."""
        self._client.publish(topic_name, payload, qos=1)

    # paho network thread
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason: ReasonCode, _properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused ingest connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        group = self._settings.share_group if self._settings.shared_subscription else None
        client.subscribe([
            (subscription(Channel.EVENT, group), 1),
            (subscription(Channel.TELEMETRY, group), 1),
            (subscription(Channel.ACK, group), 1),
            # Retained births are not delivered to shared subscriptions, and every worker may
            # record a status (it is idempotent), so status is a plain subscription.
            (subscription(Channel.STATUS), 1),
        ])
        self.connected.set()
        self._metrics.broker_connected.set(1)
        log.info("ingest connected to %s", self._settings.broker_url)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      reasons: list[ReasonCode], _properties: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused ingest subscriptions: %s", ", ".join(failed))
            return
        self.subscribed.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason: ReasonCode, _properties: Any) -> None:
        with self._ack_lock:
            self._generation += 1
        self.connected.clear()
        self.subscribed.clear()
        self._metrics.broker_connected.set(0)
        if not self._stopping.is_set():
            log.warning("ingest disconnected from broker: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        self._queue.put((self._generation, message))

    # writer thread
    def _collect(self) -> list[_Queued]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        limit = self._settings.batch_max
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _writer_loop(self) -> None:
        conn = connect(self._settings.db)
        writer = IngestWriter(conn)
        self.writer_alive.set()
        last_totals = 0.0
        try:
            while True:
                batch = self._collect()
                if not batch:
                    if self._stopping.is_set():
                        return
                    continue
                outcome = self._commit(writer, batch)
                if outcome is None:
                    return
                self._acknowledge(batch)
                self._record(outcome, len(batch))
                now = time.monotonic()
                if outcome.statuses or now - last_totals > _TOTALS_EVERY_SECONDS:
                    online, missing = writer.totals()
                    self._metrics.agents_online.set(online)
                    self._metrics.missing.set(missing)
                    last_totals = now
        finally:
            self.writer_alive.clear()
            conn.close()

    def _commit(self, writer: IngestWriter, batch: list[_Queued]) -> BatchOutcome | None:
        messages = [(_topic_of(message), bytes(message.payload)) for _, message in batch]
        while True:
            try:
                return writer.write(messages)
            except sqlite3.Error as exc:
                # Nothing of this batch is acknowledged, so nothing is lost: retry until the
                # store is writable again (disk full, a long lock), or give up on stop and let
                # the broker redeliver.
                self._metrics.write_errors.inc()
                log.warning("store commit failed (%s); retrying", exc)
                if self._stopping.wait(_RETRY_SECONDS):
                    return None

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
        for reason, count in outcome.rejected.items():
            metrics.rejected.labels(reason).inc(count)
        for lag in outcome.lags:
            metrics.lag.observe(max(0.0, lag))
        if self._on_batch is not None:
            self._on_batch(outcome)


def _topic_of(message: mqtt.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:
        return "<undecodable topic>"

