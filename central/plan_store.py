"""Every statement the planning service runs on the plan's tables (``bookings``,
``booking_persons``, ``assignments``, ``plan_events``), and the reads of ``rooms`` and of the
vans' fixes it plans from, as named functions.

Reads take a connection and return typed rows. Writes are either run at once on the
service's connection inside its transaction (``replace_assignments``, ``set_unassigned``,
``execute``, ``purge``) or returned as a :data:`Statement` that a change stages and the
service runs in the same transaction as the plan it goes with. Times are stored as
:func:`edge_agent.wire.format_time` writes them (UTC, sortable as text).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.wire import FIX_KIND, format_time
from scheduling.custody import Level
from scheduling.lifecycle import EXPECTED, BookingState, BookingStatus
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Minute,
    PersonKey,
    PlanRoom,
    Unassigned,
    from_minute,
    to_minute,
)
from scheduling.rooms import Equipment, RoomState, RoomType

Statement = tuple[str, tuple[Any, ...]]

_ACTIVE = tuple(sorted(status.value for status in BookingStatus if not status.closed))
# Which bookings each job looks at; the lifecycle's rules decide what it may do with them.
_EXPECTED = tuple(sorted(status.value for status in EXPECTED))
_CAME = tuple(sorted(status.value for status in BookingStatus if status.arrived))


def iso(minute: Minute) -> str:
    return format_time(from_minute(minute))


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))


@dataclass(frozen=True, slots=True)
class StoredBooking:
    """A ``bookings`` row; times as stored (text)."""

    id: str
    code: str
    station: str
    status: BookingStatus
    walk_in: bool
    expected_arrival: str
    body: str
    eta: str | None
    arrived_at: str | None
    verified_at: str | None
    entered_at: str | None
    closed_at: str | None


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """A ``booking_persons`` row."""

    person: str
    session_started_at: str | None
    session_ended_at: str | None
    exited_at: str | None
    unassigned_rule: str | None
    unassigned_reason: str | None


_BOOKING_COLUMNS = (
    "id, code, station, status, walk_in, expected_arrival, body, eta, arrived_at, "
    "verified_at, entered_at, closed_at"
)


def _booking(row: tuple[Any, ...]) -> StoredBooking:
    return StoredBooking(
        row[0],
        row[1],
        row[2],
        BookingStatus(row[3]),
        bool(row[4]),
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
    )


# --- reads ----------------------------------------------------------------------------------


def rooms(conn: sqlite3.Connection) -> list[PlanRoom]:
    return [
        PlanRoom(
            r[0],
            RoomType(r[1]),
            int(r[2]),
            frozenset(Equipment(e) for e in json.loads(r[3])),
            r[4] == RoomState.IN_SERVICE.value,
            frozenset(json.loads(r[5])),
        )
        for r in conn.execute("SELECT id, type, capacity, equipment, state, adjacent_to FROM rooms")
    ]


def active_bookings(conn: sqlite3.Connection) -> list[StoredBooking]:
    return [
        _booking(r)
        for r in conn.execute(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings "  # noqa: S608
            f"WHERE status IN ({_marks(_ACTIVE)})",
            _ACTIVE,
        )
    ]


def booking(conn: sqlite3.Connection, booking_id: str) -> StoredBooking | None:
    row = conn.execute(
        f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE id = ?",  # noqa: S608
        (booking_id,),
    ).fetchone()
    return None if row is None else _booking(row)


def persons(conn: sqlite3.Connection, booking_id: str) -> list[StoredPerson]:
    return [
        StoredPerson(*r)
        for r in conn.execute(
            "SELECT person, session_started_at, session_ended_at, exited_at, unassigned_rule, "
            "unassigned_reason FROM booking_persons WHERE booking = ? ORDER BY person",
            (booking_id,),
        )
    ]


def assignments(conn: sqlite3.Connection, booking_id: str) -> list[Assignment]:
    return [
        Assignment(
            r[0],
            r[1],
            AssignmentKind(r[2]),
            r[3],
            to_minute(datetime.fromisoformat(r[4])),
            to_minute(datetime.fromisoformat(r[5])),
        )
        for r in conn.execute(
            "SELECT booking, person, kind, room, start, end FROM assignments WHERE booking = ?",
            (booking_id,),
        )
    ]


def stored_levels(conn: sqlite3.Connection) -> dict[PersonKey, str]:
    """Each person's last custody clock level, as the clock job stored it."""
    return {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            "SELECT booking, person, level FROM booking_persons WHERE level IS NOT NULL"
        )
    }


