"""Turns a batch of MQTT messages into one store transaction.

Pure with respect to MQTT: it gets (topic, payload) pairs and returns what happened; the caller
acknowledges to the broker only after :meth:`IngestWriter.write` has returned, i.e. after the
commit. Each (agent, seq) is stored once (a unique index; a repeat counts as a duplicate). A
message that breaks the contract goes to the quarantine table with its reason.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge_agent.wire import (
    AVAILABILITY_KIND,
    Ack,
    Channel,
    Envelope,
    MessageClass,
    Status,
    WireError,
    decode_ack,
    decode_envelope,
    decode_status,
    format_time,
    parse_topic,
)

# Quarantined payloads are kept up to this size; hostile 1 MB blobs must not fill the disk.
QUARANTINE_KEEP_BYTES = 4096
_DATA_CLASS = {Channel.EVENT: MessageClass.EVENT, Channel.TELEMETRY: MessageClass.TELEMETRY}


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did; plain values, because it travels back from the store process."""

    stored: dict[MessageClass, int] = field(default_factory=dict)
    duplicates: int = 0
    gaps: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    statuses: int = 0
    acks: int = 0


@dataclass(frozen=True, slots=True)
class _Reject:
    topic: str
    reason: str
    detail: str
    size: int  # of the payload as received; ``payload`` may be cut
    payload: bytes


