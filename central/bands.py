"""Who wears which wristband: bind at entry, unbind at exit or by hand, kept as a history.

One open binding per band and per person (two partial unique indexes, store schema 9), so a
band is never on two people and a person never has two bands. Each function works inside the
caller's open write transaction (``BEGIN IMMEDIATE``): the binding, its audit row and its feed
event commit together. A binding that ends stays in ``band_bindings``: an alarm from a band is
named after whoever wore it when the reading was taken, not whoever wears it now.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central import audit, feed
from edge_agent.wire import format_time
from scheduling.lifecycle import BookingStatus

# A band is bound once the unit is here; before arrival nobody is at the door to put it on.
_BINDABLE = frozenset(
    {BookingStatus.ARRIVED.value, BookingStatus.VERIFIED.value, BookingStatus.IN_AREA.value}
)
EXITED = "exited"
REMOVED = "removed"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    band: str
    booking: str
    person: str
    station: str
    bound_at: str
    bound_by: str
    unbound_at: str | None
    unbound_by: str | None
    unbound_reason: str | None


_COLUMNS = (
    "id, band, booking, person, station, bound_at, bound_by, unbound_at, unbound_by, unbound_reason"
)


class BindingError(Exception):
    """A binding refused; ``holder`` names who already holds the band (or the person's band)."""

    def __init__(self, message: str, holder: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.holder = holder


class BookingNotFoundError(BindingError):
    pass


class BindingConflictError(BindingError):
    pass


def _binding(row: sqlite3.Row | tuple[Any, ...]) -> Binding:
    return Binding(*row)


def current(conn: sqlite3.Connection, booking: str, person: str) -> Binding | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM band_bindings "  # noqa: S608
        "WHERE booking = ? AND person = ? AND unbound_at IS NULL",
        (booking, person),
    ).fetchone()
    return None if row is None else _binding(row)


def holder(conn: sqlite3.Connection, band: str) -> Binding | None:
    """The open binding of ``band``, if someone wears it."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM band_bindings "  # noqa: S608
        "WHERE band = ? AND unbound_at IS NULL",
        (band,),
    ).fetchone()
    return None if row is None else _binding(row)


def worn_at(conn: sqlite3.Connection, band: str, at: str) -> Binding | None:
    """Who wore ``band`` at ``at`` (an RFC 3339 time as the store writes them)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM band_bindings WHERE band = ? AND bound_at <= ? "  # noqa: S608
        "AND (unbound_at IS NULL OR unbound_at > ?) ORDER BY id DESC LIMIT 1",
        (band, at, at),
    ).fetchone()
    return None if row is None else _binding(row)


def bind(
    conn: sqlite3.Connection,
    booking: str,
    person: str,
    band: str,
    actor: audit.Actor,
    now: datetime,
    station_scope: str | None = None,
) -> tuple[Binding, bool]:
    """Put ``band`` on ``person`` of ``booking``; returns the binding and whether it is new
    (binding the band a person already wears again changes nothing). ``station_scope``: the
    station a station token acts for (another station's booking is not found)."""
    row = conn.execute("SELECT station, status FROM bookings WHERE id = ?", (booking,)).fetchone()
    if row is None or (station_scope is not None and row[0] != station_scope):
        raise BookingNotFoundError(f"no booking {booking!r}")
    station, status = str(row[0]), str(row[1])
    progress = conn.execute(
        "SELECT exited_at FROM booking_persons WHERE booking = ? AND person = ?",
        (booking, person),
    ).fetchone()
    if progress is None:
        raise BookingNotFoundError(f"no person {person!r} in booking {booking}")
    if progress[0] is not None:
        raise BindingConflictError(f"{person} exited at {progress[0]}: no band to bind")
    if status not in _BINDABLE:
        raise BindingConflictError(
            f"booking {booking} is {status}: a band is bound once the unit has arrived"
        )
    worn = current(conn, booking, person)
    if worn is not None:
        if worn.band == band:
            return worn, False
        raise BindingConflictError(
            f"{person} of booking {booking} already wears {worn.band}; unbind it first",
            {"band": worn.band, "booking": booking, "person": person},
        )
    taken = holder(conn, band)
    if taken is not None:
        raise BindingConflictError(
            f"band {band} is bound to {taken.person} of booking {taken.booking}",
            {"band": band, "booking": taken.booking, "person": taken.person},
        )
    at = format_time(now)
    by = f"{actor.role}:{actor.name}"
    cursor = conn.execute(
        "INSERT INTO band_bindings (band, booking, person, station, bound_at, bound_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (band, booking, person, station, at, by),
    )
    audit.append(conn, actor, audit.AuditRecord("band.bound", booking, _detail(person, band)))
    feed.append(
        conn, "band_bound", station, {"booking": booking, "person": person, "band": band}, at=at
    )
    found = current(conn, booking, person)
    if found is None or found.id != cursor.lastrowid:
        raise RuntimeError(f"binding of {band} not found after its insert")
    return found, True