def recent_violations(conn: sqlite3.Connection, since: datetime) -> set[tuple[object, object]]:
    """(rule, message) of each ``plan_violation`` recorded after ``since``; served by the index
    plan_events_kind (store schema 10)."""
    seen: set[tuple[object, object]] = set()
    for (body,) in conn.execute(
        "SELECT body FROM plan_events WHERE kind = 'plan_violation' AND at > ?",
        (format_time(since),),
    ):
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, dict):
            seen.add((data.get("rule"), data.get("message")))
    return seen


def due_no_shows(conn: sqlite3.Connection, expected_before: datetime) -> list[str]:
    """Bookings still expected, not arrived, whose expected arrival is before the cutoff."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM bookings WHERE status IN ({_marks(_EXPECTED)}) AND "  # noqa: S608
            "arrived_at IS NULL AND expected_arrival < ? ORDER BY expected_arrival",
            (*_EXPECTED, format_time(expected_before)),
        )
    ]


def running_sessions(conn: sqlite3.Connection) -> list[PersonKey]:
    """Persons whose session started and has not ended, in bookings whose unit came."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT p.booking, p.person FROM booking_persons p JOIN bookings b "  # noqa: S608
            "ON b.id = p.booking WHERE p.session_started_at IS NOT NULL AND "
            f"p.session_ended_at IS NULL AND b.status IN ({_marks(_CAME)})",
            _CAME,
        )
    ]


def awaited(conn: sqlite3.Connection) -> list[StoredBooking]:
    """Bookings still expected whose unit has not arrived (the vans the plan waits for)."""
    return [
        _booking(r)
        for r in conn.execute(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE status IN "  # noqa: S608
            f"({_marks(_EXPECTED)}) AND arrived_at IS NULL",
            _EXPECTED,
        )
    ]


def latest_fixes(conn: sqlite3.Connection) -> dict[str, tuple[datetime, object]]:
    """Each GPS device's latest fix (its time and body); devices without one are left out."""
    fixes: dict[str, tuple[datetime, object]] = {}
    for device, state in conn.execute(
        "SELECT device, state FROM devices WHERE class = 'gps' OR class IS NULL"
    ):
        latest = _latest_fix(state)
        if latest is not None and (device not in fixes or latest[0] > fixes[device][0]):
            fixes[device] = latest
    return fixes


def _latest_fix(state: str) -> tuple[datetime, object] | None:
    try:
        entry = json.loads(state).get(FIX_KIND)
        moment = datetime.fromisoformat(entry["time"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if moment.tzinfo is None:
        return None
    return moment, entry.get("body")


# --- writes run at once, inside the service's transaction -----------------------------------


def replace_assignments(
    conn: sqlite3.Connection, key: PersonKey, planned: Iterable[Assignment]
) -> None:
    conn.execute("DELETE FROM assignments WHERE booking = ? AND person = ?", key)
    conn.executemany(
        "INSERT INTO assignments (booking, person, kind, room, start, end) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(a.booking, a.person, a.kind, a.room, iso(a.start), iso(a.end)) for a in planned],
    )


def set_unassigned(conn: sqlite3.Connection, key: PersonKey, unassigned: Unassigned | None) -> None:
    conn.execute(
        "UPDATE booking_persons SET unassigned_rule = ?, unassigned_reason = ? "
        "WHERE booking = ? AND person = ?",
        (
            unassigned.rule if unassigned else None,
            unassigned.reason if unassigned else None,
            *key,
        ),
    )


def execute(conn: sqlite3.Connection, statements: Iterable[Statement]) -> None:
    for sql, args in statements:
        conn.execute(sql, args)


def purge(conn: sqlite3.Connection, closed_before: datetime) -> int:
    """Delete bookings closed before the cutoff with their rows, and older plan events;
    returns the bookings deleted. The caller holds the transaction."""
    cutoff = format_time(closed_before)
    old = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM bookings WHERE closed_at IS NOT NULL AND closed_at < ?", (cutoff,)
        )
    ]
    for table, column in (
        ("assignments", "booking"),
        ("booking_persons", "booking"),
        ("bookings", "id"),
    ):
        conn.executemany(
            f"DELETE FROM {table} WHERE {column} = ?",  # noqa: S608
            [(booking_id,) for booking_id in old],
        )
    conn.execute("DELETE FROM plan_events WHERE at < ?", (cutoff,))
    return len(old)


