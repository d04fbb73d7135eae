"""What the fast-lane door shows: a booking found by its code, its card (persons with their
custody clock, band and open alarms), and today's expected arrivals with their vans.

Reads only: the door's actions go through the same planning service and band functions as the
API routes (``central/web/door.py``). The card joins the booking as the API answers it
(:func:`central.api.routes.bookings.load_booking`) with the roster the custody wall reads
(:func:`central.persons.persons`), so the door and ``GET /api/v1/persons`` never disagree.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from central import persons as roster
from central import presence
from central import vans as van_reads
from central.api.booking_models import BookingOut
from central.api.routes.bookings import load_booking
from central.auth import Principal
from central.booking_record import BookingRecord
from central.planning import PlanningService, iso
from central.settings import CentralSettings
from edge_agent.wire import format_time
from scheduling.lifecycle import EXPECTED

# Codes are 8 characters of a 32-letter alphabet; the API takes 4 to 16 (``Verification``).
MIN_CODE_CHARS = 4
MAX_CODE_CHARS = 16
# The arrivals list is a desk's view of one day, not a report.
MAX_ARRIVALS = 200
# Late in the evening the desk still sees the vans due in the first hours after midnight.
ARRIVALS_AHEAD = timedelta(hours=3)
# Booked and not come yet (the lifecycle's EXPECTED), in the order the query's placeholders take.
_AWAITED = tuple(sorted(s.value for s in EXPECTED))


def normalise_code(text: str) -> str:
    """A typed or scanned code as the API reads it: trimmed, upper case."""
    return text.strip().upper()


def code_is_well_formed(code: str) -> bool:
    return MIN_CODE_CHARS <= len(code) <= MAX_CODE_CHARS and code.isascii() and code.isalnum()


def booking_of_code(conn: sqlite3.Connection, code: str) -> str | None:
    """The id of the booking whose code is ``code`` (already normalised), or None."""
    row = conn.execute("SELECT id FROM bookings WHERE code = ?", (code,)).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True, slots=True)
class PersonCard:
    """One person on the booking card: who they are, where the plan puts them, their clock,
    band and open alarms (None/empty when the booking is closed or the person has exited)."""

    id: str
    role: str
    sex: str
    minor: bool
    legal_basis: str
    brought_in_at: str
    session_room: str | None
    session_start: str | None
    session_end: str | None
    waiting_room: str | None
    unassigned_rule: str | None
    level: str | None
    remaining_minutes: int | None
    deadline: str | None
    band: str | None
    band_room: str | None
    alarms: tuple[roster.AlarmView, ...]
    exited_at: str | None


@dataclass(frozen=True, slots=True)
class BookingCard:
    booking: BookingOut
    persons: tuple[PersonCard, ...]
    read_at: datetime  # when the card was read: the timer counts on from here

    @property
    def waiting_seconds(self) -> int | None:
        """Seconds since arrival at ``read_at`` while the unit has not entered; the page counts
        on from it with its own monotonic clock (the desk PC's wall clock may be off)."""
        b = self.booking
        if b.arrived_at is None or b.entered_at is not None:
            return None
        return max(0, int((self.read_at - datetime.fromisoformat(b.arrived_at)).total_seconds()))

    @property
    def arrival_to_entry_seconds(self) -> float | None:
        """Arrival to entry as the planning service measured it at entry (entry minus arrival,
        never negative)."""
        b = self.booking
        if b.entered_at is None:
            return None
        entered = datetime.fromisoformat(b.entered_at)
        arrived = datetime.fromisoformat(b.arrived_at) if b.arrived_at else entered
        return max(0.0, (entered - arrived).total_seconds())


def booking_card(
    conn: sqlite3.Connection,
    service: PlanningService,
    settings: CentralSettings,
    principal: Principal,
    booking_id: str,
    now: datetime,
) -> BookingCard:
    """The card of ``booking_id`` as ``principal`` may see it (``load_booking``'s 404/403)."""
    policy = presence.PresencePolicy(
        timedelta(seconds=settings.presence_interval), settings.presence_missed
    )
    entries = [e for e in service.roster(now) if e.booking == booking_id]
    views = {v.entry.person.id: v for v in roster.persons(conn, entries, now, policy)}
    booking = load_booking(conn, booking_id, principal)
    progress = {p.id: p for p in booking.persons}
    cards = []
    assert booking.request is not None  # asked for with_request
    for person in booking.request.persons:
        view = views.get(person.id)
        entry = None if view is None else view.entry
        clock = None if entry is None else entry.clock
        session = None if entry is None else roster.planned(entry)
        if session is None:
            planned = next(
                (a for a in booking.assignments if a.person == person.id and a.kind == "session"),
                None,
            )
            if planned is not None:
                session = {"room": planned.room, "start": planned.start, "end": planned.end}
        waiting = next(
            (a.room for a in booking.assignments if a.person == person.id and a.kind == "waiting"),
            None,
        )
        unassigned = next((u.rule for u in booking.unassigned if u.person == person.id), None)
        done = progress.get(person.id)
        cards.append(
            PersonCard(
                id=person.id,
                role=person.role.value,
                sex=person.sex.value,
                minor=person.minor,
                legal_basis=person.legal_basis.value,
                brought_in_at=format_time(person.brought_in_at),
                session_room=None if session is None else session["room"],
                session_start=None if session is None else session["start"],
                session_end=None if session is None else session["end"],
                waiting_room=waiting,
                unassigned_rule=unassigned,
                level=None if clock is None else clock.level.value,
                remaining_minutes=None if clock is None else clock.remaining_minutes,
                deadline=None if clock is None else iso(clock.deadline),
                band=None if view is None or view.band is None else view.band.band,
                band_room=None if view is None or view.band is None else view.band.room,
                alarms=() if view is None else tuple(view.alarms),
                exited_at=None if done is None else done.exited_at,
            )
        )
    return BookingCard(booking=booking, persons=tuple(cards), read_at=now)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A booking expected today and not yet arrived, with the van that carries it."""

    booking: str
    station: str
    case_id: str
    status: str
    persons: int
    expected_arrival: str
    planned: str  # the stored ETA of a late van, else as booked
    van: str | None
    eta: str | None
    distance_m: float | None
    late: bool  # the van's ETA is late_van_minutes after the planned time
    minutes_late: int | None  # the van's ETA after the planned time, in whole minutes
    overdue: bool  # no van says when, and the planned time is late_van_minutes past


def end_of_day(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return midnight.astimezone(UTC)


def arrivals_until(now: datetime, zone: ZoneInfo) -> datetime:
    """The end of the desk's list: the centre's midnight, or ARRIVALS_AHEAD from now if later."""
    return max(end_of_day(now, zone), now + ARRIVALS_AHEAD)


def arrivals(
    conn: sqlite3.Connection,
    service: PlanningService,
    settings: CentralSettings,
    now: datetime,
) -> list[Arrival]:
    """Bookings expected by the end of today (the centre's day, or ARRIVALS_AHEAD from now
    if that is later) and not yet arrived, the soonest first; an earlier one still awaited
    stays on the list (it is the latest)."""
    late_after = timedelta(minutes=settings.late_van_minutes)
    carried = {
        v.booking.booking: (v.device, v.booking)
        for v in van_reads.vans(
            conn, service.van_states(), now, 1, settings.van_rules(), late_after
        )
        if v.booking is not None
    }
    until = format_time(arrivals_until(now, ZoneInfo(settings.timezone)))
    rows = conn.execute(
        "SELECT id, station, case_id, status, expected_arrival, eta, body FROM bookings "
        "WHERE status IN (?, ?) AND expected_arrival < ? "
        "ORDER BY COALESCE(eta, expected_arrival), id LIMIT ?",
        (*_AWAITED, until, MAX_ARRIVALS),
    ).fetchall()
    found = []
    for booking, station, case_id, status, expected, eta, body in rows:
        record = BookingRecord.from_json(body)
        planned = eta or expected
        van = carried.get(booking)
        van_eta = None if van is None else van[1].eta
        overdue = van_eta is None and datetime.fromisoformat(planned) + late_after < now
        minutes_late = None
        if van_eta is not None:
            behind = datetime.fromisoformat(van_eta) - datetime.fromisoformat(planned)
            minutes_late = int(behind.total_seconds() // 60)
        found.append(
            Arrival(
                booking=booking,
                station=station,
                case_id=case_id,
                status=status,
                persons=len(record.persons),
                expected_arrival=expected,
                planned=planned,
                van=record.van if van is None else van[0],
                eta=van_eta,
                distance_m=None if van is None else van[1].distance_m,
                late=van is not None and van[1].late,
                minutes_late=minutes_late,
                overdue=overdue,
            )
        )
    return found
