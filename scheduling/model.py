"""What the planner works on: rooms as it sees them, bookings, persons and assignments.

Times are whole minutes since 1970-01-01 UTC (``Minute``): the allocator compares thousands of
them per booking, and a minute is finer than any room plan needs. ``to_minute``/``from_minute``
convert at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from scheduling.rooms import Equipment, RoomType

Minute = int
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_minute(moment: datetime) -> Minute:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: planning times carry a time zone")
    return int((moment - _EPOCH).total_seconds() // 60)


def from_minute(minute: Minute) -> datetime:
    return _EPOCH + timedelta(minutes=minute)


class PersonRole(StrEnum):
    SUSPECT = "suspect"
    WITNESS = "witness"
    VICTIM = "victim"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"


class LegalBasis(StrEnum):
    """Which time limit runs from 到案 (domain.md, "Time limits")."""

    CRIMINAL_SUMMONS = "criminal_summons"  # CPL Art. 119: 12 h
    CRIMINAL_SUMMONS_SERIOUS = "criminal_summons_serious"  # CPL Art. 119: 24 h
    ADMINISTRATIVE = "administrative"  # PSAPL Art. 83: 8 h
    ADMINISTRATIVE_DETENTION_LIKELY = "administrative_detention_likely"  # 24 h
    CONTINUED_QUESTIONING = "continued_questioning"  # People's Police Law Art. 9: 24 h
    CONTINUED_QUESTIONING_APPROVED = "continued_questioning_approved"  # 48 h
    CRIMINAL_DETENTION = "criminal_detention"  # CPL Arts. 85, 86: 24 h
    VOLUNTARY = "voluntary"  # a witness or victim who came of their own accord: no clock


class AssignmentKind(StrEnum):
    SESSION = "session"  # questioning in an interrogation, inquiry, minors' or one-stop room
    WAITING = "waiting"  # held in a waiting room (候问室) between entry and the session


@dataclass(frozen=True, slots=True)
class PlanRoom:
    """A room as the planner needs it; ``available`` is false when cleaning or out of order.

    ``adjacent_to`` names the rooms next to this one (S4: sound carries, and co-suspects or a
    witness and a suspect should not hear or see each other); the planner reads it both ways."""

    id: str
    type: RoomType
    capacity: int
    equipment: frozenset[Equipment]
    available: bool = True
    adjacent_to: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    role: PersonRole
    minor: bool
    sex: Sex
    brought_in_at: Minute  # 到案: the legal clock runs from here, travel included
    legal_basis: LegalBasis
    co_suspect_group: str | None = None  # within the booking's case: kept apart from each other
    sexual_abuse_victim: bool = False  # a minor victim of sexual abuse needs the one-stop room
    intoxicated: bool = False  # questioned only after sobering (H8)
    guardian_at: Minute | None = None  # when the guardian or appropriate adult is there (H7)
    session_minutes: int | None = None  # overrides the booking's expected session length


@dataclass(frozen=True, slots=True)
class Booking:
    id: str
    station: str
    case_id: str
    case_type: str
    officers: int
    expected_arrival: Minute
    session_minutes: int
    persons: tuple[Person, ...]
    recording: bool = False
    interpreter: bool = False
    female_staff: bool = False  # a female staff member comes (H7, female minor suspects)
    walk_in: bool = False  # not booked ahead: entry steps take the full time

    def person(self, person_id: str) -> Person:
        for person in self.persons:
            if person.id == person_id:
                return person
        raise KeyError(person_id)


PersonKey = tuple[str, str]  # (booking id, person id)


@dataclass(frozen=True, slots=True)
class Assignment:
    booking: str
    person: str
    kind: AssignmentKind
    room: str
    start: Minute
    end: Minute

    @property
    def key(self) -> PersonKey:
        return (self.booking, self.person)


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A person the planner could not place, with the hard rule that stopped it."""

    booking: str
    person: str
    rule: str  # "H1".."H10"
    reason: str


@dataclass(slots=True)
class Placement:
    """The answer for one booking: what was placed and what was not."""

    assignments: list[Assignment] = field(default_factory=list)
    unassigned: list[Unassigned] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unassigned
