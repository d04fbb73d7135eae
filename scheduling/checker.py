"""The independent plan checker: every hard rule, verified from the plan alone.

It shares no bookkeeping with the allocator (no busy lists, no needs): it reads rooms, bookings
and assignments and tests each rule the plain way, pair by pair, so that a fault in the
allocator's shortcuts is caught rather than repeated. Slow on purpose is fine; it runs after
every re-plan and in the tests, not on the booking path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    Minute,
    Person,
    PersonKey,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.policy import Policy
from scheduling.rooms import Equipment, RoomType

_QUESTIONING = {
    RoomType.INTERROGATION: "suspect",
    RoomType.INQUIRY: "witness or victim",
    RoomType.MINORS: "minor",
    RoomType.ONE_STOP: "minor victim of sexual abuse",
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str


def check_plan(
    rooms: Mapping[str, PlanRoom],
    bookings: Mapping[str, Booking],
    assignments: Iterable[Assignment],
    policy: Policy,
    fixed: Iterable[PersonKey] = (),
    now: Minute | None = None,
) -> list[Violation]:
    """Every hard-rule violation in the plan (empty when the plan is lawful).

    What has started is judged as it was planned, not as it turned out: for ``fixed`` persons
    (session started) a room that broke later (H9) or a session that overran toward the legal
    limit (H5) is the custody clock's business (red, black), not a planning fault. Likewise
    assignments over by ``now`` for H9."""
    found: list[Violation] = []
    items = list(assignments)
    started = set(fixed)
    persons: dict[PersonKey, tuple[Booking, Person]] = {
        (b.id, p.id): (b, p) for b in bookings.values() for p in b.persons
    }

    def bad(rule: str, message: str) -> None:
        found.append(Violation(rule, message))

    sessions_by_person: dict[PersonKey, list[Assignment]] = {}
    for item in items:
        key = (item.booking, item.person)
        if key not in persons:
            bad("plan", f"{key} is assigned but belongs to no booking")
            continue
        if item.end <= item.start:
            bad("plan", f"{key} has an empty or reversed interval in {item.room}")
        room = rooms.get(item.room)
        if room is None:
            bad("plan", f"{key} is assigned to unknown room {item.room!r}")
            continue
        if not room.available and key not in started and (now is None or item.end > now):
            bad("H9", f"{key} is planned in {room.id}, which is not in service")
        if item.kind is AssignmentKind.SESSION:
            sessions_by_person.setdefault(key, []).append(item)
        elif room.type is not RoomType.WAITING:
            bad("H2", f"{key} is held in {room.id}, which is not a waiting room")

    for key, sessions in sessions_by_person.items():
        booking, person = persons[key]
        if len(sessions) > 1:
            bad("plan", f"{key} has {len(sessions)} sessions")
        for session in sessions:
            _check_session(
                found, rooms[session.room], booking, person, session, policy, key, key in started
            )

    _check_rooms(found, rooms, items, policy, started)
    _check_holding(found, rooms, persons, items)
    _check_parallel(found, bookings, items)
    _check_waiting_before_session(found, items)
    return found


def _check_session(
    found: list[Violation],
    room: PlanRoom,
    booking: Booking,
    person: Person,
    session: Assignment,
    policy: Policy,
    key: PersonKey,
    started: bool,
) -> None:
    # H3, written from the table in domain.md rather than from the allocator's helper.
    if person.minor and person.role is PersonRole.VICTIM and person.sexual_abuse_victim:
        wanted = RoomType.ONE_STOP
    elif person.minor:
        wanted = RoomType.MINORS
    elif person.role is PersonRole.SUSPECT:
        wanted = RoomType.INTERROGATION
    else:
        wanted = RoomType.INQUIRY
    if room.type is not wanted:
        found.append(
            Violation(
                "H3",
                f"{key} ({person.role}, minor={person.minor}) is questioned "
                f"in {room.id}, a {room.type} room; a {wanted} room is "
                f"for a {_QUESTIONING[wanted]}",
            )
        )
    serious = booking.case_type in policy.serious_case_types
    if (booking.recording or serious) and Equipment.RECORDING not in room.equipment:
        found.append(Violation("H4", f"{key}: {room.id} has no audio-video recording"))
    if booking.interpreter and Equipment.INTERPRETER not in room.equipment:
        found.append(Violation("H4", f"{key}: {room.id} has no interpreter link"))
    hours = policy.limit_hours.get(person.legal_basis)
    if hours is not None and not started:
        deadline = person.brought_in_at + int(hours * 60)
        if session.end + policy.exit_minutes > deadline:
            found.append(
                Violation(
                    "H5",
                    f"{key}: session and exit end at "
                    f"{session.end + policy.exit_minutes}, "
                    f"after the limit {deadline}",
                )
            )
    if booking.officers < 2:
        found.append(Violation("H6", f"{key}: {booking.officers} officer(s) cannot question"))
    if person.minor:
        if person.guardian_at is None or session.start < person.guardian_at:
            found.append(Violation("H7", f"{key}: a minor's session before the guardian is there"))
        if (
            person.role is PersonRole.SUSPECT
            and person.sex is Sex.FEMALE
            and not booking.female_staff
        ):
            found.append(Violation("H7", f"{key}: female minor suspect without female staff"))
    steps = policy.entry_minutes_walk_in if booking.walk_in else policy.entry_minutes_booked
    ready = (
        booking.expected_arrival + steps + (policy.sobering_minutes if person.intoxicated else 0)
    )
    if session.start < ready and not started:
        # A session that started is judged by the lifecycle (after entry, H8), not by the
        # times the plan expected the entry steps to take.
        found.append(
            Violation(
                "H8",
                f"{key}: questioned at {session.start}, before entry "
                f"steps{' and sobering' if person.intoxicated else ''} "
                f"are done at {ready}",
            )
        )


def _check_rooms(
    found: list[Violation],
    rooms: Mapping[str, PlanRoom],
    items: list[Assignment],
    policy: Policy,
    started: set[PersonKey],
) -> None:
    """H1: one session per questioning room at a time, cleaning buffer included. Two sessions
    that both started are what happened, not a plan to judge."""
    by_room: dict[str, list[Assignment]] = {}
    for item in items:
        if item.kind is AssignmentKind.SESSION and item.room in rooms:
            by_room.setdefault(item.room, []).append(item)
    for room_id, sessions in by_room.items():
        buffer = policy.cleaning_minutes.get(rooms[room_id].type, 0)
        for first, second in combinations(sessions, 2):
            if first.key in started and second.key in started:
                continue
            if first.start < second.end + buffer and second.start < first.end + buffer:
                found.append(
                    Violation(
                        "H1",
                        f"{room_id}: {first.key} and {second.key} overlap "
                        f"(cleaning buffer {buffer} min)",
                    )
                )


def _check_holding(
    found: list[Violation],
    rooms: Mapping[str, PlanRoom],
    persons: Mapping[PersonKey, tuple[Booking, Person]],
    items: list[Assignment],
) -> None:
    """H2 in waiting rooms: apart from co-suspects, the other sex, the other age group; and
    never more people than the room holds."""
    by_room: dict[str, list[Assignment]] = {}
    for item in items:
        if item.kind is AssignmentKind.WAITING and item.room in rooms:
            by_room.setdefault(item.room, []).append(item)
    for room_id, held in by_room.items():
        for first, second in combinations(held, 2):
            if not (first.start < second.end and second.start < first.end):
                continue
            (b1, p1), (b2, p2) = persons[first.key], persons[second.key]
            if p1.sex is not p2.sex:
                found.append(
                    Violation(
                        "H2",
                        f"{room_id}: {first.key} and {second.key}, men and women held together",
                    )
                )
            if p1.minor != p2.minor:
                found.append(
                    Violation(
                        "H2",
                        f"{room_id}: {first.key} and {second.key}, an "
                        "adult and a minor held together",
                    )
                )
            if (
                p1.co_suspect_group is not None
                and b1.case_id == b2.case_id
                and p1.co_suspect_group == p2.co_suspect_group
            ):
                found.append(
                    Violation(
                        "H2", f"{room_id}: co-suspects {first.key} and {second.key} held together"
                    )
                )
        capacity = rooms[room_id].capacity
        for item in held:
            # Occupancy only rises at a start, so checking at every start finds the peak.
            present = sum(1 for other in held if other.start <= item.start < other.end)
            if present > capacity:
                found.append(
                    Violation(
                        "H2", f"{room_id}: {present} held at {item.start}, capacity {capacity}"
                    )
                )


def _check_parallel(
    found: list[Violation], bookings: Mapping[str, Booking], items: list[Assignment]
) -> None:
    """H6: parallel sessions of one booking at most officers // 2."""
    by_booking: dict[str, list[Assignment]] = {}
    for item in items:
        if item.kind is AssignmentKind.SESSION and item.booking in bookings:
            by_booking.setdefault(item.booking, []).append(item)
    for booking_id, sessions in by_booking.items():
        cap = bookings[booking_id].officers // 2
        for item in sessions:
            running = sum(1 for other in sessions if other.start <= item.start < other.end)
            if running > cap:
                found.append(
                    Violation(
                        "H6",
                        f"{booking_id}: {running} sessions at "
                        f"{item.start} with {cap * 2} officers' worth",
                    )
                )


def _check_waiting_before_session(found: list[Violation], items: list[Assignment]) -> None:
    sessions = {item.key: item for item in items if item.kind is AssignmentKind.SESSION}
    for item in items:
        if item.kind is AssignmentKind.WAITING:
            session = sessions.get(item.key)
            if session is None or item.end > session.start:
                found.append(
                    Violation(
                        "H2",
                        f"{item.key}: held in {item.room} without a "
                        "session after it, or past its start",
                    )
                )
