"""What one person needs from the plan: room type, equipment, earliest start, latest end.

The allocator plans from these. The plan checker derives the same rules again by its own code
(``scheduling.checker``), so that a slip here shows up as a violation instead of being trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduling.model import Booking, Minute, Person, PersonRole, Sex
from scheduling.policy import Policy
from scheduling.rooms import Equipment, RoomType


@dataclass(frozen=True, slots=True)
class Need:
    room_type: RoomType
    equipment: frozenset[Equipment]
    waits_in_holding: bool  # held in a waiting room between entry and the session
    holding_from: Minute  # entry steps (and sobering) done
    earliest_start: Minute  # holding_from, and the guardian there for a minor
    duration: int
    latest_end: Minute | None  # the session must end by then (H5); None: no legal clock


class CannotPlace(Exception):  # noqa: N818 - it is an answer, not a fault
    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


def room_type_for(person: Person) -> RoomType:
    """H3: the room a person is questioned in."""
    if person.minor:
        if person.role is PersonRole.VICTIM and person.sexual_abuse_victim:
            return RoomType.ONE_STOP
        return RoomType.MINORS
    if person.role is PersonRole.SUSPECT:
        return RoomType.INTERROGATION
    return RoomType.INQUIRY


def need_for(booking: Booking, person: Person, policy: Policy) -> Need:
    """The person's need, or :class:`CannotPlace` when no plan could satisfy the hard rules."""
    if booking.officers // 2 < 1:
        raise CannotPlace("H6", f"{booking.officers} officer(s) present: a session needs two")
    if person.minor and person.guardian_at is None:
        raise CannotPlace(
            "H7",
            "a minor is questioned only with a guardian or appropriate "
            "adult present: give guardian_at",
        )
    if (
        person.minor
        and person.role is PersonRole.SUSPECT
        and person.sex is Sex.FEMALE
        and not booking.female_staff
    ):
        raise CannotPlace("H7", "a female minor suspect needs a female staff member present")
    equipment: set[Equipment] = set()
    if booking.recording or booking.case_type in policy.serious_case_types:
        equipment.add(Equipment.RECORDING)
    if booking.interpreter:
        equipment.add(Equipment.INTERPRETER)
    holding_from = booking.expected_arrival + policy.entry_minutes(booking.walk_in)
    if person.intoxicated:
        holding_from += policy.sobering_minutes
    earliest = holding_from
    if person.minor and person.guardian_at is not None:
        earliest = max(earliest, person.guardian_at)
    duration = person.session_minutes or booking.session_minutes
    limit = policy.limit_minutes(person.legal_basis)
    latest_end = None if limit is None else person.brought_in_at + limit - policy.exit_minutes
    if latest_end is not None and earliest + duration > latest_end:
        raise CannotPlace(
            "H5", "even a session at the earliest possible time would end past the legal limit"
        )
    return Need(
        room_type_for(person),
        frozenset(equipment),
        person.role is PersonRole.SUSPECT,
        holding_from,
        earliest,
        duration,
        latest_end,
    )


def may_wait_together(
    person: Person, booking: Booking, other: Person, other_booking: Booking
) -> bool:
    """H2: two persons may share a waiting room if they are of one sex and age group and not
    co-suspects of one case and group."""
    if other.sex is not person.sex or other.minor != person.minor:
        return False
    return not (
        person.co_suspect_group is not None
        and other_booking.case_id == booking.case_id
        and other.co_suspect_group == person.co_suspect_group
    )