def unbind(
    conn: sqlite3.Connection,
    booking: str,
    person: str,
    actor: audit.Actor,
    now: datetime,
    reason: str = REMOVED,
    station_scope: str | None = None,
) -> Binding:
    """Take the band off ``person``; raises :class:`BookingNotFoundError` when none is worn."""
    row = conn.execute("SELECT station FROM bookings WHERE id = ?", (booking,)).fetchone()
    if row is None or (station_scope is not None and row[0] != station_scope):
        raise BookingNotFoundError(f"no booking {booking!r}")
    worn = current(conn, booking, person)
    if worn is None:
        raise BookingNotFoundError(f"{person} of booking {booking} wears no band")
    at = format_time(now)
    by = f"{actor.role}:{actor.name}"
    conn.execute(
        "UPDATE band_bindings SET unbound_at = ?, unbound_by = ?, unbound_reason = ? WHERE id = ?",
        (at, by, reason, worn.id),
    )
    audit.append(
        conn, actor, audit.AuditRecord("band.unbound", booking, _detail(person, worn.band))
    )
    feed.append(
        conn,
        "band_unbound",
        worn.station,
        {"booking": booking, "person": person, "band": worn.band, "reason": reason},
        at=at,
    )
    ended = conn.execute(
        f"SELECT {_COLUMNS} FROM band_bindings WHERE id = ?",  # noqa: S608
        (worn.id,),
    ).fetchone()
    return _binding(ended)


def release_statements(
    booking: str, person: str | None, at: datetime, reason: str
) -> list[tuple[str, tuple[Any, ...]]]:
    """The rows that end the open bindings of ``person`` (every person when None) of
    ``booking``, each told to the stream, for the planner's own transaction (an exit, a
    booking closed)."""
    stamp = format_time(at)
    which = "booking = ? AND unbound_at IS NULL" + ("" if person is None else " AND person = ?")
    args: tuple[Any, ...] = (booking,) if person is None else (booking, person)
    return [
        (
            # The stream's event first: the UPDATE below ends the rows it selects.
            "INSERT INTO feed (at, kind, station, audience, body) "  # noqa: S608 (fixed clauses)
            "SELECT ?, 'band_unbound', station, ?, json_object('booking', booking, "
            f"'person', person, 'band', band, 'reason', ?) FROM band_bindings WHERE {which}",
            (stamp, feed.Audience.CENTRE.value, reason, *args),
        ),
        (
            "UPDATE band_bindings SET unbound_at = ?, unbound_by = 'system:central', "  # noqa: S608
            f"unbound_reason = ? WHERE {which}",
            (stamp, reason, *args),
        ),
    ]


def _detail(person: str, band: str) -> dict[str, str]:
    # Ids only: the person id is the booking's own reference, the band a device id.
    return {"person": person, "band": band}