# --- statements a change stages --------------------------------------------------------------


def insert_booking(
    booking_id: str,
    code: str,
    station: str,
    case_id: str,
    status: BookingStatus,
    walk_in: bool,
    expected_arrival: datetime,
    body: str,
    by: str,
    at: datetime,
) -> Statement:
    stamp = format_time(at)
    return (
        "INSERT INTO bookings (id, code, station, case_id, status, walk_in, "
        "expected_arrival, body, created_by, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            booking_id,
            code,
            station,
            case_id,
            status.value,
            int(walk_in),
            format_time(expected_arrival),
            body,
            by,
            stamp,
            stamp,
        ),
    )


def insert_person(booking_id: str, person: str) -> Statement:
    return ("INSERT INTO booking_persons (booking, person) VALUES (?, ?)", (booking_id, person))


def update_body(booking_id: str, body: str, expected_arrival: datetime, at: datetime) -> Statement:
    return (
        "UPDATE bookings SET body = ?, expected_arrival = ?, updated_at = ? WHERE id = ?",
        (body, format_time(expected_arrival), format_time(at), booking_id),
    )


def set_eta(booking_id: str, eta: datetime, at: datetime) -> Statement:
    return (
        "UPDATE bookings SET eta = ?, updated_at = ? WHERE id = ?",
        (format_time(eta), format_time(at), booking_id),
    )


def delete_assignments(booking_id: str) -> Statement:
    return ("DELETE FROM assignments WHERE booking = ?", (booking_id,))


def set_level(booking_id: str, person: str, level: Level) -> Statement:
    return (
        "UPDATE booking_persons SET level = ? WHERE booking = ? AND person = ?",
        (level.value, booking_id, person),
    )


def event(
    at: str,
    kind: str,
    station: str | None,
    booking: str | None,
    body: dict[str, Any],
    person: str | None = None,
) -> Statement:
    return (
        "INSERT INTO plan_events (at, kind, station, booking, person, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at, kind, station, booking, person, json.dumps(body, ensure_ascii=False)),
    )


def state(before: BookingState, after: BookingState, now: datetime) -> list[Statement]:
    """The rows that store lifecycle state ``after`` where it differs from ``before``."""
    statements: list[Statement] = []
    if before == after:
        return statements
    statements.append(
        (
            "UPDATE bookings SET status = ?, arrived_at = ?, verified_at = ?, entered_at = ?, "
            "closed_at = ?, updated_at = ? WHERE id = ?",
            (
                after.status.value,
                _stamp(after.arrived_at),
                _stamp(after.verified_at),
                _stamp(after.entered_at),
                _stamp(after.closed_at),
                format_time(now),
                after.id,
            ),
        )
    )
    old = {p.id: p for p in before.persons}
    for person in after.persons:
        if old.get(person.id) == person:
            continue
        statements.append(
            (
                "UPDATE booking_persons SET session_started_at = ?, session_ended_at = ?, "
                "exited_at = ? WHERE booking = ? AND person = ?",
                (
                    _stamp(person.session_started_at),
                    _stamp(person.session_ended_at),
                    _stamp(person.exited_at),
                    after.id,
                    person.id,
                ),
            )
        )
    return statements
