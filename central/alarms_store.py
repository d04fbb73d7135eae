"""Every write to the alarms: raise (or count a repeat), clear, acknowledge.

Each function works inside the caller's open write transaction (``BEGIN IMMEDIATE``), so an
alarm changes in the same commit as whatever caused it (the deriver's cursor, the audit row of
an acknowledgement). Each returns the :class:`AlarmChange` it made and puts it into the live
stream's feed (``central/feed.py``) in the same commit, as ``alarm_raised``, ``alarm_repeated``,
``alarm_cleared`` or ``alarm_acknowledged``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central import audit, feed
from central.alarm_rules import (
    PERSON_KINDS,
    ActiveAlarm,
    AlarmState,
    Severity,
    on_ack,
    on_clear,
    on_repeat,
)
from central.audit import Actor, AuditRecord
from edge_agent.wire import format_time

# An event body kept with its alarm is a device's small message; a bound keeps it so.
MAX_BODY_CHARS = 2000

COLUMNS = (
    "id, kind, severity, state, agent, epoch, device, band, station, person, booking, "
    "raised_at, derived_at, count, last_at, acked_by, acked_at, ack_note, cleared_at, source, body"
)


@dataclass(frozen=True, slots=True)
class AlarmChange:
    alarm: int
    change: str  # "raised", "repeated", "cleared", "acknowledged"
    kind: str


def _announce(
    conn: sqlite3.Connection, change: AlarmChange, station: str | None, state: str, count: int
) -> AlarmChange:
    # Ids, kind and state only: an alarm's reading body and its person stay in the alarms API,
    # so operations may follow alarms in the stream as they follow device health; not those
    # raised from the plan or from a person's whereabouts, which are about persons.
    feed.append(
        conn,
        f"alarm_{change.change}",
        station,
        {"alarm": change.alarm, "kind": change.kind, "state": state, "count": count},
        audience=feed.Audience.CENTRE if change.kind in PERSON_KINDS else feed.Audience.HEALTH,
    )
    return change


@dataclass(frozen=True, slots=True)
class Source:
    """What an alarm is raised from: the reading's key, where it came from and when."""

    key: str
    agent: str
    epoch: str | None
    device: str | None
    band: str | None
    station: str | None
    at: datetime
    body: Mapping[str, Any]
    person: str | None = None
    booking: str | None = None


class AlarmNotFoundError(LookupError):
    pass


class AlreadyAcknowledgedError(ValueError):
    def __init__(self, by: str, at: str) -> None:
        super().__init__(f"already acknowledged by {by} at {at}")
        self.by = by
        self.at = at


