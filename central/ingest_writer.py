"""Turns a batch of MQTT messages into one store transaction.

Pure with respect to MQTT: it gets (topic, payload) pairs and returns what happened; the caller
acknowledges to the broker only after :meth:`IngestWriter.write` has returned, i.e. after the
commit. Each (agent, epoch, seq) is stored once (a unique index; a repeat counts as a duplicate),
and counts and gaps are kept per epoch. A message that breaks the contract goes to the quarantine
table with its reason.

Epochs (the identity of an agent's outbox file, see ``docs/protocol.md``) have no order of their
own, so the store gives them one: the agent's *current* epoch changes only to an epoch that was
never current before, and only through a status message (births and wills arrive in the order
the agent sent them; readings of a new epoch that overtake its birth are stored, and wait for it)
or when the agent has no epoch yet. A status of an epoch that was replaced is stale and ignored;
within one epoch (session, connection) orders them as before. When one real epoch replaces
another, one ``agent_reset`` row goes into ``agent_events`` (unique per agent and new epoch, so a
restart or a second ingest process cannot raise it twice). Moving from the legacy epoch (an agent
of the previous release) to a real one is an upgrade, not a reset.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from central import feed, van_positions
from central.gaps import gap_ranges
from central.store import LEGACY_EPOCH
from edge_agent.wire import (
    AVAILABILITY_KIND,
    FIX_KIND,
    Ack,
    Channel,
    Envelope,
    HealthReport,
    MessageClass,
    Status,
    WireError,
    decode_ack,
    decode_envelope,
    decode_health,
    decode_status,
    format_time,
    parse_topic,
)

log = logging.getLogger(__name__)

# Quarantined payloads are kept up to this size; hostile 1 MB blobs must not fill the disk.
QUARANTINE_KEEP_BYTES = 4096
# An agent_reset names at most this many of the old epoch's unrepaired gaps.
RESET_GAP_RANGES = 100
AGENT_RESET: Final = "agent_reset"
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
    resets: int = 0


@dataclass(frozen=True, slots=True)
class _Reject:
    topic: str
    reason: str
    detail: str
    size: int  # of the payload as received; ``payload`` may be cut
    payload: bytes


LOST_REASON = "lost"  # the reason an agent's will carries


class IngestWriter:
    """Owns one write connection; not thread-safe (it runs in the ingest store process)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    def write(self, messages: Sequence[tuple[str, bytes]]) -> BatchOutcome:
        outcome = BatchOutcome()
        data: dict[tuple[str, str], list[Envelope]] = defaultdict(list)
        statuses: list[Status] = []
        reports: list[HealthReport] = []
        acks: list[tuple[str, Ack, str, bytes]] = []
        rejects: list[_Reject] = []
        for topic_name, payload in messages:
            try:
                agent, channel = parse_topic(topic_name)
                if channel in _DATA_CLASS:
                    envelope = decode_envelope(payload, agent, _DATA_CLASS[channel])
                    data[agent, _epoch_of(envelope.epoch)].append(envelope)
                elif channel is Channel.STATUS:
                    if payload:  # an empty retained payload clears the topic; nothing to record
                        statuses.append(decode_status(payload, agent))
                elif channel is Channel.ACK:
                    acks.append((agent, decode_ack(payload), topic_name, payload))
                elif channel is Channel.HEALTH:
                    reports.append(decode_health(payload, agent))
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
            # Statuses first: a birth in the same batch as the first readings of its epoch tells
            # where that epoch starts and makes it current before they are counted.
            for status in statuses:
                self._store_status(status, now_text, outcome)
            # After the statuses: a birth may have made the reports' epoch current.
            for report in [s.health_report() for s in statuses] + reports:
                if report is not None:
                    self._store_health(report, now_text)
            for (agent, epoch), envelopes in data.items():
                self._store_agent(agent, epoch, envelopes, now_text, outcome)
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
        self,
        agent: str,
        epoch: str,
        envelopes: list[Envelope],
        now_text: str,
        outcome: BatchOutcome,
    ) -> None:
        db = self._db
        db.execute(
            "INSERT OR IGNORE INTO agents (agent, first_seen) VALUES (?, ?)", (agent, now_text)
        )
        current = self._epoch_seen(agent, epoch, None, now_text, outcome, from_status=False)
        (last_seq,) = db.execute(
            "SELECT last_seq FROM agent_epochs WHERE agent = ? AND epoch = ?", (agent, epoch)
        ).fetchone()
        inserted_by_class: dict[MessageClass, int] = defaultdict(int)
        expected = last_seq + 1
        highest = last_seq
        for envelope in envelopes:
            cursor = db.execute(
                "INSERT OR IGNORE INTO events "
                "(agent, epoch, seq, session, class, device, kind, time, received_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent,
                    epoch,
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
        self._store_devices(agent, epoch, current, envelopes, now_text)
        inserted = sum(inserted_by_class.values())
        db.execute(
            "UPDATE agent_epochs SET received = received + ?, last_seq = ?, last_seen = ? "
            "WHERE agent = ? AND epoch = ?",
            (inserted, highest, now_text, agent, epoch),
        )
        db.execute("UPDATE agents SET last_seen = ? WHERE agent = ?", (now_text, agent))
        for cls, count in inserted_by_class.items():
            outcome.stored[cls] = outcome.stored.get(cls, 0) + count

    def _epoch_seen(
        self,
        agent: str,
        epoch: str,
        first_seq: int | None,
        now_text: str,
        outcome: BatchOutcome,
        *,
        from_status: bool,
    ) -> bool:
        """Record ``epoch`` of ``agent`` (whose row exists); returns whether it is current now."""
        db = self._db
        (current,) = db.execute("SELECT epoch FROM agents WHERE agent = ?", (agent,)).fetchone()
        row = db.execute(
            "SELECT replaced_at FROM agent_epochs WHERE agent = ? AND epoch = ?", (agent, epoch)
        ).fetchone()
        if row is None:
            start = first_seq or 1
            db.execute(
                "INSERT INTO agent_epochs (agent, epoch, first_seq, last_seq, received, "
                "first_seen) VALUES (?, ?, ?, ?, 0, ?)",
                (agent, epoch, start, start - 1, now_text),
            )
        elif first_seq is not None:
            # Readings that overtook the birth assumed the epoch starts at 1; the birth knows.
            db.execute(
                "UPDATE agent_epochs SET first_seq = ?, last_seq = max(last_seq, ?) "
                "WHERE agent = ? AND epoch = ? AND first_seq != ?",
                (first_seq, first_seq - 1, agent, epoch, first_seq),
            )
        if current == epoch:
            return True
        never_current = row is None or row[0] is None
        if current is not None and not (from_status and never_current and epoch != LEGACY_EPOCH):
            # A replaced epoch is stale; readings of a new one wait for its birth; the legacy
            # epoch never replaces a real one (an agent downgraded to the previous release).
            return False
        if current is not None:
            db.execute(
                "UPDATE agent_epochs SET replaced_at = ? WHERE agent = ? AND epoch = ?",
                (now_text, agent, current),
            )
            if current != LEGACY_EPOCH:
                self._record_reset(agent, current, epoch, now_text, outcome)
        db.execute("UPDATE agents SET epoch = ? WHERE agent = ?", (epoch, agent))
        return True

    def _record_reset(
        self, agent: str, old: str, new: str, now_text: str, outcome: BatchOutcome
    ) -> None:
        db = self._db
        first_seq, last_seq, received = db.execute(
            "SELECT first_seq, last_seq, received FROM agent_epochs WHERE agent = ? AND epoch = ?",
            (agent, old),
        ).fetchone()
        missing = max(0, last_seq - first_seq + 1 - received)
        gaps = (
            gap_ranges(db, agent, old, above=first_seq - 1, limit=RESET_GAP_RANGES + 1)
            if missing
            else []
        )
        (new_first,) = db.execute(
            "SELECT first_seq FROM agent_epochs WHERE agent = ? AND epoch = ?", (agent, new)
        ).fetchone()
        body = {
            "old_epoch": old,
            "old_first_seq": first_seq,
            "old_last_seq": last_seq,
            "old_received": received,
            "old_missing": missing,
            "gaps": gaps[:RESET_GAP_RANGES],
            "gaps_truncated": len(gaps) > RESET_GAP_RANGES,
            "epoch": new,
            "first_seq": new_first,
        }
        cursor = db.execute(
            "INSERT OR IGNORE INTO agent_events (at, agent, kind, epoch, old_epoch, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (now_text, agent, AGENT_RESET, new, old, json.dumps(body, separators=(",", ":"))),
        )
        if cursor.rowcount:
            outcome.resets += 1
            log.warning(
                "agent %s reset: epoch %s replaced %s (which ended at seq %d, %d missing)",
                agent,
                new,
                old,
                last_seq,
                missing,
            )

    def _store_devices(
        self, agent: str, epoch: str, current: bool, envelopes: list[Envelope], now_text: str
    ) -> None:
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
            was_online = online
            fix_before = state.get(FIX_KIND)
            for reading in readings:
                known = state.get(reading.kind)
                # Replayed or backlog readings arrive late: only a newer number replaces state.
                # Numbers restart with an epoch: the current epoch replaces any other, and an
                # epoch that is not current replaces nothing of another.
                if isinstance(known, dict):
                    if known.get("epoch", LEGACY_EPOCH) == epoch:
                        if known.get("seq", 0) >= reading.seq:
                            continue
                    elif not current:
                        continue
                state[reading.kind] = {
                    "epoch": epoch,
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
            if online is not None and online != was_online:
                self._report(
                    "device_online" if online else "device_offline",
                    agent,
                    {"agent": agent, "device": device, "class": device_class},
                    now_text,
                )
            fix_after = state.get(FIX_KIND)
            if fix_after is not fix_before:  # a newer fix replaced the stored one
                self._report_position(agent, device, fix_before, fix_after, now_text)

    def _station(self, agent: str) -> str | None:
        row = self._db.execute("SELECT station FROM agents WHERE agent = ?", (agent,)).fetchone()
        return row[0] if row else None

    def _report(self, kind: str, agent: str, body: dict[str, Any], now_text: str) -> None:
        """A change of availability, to the feed, in the batch's transaction."""
        feed.append(
            self._db,
            kind,
            self._station(agent),
            body,
            audience=feed.Audience.HEALTH,
            at=now_text,
        )

    def _report_position(
        self, agent: str, device: str, before: object, after: object, now_text: str
    ) -> None:
        """The device's newest fix, to the feed, when ``central.van_positions`` says it is due:
        decided from the stored row, so ingest processes sharing the store thin as one."""
        newest = van_positions.stored_time(after)
        if newest is None or not van_positions.is_due(van_positions.stored_time(before), newest):
            return
        assert isinstance(after, dict)  # stored_time read a time from it
        body = van_positions.body(agent, device, newest, after.get("body"))
        if body is not None:
            # Where a van is and how fast it goes: the centre and its station, not ops.
            feed.append(self._db, van_positions.KIND, self._station(agent), body, at=now_text)

    def _store_status(self, status: Status, now_text: str, outcome: BatchOutcome) -> None:
        db = self._db
        db.execute(
            "INSERT OR IGNORE INTO agents (agent, first_seen) VALUES (?, ?)",
            (status.agent, now_text),
        )
        epoch = _epoch_of(status.epoch)
        (before,) = db.execute(
            "SELECT epoch FROM agents WHERE agent = ?", (status.agent,)
        ).fetchone()
        if not self._epoch_seen(
            status.agent, epoch, status.first_seq, now_text, outcome, from_status=True
        ):
            return  # a status of a replaced epoch: a stale retained will must not win
        # Within one epoch (session, connection) orders status messages: a stale retained will
        # that the broker delivers after a newer birth must not mark a live agent offline. A new
        # epoch counts its sessions from 1 again, so its first status always applies.
        new_epoch = before != epoch
        (was_online,) = db.execute(
            "SELECT online FROM agents WHERE agent = ?", (status.agent,)
        ).fetchone()
        cursor = db.execute(
            "UPDATE agents SET online = ?, session = ?, connection = ?, status_time = ?, "
            "status_reason = ?, station = coalesce(?, station), last_seen = ? "
            "WHERE agent = ? AND (? OR session < ? OR (session = ? AND connection <= ?))",
            (
                1 if status.online else 0,
                status.session,
                status.connection,
                _status_time(status, now_text),
                status.reason,
                status.station,
                now_text,
                status.agent,
                new_epoch,
                status.session,
                status.session,
                status.connection,
            ),
        )
        # Only a change is news: a repeated birth or a stale will that lost changes nothing.
        if cursor.rowcount and bool(was_online) != status.online:
            self._report(
                "agent_online" if status.online else "agent_offline",
                status.agent,
                {"agent": status.agent, "reason": status.reason},
                now_text,
            )

    def _store_health(self, report: HealthReport, now_text: str) -> None:
        """Keep the newest health report of the agent's current epoch."""
        db = self._db
        agent = report.agent
        db.execute(
            "INSERT OR IGNORE INTO agents (agent, first_seen) VALUES (?, ?)", (agent, now_text)
        )
        db.execute("UPDATE agents SET last_seen = ? WHERE agent = ?", (now_text, agent))
        (current,) = db.execute("SELECT epoch FROM agents WHERE agent = ?", (agent,)).fetchone()
        epoch = _epoch_of(report.epoch)
        if current is not None and current != epoch:
            # An outbox the agent no longer has (a wiped disk's last words), or one whose birth
            # has not come yet: the birth carries its own report.
            return
        health = report.health
        db.execute(
            "INSERT INTO agent_health (agent, epoch, session, report, taken_at, received_at, "
            "outbox_depth, outbox_oldest_age_seconds, disk_full, certificate_expires) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET "
            "epoch = excluded.epoch, session = excluded.session, report = excluded.report, "
            "taken_at = excluded.taken_at, received_at = excluded.received_at, "
            "outbox_depth = excluded.outbox_depth, "
            "outbox_oldest_age_seconds = excluded.outbox_oldest_age_seconds, "
            "disk_full = excluded.disk_full, certificate_expires = excluded.certificate_expires "
            # Reports of one epoch are ordered by (session, report); a redelivered or late one
            # changes nothing. Another epoch passed the check above: it is the current one.
            "WHERE agent_health.epoch != excluded.epoch "
            "OR agent_health.session < excluded.session OR "
            "(agent_health.session = excluded.session AND agent_health.report < excluded.report)",
            (
                agent,
                epoch,
                report.session,
                health.report,
                format_time(health.time),
                now_text,
                health.outbox_depth,
                health.outbox_oldest_age_seconds,
                1 if health.disk_full else 0,
                None
                if health.certificate_expires is None
                else format_time(health.certificate_expires),
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
        """(agents online, messages missing below the highest seq of each agent's epochs).

        Earlier epochs count too: what a wiped agent never delivered stays missing.
        """
        online, missing = self._db.execute(
            "SELECT (SELECT coalesce(sum(online), 0) FROM agents), "
            "(SELECT coalesce(sum(max(0, last_seq - first_seq + 1 - received)), 0) "
            "FROM agent_epochs)"
        ).fetchone()
        return int(online), int(missing)


def _epoch_of(epoch: str | None) -> str:
    return LEGACY_EPOCH if epoch is None else epoch


def _refuse_channel(channel: Channel) -> None:
    raise WireError("bad_topic", f"central does not consume {channel.value}")


def _status_time(status: Status, now_text: str) -> str:
    """When the status became true. A will (reason ``lost``) was written when the agent
    connected, so its own time says nothing of when the agent was lost: the broker sent it on
    losing the agent, and it is received now."""
    if not status.online and status.reason == LOST_REASON:
        return now_text
    return format_time(status.time)