class IngestWriter:
    """Owns one write connection; not thread-safe (it runs in the ingest store process)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    def write(self, messages: Sequence[tuple[str, bytes]]) -> BatchOutcome:
        outcome = BatchOutcome()
        data: dict[str, list[Envelope]] = defaultdict(list)
        statuses: list[Status] = []
        acks: list[tuple[str, Ack, str, bytes]] = []
        rejects: list[_Reject] = []
        for topic_name, payload in messages:
            try:
                agent, channel = parse_topic(topic_name)
                if channel in _DATA_CLASS:
                    data[agent].append(decode_envelope(payload, agent, _DATA_CLASS[channel]))
                elif channel is Channel.STATUS:
                    if payload:  # an empty retained payload clears the topic; nothing to record
                        statuses.append(decode_status(payload, agent))
                elif channel is Channel.ACK:
                    acks.append((agent, decode_ack(payload), topic_name, payload))
                else:
                    _refuse_channel(channel)
            except WireError as exc:
                rejects.append(
                    _Reject(
                        topic_name[:512],
                        exc.reason,
                        exc.detail[:500],
                        len(payload),
                        payload[:QUARANTINE_KEEP_BYTES],
                    )
                )
                outcome.rejected[exc.reason] = outcome.rejected.get(exc.reason, 0) + 1
        now = datetime.now(UTC)
        now_text = format_time(now)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for agent, envelopes in data.items():
                self._store_agent(agent, envelopes, now_text, outcome)
            for status in statuses:
                self._store_status(status, now_text)
            for agent, ack, topic_name, payload in acks:
                if self._store_ack(agent, ack, now_text):
                    outcome.acks += 1
                else:
                    # An ack for a command this centre never sent to that agent.
                    rejects.append(
                        _Reject(
                            topic_name[:512],
                            "unknown_command",
                            ack.id,
                            len(payload),
                            payload[:QUARANTINE_KEEP_BYTES],
                        )
                    )
                    outcome.rejected["unknown_command"] = (
                        outcome.rejected.get("unknown_command", 0) + 1
                    )
            if rejects:
                db.executemany(
                    "INSERT INTO quarantine (received_at, topic, reason, detail, size, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(now_text, r.topic, r.reason, r.detail, r.size, r.payload) for r in rejects],
                )
            db.execute("COMMIT")
        except BaseException:
            # After SQLITE_FULL SQLite has rolled back by itself, and a ROLLBACK would raise "no
            # transaction is active" in place of the error that matters.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        outcome.statuses = len(statuses)
        committed = datetime.now(UTC)
        for envelopes in data.values():
            outcome.lags.extend((committed - e.time).total_seconds() for e in envelopes)
        return outcome

    def _store_agent(
        self, agent: str, envelopes: list[Envelope], now_text: str, outcome: BatchOutcome
    ) -> None:
        db = self._db
        row = db.execute("SELECT last_seq FROM agents WHERE agent = ?", (agent,)).fetchone()
        if row is None:
            db.execute("INSERT INTO agents (agent, first_seen) VALUES (?, ?)", (agent, now_text))
            last_seq = 0
        else:
            last_seq = int(row[0])
        inserted_by_class: dict[MessageClass, int] = defaultdict(int)
        expected = last_seq + 1
        highest = last_seq
        for envelope in envelopes:
            cursor = db.execute(
                "INSERT OR IGNORE INTO events "
                "(agent, seq, session, class, device, kind, time, received_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent,
                    envelope.seq,
                    envelope.session,
                    envelope.cls.value,
                    envelope.device,
                    envelope.kind,
                    format_time(envelope.time),
                    now_text,
                    json.dumps(envelope.body, separators=(",", ":")),
                ),
            )
            if cursor.rowcount:
                inserted_by_class[envelope.cls] += 1
            else:
                outcome.duplicates += 1
            if envelope.seq > expected:
                outcome.gaps += 1
            if envelope.seq > highest:
                highest = envelope.seq
                expected = envelope.seq + 1
        self._store_devices(agent, envelopes, now_text)
        inserted = sum(inserted_by_class.values())
        db.execute(
            "UPDATE agents SET received = received + ?, last_seq = ?, last_seen = ? "
            "WHERE agent = ?",
            (inserted, highest, now_text, agent),
        )
        for cls, count in inserted_by_class.items():
            outcome.stored[cls] = outcome.stored.get(cls, 0) + count

    def _store_devices(self, agent: str, envelopes: list[Envelope], now_text: str) -> None:
        by_device: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            by_device.setdefault(envelope.device, []).append(envelope)
        db = self._db
        for device, readings in by_device.items():
            row = db.execute(
                "SELECT state, class, online FROM devices WHERE agent = ? AND device = ?",
                (agent, device),
            ).fetchone()
            state: dict[str, Any] = json.loads(row[0]) if row else {}
            device_class: str | None = row[1] if row else None
            online: int | None = row[2] if row else None
            for reading in readings:
                known = state.get(reading.kind)
                # Replayed or backlog readings arrive late: only a newer number replaces state.
                if isinstance(known, dict) and known.get("seq", 0) >= reading.seq:
                    continue
                state[reading.kind] = {
                    "seq": reading.seq,
                    "time": format_time(reading.time),
                    "body": reading.body,
                }
                if reading.kind == AVAILABILITY_KIND:
                    online = 1 if reading.body.get("online") is True else 0
                    if isinstance(reading.body.get("class"), str):
                        device_class = str(reading.body["class"])[:64]
            last_seen = max(
                entry["time"]
                for entry in state.values()
                if isinstance(entry, dict) and isinstance(entry.get("time"), str)
            )
            db.execute(
                "INSERT INTO devices (agent, device, class, online, last_seen, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent, device) DO UPDATE SET "
                "class = excluded.class, online = excluded.online, "
                "last_seen = excluded.last_seen, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (
                    agent,
                    device,
                    device_class,
                    online,
                    last_seen,
                    json.dumps(state, separators=(",", ":")),
                    now_text,
                ),
            )

    def _store_status(self, status: Status, now_text: str) -> None:
        db = self._db
        db.execute(
            "INSERT OR IGNORE INTO agents (agent, first_seen) VALUES (?, ?)",
            (status.agent, now_text),
        )
        # (session, connection) orders status messages: a stale retained will that the broker
        # delivers after a newer birth must not mark a live agent offline.
        db.execute(
            "UPDATE agents SET online = ?, session = ?, connection = ?, status_time = ?, "
            "status_reason = ?, station = coalesce(?, station), last_seen = ? "
            "WHERE agent = ? AND (session < ? OR (session = ? AND connection <= ?))",
            (
                1 if status.online else 0,
                status.session,
                status.connection,
                format_time(status.time),
                status.reason,
                status.station,
                now_text,
                status.agent,
                status.session,
                status.session,
                status.connection,
            ),
        )

    def _store_ack(self, agent: str, ack: Ack, now_text: str) -> bool:
        cursor = self._db.execute(
            "UPDATE commands SET status = ?, result = ?, error = ?, acked_at = ? "
            "WHERE id = ? AND agent = ? AND acked_at IS NULL",
            (
                "ok" if ack.ok else "error",
                json.dumps(ack.result, separators=(",", ":")) if ack.result is not None else None,
                ack.error,
                now_text,
                ack.id,
                agent,
            ),
        )
        if cursor.rowcount:
            return True
        # A repeated ack for a command already answered is not an error.
        return (
            self._db.execute(
                "SELECT 1 FROM commands WHERE id = ? AND agent = ?", (ack.id, agent)
            ).fetchone()
            is not None
        )

    def totals(self) -> tuple[int, int]:
        """(agents online, messages missing below each agent's highest seq)."""
        online, missing = self._db.execute(
            "SELECT coalesce(sum(online), 0), coalesce(sum(last_seq - received), 0) FROM agents"
        ).fetchone()
        return int(online), int(missing)


def _refuse_channel(channel: Channel) -> None:
    raise WireError("bad_topic", f"central does not consume {channel.value}")
