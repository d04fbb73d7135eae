"""The people in the centre's care, each with plan, clock, band and alarms: the custody wall's
one read (``GET /api/v1/persons``).

The plan and the clocks come from the planning service (:meth:`PlanningService.roster`); the
lifecycle, the bands worn, what the bands last said and the open alarms from the store, read
in one transaction so that they agree with each other.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from central import presence
from central.planning import RosterEntry, iso
from edge_agent.wire import format_time
from scheduling.lifecycle import BookingStatus


@dataclass(frozen=True, slots=True)
class BandView:
    band: str
    bound_at: str
    room: str | None  # where the scanners place it now (None: not placed)
    heard_by: str | None  # the agent whose scanner placed it
    rssi: float | None
    last_heard: str | None
    heart_rate: int | None
    heart_rate_at: str | None
    battery: int | None
    battery_at: str | None


@dataclass(frozen=True, slots=True)
class AlarmView:
    id: int
    kind: str
    severity: str
    state: str
    raised_at: str
    count: int


@dataclass(frozen=True, slots=True)
class PersonView:
    entry: RosterEntry
    booking_status: str
    entered_at: str | None
    session_started_at: str | None
    session_ended_at: str | None
    exited_at: str | None
    band: BandView | None
    alarms: list[AlarmView] = field(default_factory=list)

    @property
    def inside(self) -> bool:
        return self.booking_status == BookingStatus.IN_AREA.value and self.exited_at is None


def _json(text: str | None) -> Mapping[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _latest(states: Iterable[Mapping[str, Any]], kind: str, key: str) -> tuple[int | None, str]:
    """The newest value of ``key`` in a ``kind`` reading across the agents that heard the band."""
    best: tuple[int | None, str] = (None, "")
    for state in states:
        entry = state.get(kind)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("body"), Mapping):
            continue
        value, at = entry["body"].get(key), entry.get("time")
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(at, str):
            moment = presence.parse(at)
            if moment is not None and format_time(moment) > best[1]:
                best = (value, format_time(moment))
    return best


def band_view(
    band: str,
    bound_at: str,
    rows: Iterable[tuple[str, str]],
    now: datetime,
    policy: presence.PresencePolicy,
) -> BandView:
    """What the scanners and the band itself last said, from its ``devices`` rows."""
    states = [(agent, _json(text)) for agent, text in rows]
    sightings = [s for agent, st in states if (s := presence.sighting_of(agent, st)) is not None]
    placed = presence.place(sightings, now, policy)
    heard = [t for _agent, st in states if (t := presence.heard_at(st)) is not None]
    bpm, bpm_at = _latest((st for _a, st in states), "heart_rate", "bpm")
    percent, percent_at = _latest((st for _a, st in states), "battery", "percent")
    return BandView(
        band=band,
        bound_at=bound_at,
        room=None if placed is None else placed.room,
        heard_by=None if placed is None else placed.agent,
        rssi=None if placed is None else placed.rssi,
        last_heard=format_time(max(heard)) if heard else None,
        heart_rate=bpm,
        heart_rate_at=bpm_at or None,
        battery=percent,
        battery_at=percent_at or None,
    )


def persons(
    conn: sqlite3.Connection,
    roster: list[RosterEntry],
    now: datetime,
    policy: presence.PresencePolicy,
    station: str | None = None,
    in_area: bool | None = None,
) -> list[PersonView]:
    """The roster joined with the store, for one ``station`` (None: all); ``in_area`` true:
    only those inside the handling area now, false: only those not (yet) inside."""
    wanted = [e for e in roster if station is None or e.station == station]
    conn.execute("BEGIN")
    try:
        found = [_view(conn, entry, now, policy) for entry in wanted]
    finally:
        conn.execute("ROLLBACK")
    if in_area is not None:
        found = [v for v in found if v.inside == in_area]
    found = [v for v in found if v.exited_at is None]
    found.sort(key=lambda v: (_urgency(v), v.entry.booking, v.entry.person.id))
    return found


def _urgency(view: PersonView) -> int:
    # Least time left first: the wall's first line is the person closest to the legal limit.
    clock = view.entry.clock
    return clock.remaining_minutes if clock is not None else 10**9


def _view(
    conn: sqlite3.Connection, entry: RosterEntry, now: datetime, policy: presence.PresencePolicy
) -> PersonView:
    booking = conn.execute(
        "SELECT status, entered_at FROM bookings WHERE id = ?", (entry.booking,)
    ).fetchone()
    progress = conn.execute(
        "SELECT session_started_at, session_ended_at, exited_at FROM booking_persons "
        "WHERE booking = ? AND person = ?",
        (entry.booking, entry.person.id),
    ).fetchone() or (None, None, None)
    binding = conn.execute(
        "SELECT band, bound_at FROM band_bindings WHERE booking = ? AND person = ? "
        "AND unbound_at IS NULL",
        (entry.booking, entry.person.id),
    ).fetchone()
    band = None
    if binding is not None:
        rows = conn.execute(
            "SELECT agent, state FROM devices WHERE device = ?", (binding[0],)
        ).fetchall()
        band = band_view(binding[0], binding[1], rows, now, policy)
    alarms = [
        AlarmView(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]))
        for r in conn.execute(
            "SELECT id, kind, severity, state, raised_at, count FROM alarms "
            "WHERE booking = ? AND person = ? AND active = 1 ORDER BY id",
            (entry.booking, entry.person.id),
        )
    ]
    return PersonView(
        entry=entry,
        booking_status="" if booking is None else str(booking[0]),
        entered_at=None if booking is None else booking[1],
        session_started_at=progress[0],
        session_ended_at=progress[1],
        exited_at=progress[2],
        band=band,
        alarms=alarms,
    )


def planned(entry: RosterEntry) -> dict[str, str] | None:
    """The person's session as planned now: room, start and end."""
    session = entry.session
    if session is None:
        return None
    return {"room": session.room, "start": iso(session.start), "end": iso(session.end)}