def _claim(conn: sqlite3.Connection, key: str, effect: str) -> bool:
    """Record that ``key`` was applied; False when it already was (nothing more to do)."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO alarm_sources (source, alarm, effect) VALUES (?, NULL, ?)",
        (key, effect),
    )
    return cursor.rowcount == 1


def _body_text(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= MAX_BODY_CHARS else json.dumps({"truncated": True})


def raise_or_count(
    conn: sqlite3.Connection,
    *,
    kind: str,
    severity: Severity,
    subject: str,
    source: Source,
    now: datetime,
) -> AlarmChange | None:
    """Open an alarm of ``kind`` for ``subject``, or count a repeat of the active one; None
    when ``source`` was applied before."""
    if not _claim(conn, source.key, "raise"):
        return None
    at = format_time(source.at)
    row = conn.execute(
        "SELECT id, state, count, last_at FROM alarms "
        "WHERE kind = ? AND subject = ? AND active = 1",
        (kind, subject),
    ).fetchone()
    if row is not None:
        step = on_repeat(ActiveAlarm(kind, AlarmState(row[1]), int(row[2])))
        conn.execute(
            "UPDATE alarms SET count = ?, state = ?, last_at = max(last_at, ?) WHERE id = ?",
            (step.count, step.state.value, at, row[0]),
        )
        alarm_id = int(row[0])
        change = "repeated"
        state, count = step.state.value, step.count
    else:
        cursor = conn.execute(
            "INSERT INTO alarms (kind, severity, state, active, subject, agent, epoch, device, "
            "band, station, person, booking, raised_at, derived_at, count, last_at, source, "
            "body) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                kind,
                severity.value,
                AlarmState.OPEN.value,
                subject,
                source.agent,
                source.epoch,
                source.device,
                source.band,
                source.station,
                source.person,
                source.booking,
                at,
                format_time(now),
                at,
                source.key,
                _body_text(source.body),
            ),
        )
        alarm_id = int(cursor.lastrowid or 0)
        change = "raised"
        state, count = AlarmState.OPEN.value, 1
    conn.execute("UPDATE alarm_sources SET alarm = ? WHERE source = ?", (alarm_id, source.key))
    return _announce(conn, AlarmChange(alarm_id, change, kind), source.station, state, count)


def clear(
    conn: sqlite3.Connection, *, kinds: tuple[str, ...], subject: str, key: str, at: datetime
) -> list[AlarmChange]:
    """End the active alarms of ``kinds`` for ``subject`` raised no later than ``at`` (a clearing
    reading replayed late does not end an alarm raised after it). A reading that ends nothing
    leaves no trace (most custody readings end nothing)."""
    when = format_time(at)
    marks = ", ".join("?" for _ in kinds)
    rows = conn.execute(
        f"SELECT id, kind, state, count, station FROM alarms WHERE subject = ? AND active = 1 "  # noqa: S608
        f"AND kind IN ({marks}) AND raised_at <= ?",
        (subject, *kinds, when),
    ).fetchall()
    if not rows or not _claim(conn, key, "clear"):
        return []
    changes: list[AlarmChange] = []
    for alarm_id, kind, state, count, station in rows:
        step = on_clear(ActiveAlarm(kind, AlarmState(state), int(count)))
        conn.execute(
            "UPDATE alarms SET state = ?, active = ?, cleared_at = ? WHERE id = ?",
            (step.state.value, int(step.active), when, alarm_id),
        )
        changes.append(
            _announce(
                conn,
                AlarmChange(int(alarm_id), "cleared", str(kind)),
                station,
                step.state.value,
                int(count),
            )
        )
    if len(rows) == 1:
        conn.execute("UPDATE alarm_sources SET alarm = ? WHERE source = ?", (rows[0][0], key))
    return changes


def acknowledge(
    conn: sqlite3.Connection,
    alarm_id: int,
    actor: Actor,
    note: str,
    now: datetime,
    station: str | None = None,
) -> AlarmChange:
    """Acknowledge an alarm with a note, and put it in the audit log in the same commit;
    ``station``: only an alarm of that station (another is not found)."""
    row = conn.execute(
        "SELECT kind, state, count, acked_by, acked_at, station FROM alarms WHERE id = ?",
        (alarm_id,),
    ).fetchone()
    if row is None or (station is not None and row[5] != station):
        raise AlarmNotFoundError(alarm_id)
    kind, state, count, acked_by, acked_at, _station = row
    if acked_at is not None:
        raise AlreadyAcknowledgedError(str(acked_by), str(acked_at))
    step = on_ack(ActiveAlarm(kind, AlarmState(state), int(count)))
    by = f"{actor.role}:{actor.name}"
    conn.execute(
        "UPDATE alarms SET state = ?, active = ?, acked_by = ?, acked_at = ?, ack_note = ? "
        "WHERE id = ?",
        (step.state.value, int(step.active), by, format_time(now), note, alarm_id),
    )
    audit.append(
        conn,
        actor,
        AuditRecord("alarm.acknowledged", str(alarm_id), {"kind": kind, "state": state}),
        now,
    )
    return _announce(
        conn,
        AlarmChange(alarm_id, "acknowledged", str(kind)),
        _station,
        step.state.value,
        int(count),
    )
