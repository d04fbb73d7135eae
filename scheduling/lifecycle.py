"""The booking lifecycle as pure rules: which step may follow which, and what each changes.

A booking is ``confirmed`` (every person placed) or ``waitlisted`` when made. The unit
``arrived`` (at the gate, or its van inside the geofence), is ``verified`` by its code at the
door (a walk-in skips this) and enters the handling area (``in_area``). Each person then waits,
has a session (H8: only after entry; H7: a minor's only once the guardian is there) and exits;
an exit during a session ends the session at the exit. When the last person is out the booking
is ``exited``. Before entry a booking may be ``cancelled``; before arrival, released as a
``no_show``.

Every step is a function of (state, step, now) that returns the new state or raises
:class:`LifecycleError` naming the state it found. Nothing here reads a clock, a store or the
plan: the planning service decides with these rules, then stores and re-plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    ARRIVED = "arrived"
    VERIFIED = "verified"
    IN_AREA = "in_area"
    EXITED = "exited"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def closed(self) -> bool:
        return self in CLOSED

    @property
    def arrived(self) -> bool:
        return self in (BookingStatus.ARRIVED, BookingStatus.VERIFIED, BookingStatus.IN_AREA)


ACTIVE = frozenset(
    {
        BookingStatus.CONFIRMED,
        BookingStatus.WAITLISTED,
        BookingStatus.ARRIVED,
        BookingStatus.VERIFIED,
        BookingStatus.IN_AREA,
    }
)
CLOSED = frozenset({BookingStatus.EXITED, BookingStatus.CANCELLED, BookingStatus.NO_SHOW})
# Booked, not yet come: the plan may still move the booking between these two.
EXPECTED = frozenset({BookingStatus.CONFIRMED, BookingStatus.WAITLISTED})


class PersonStatus(StrEnum):
    EXPECTED = "expected"  # the unit has not entered the handling area
    WAITING = "waiting"  # inside, no session yet
    IN_SESSION = "in_session"
    QUESTIONED = "questioned"  # the session is over, the person still inside
    EXITED = "exited"


INSIDE = frozenset({PersonStatus.WAITING, PersonStatus.IN_SESSION, PersonStatus.QUESTIONED})


class LifecycleError(Exception):
    """A step the current state does not allow; ``state`` is that state."""

    def __init__(self, state: BookingStatus | PersonStatus, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass(frozen=True, slots=True)
class PersonState:
    id: str
    status: PersonStatus = PersonStatus.EXPECTED
    minor: bool = False
    guardian_at: datetime | None = None  # H7: a minor's session not before this
    session_started_at: datetime | None = None
    session_ended_at: datetime | None = None
    exited_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BookingState:
    id: str
    status: BookingStatus
    persons: tuple[PersonState, ...]
    walk_in: bool = False
    arrived_at: datetime | None = None
    verified_at: datetime | None = None
    entered_at: datetime | None = None
    closed_at: datetime | None = None

    def person(self, person_id: str) -> PersonState:
        for person in self.persons:
            if person.id == person_id:
                return person
        raise KeyError(person_id)

    def _with(self, person: PersonState) -> tuple[PersonState, ...]:
        return tuple(person if p.id == person.id else p for p in self.persons)


# --- steps -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placed:
    """The plan placed every person (``complete``) or not: confirmed or waitlisted."""

    complete: bool


@dataclass(frozen=True, slots=True)
class Arrive:
    pass


@dataclass(frozen=True, slots=True)
class Verify:
    pass


@dataclass(frozen=True, slots=True)
class Enter:
    pass


@dataclass(frozen=True, slots=True)
class StartSession:
    person: str


@dataclass(frozen=True, slots=True)
class EndSession:
    person: str


@dataclass(frozen=True, slots=True)
class Exit:
    person: str


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


@dataclass(frozen=True, slots=True)
class NoShow:
    pass


Step = Placed | Arrive | Verify | Enter | StartSession | EndSession | Exit | Cancel | NoShow


def apply(state: BookingState, step: Step, now: datetime) -> BookingState:
    """The state after ``step`` at ``now``; :class:`LifecycleError` if the state forbids it."""
    match step:
        case Placed(complete):
            return placed(state, complete)
        case Arrive():
            return arrive(state, now)
        case Verify():
            return verify(state, now)
        case Enter():
            return enter(state, now)
        case StartSession(person):
            return start_session(state, person, now)
        case EndSession(person):
            return end_session(state, person, now)
        case Exit(person):
            return exit_area(state, person, now)
        case Cancel():
            return close(state, BookingStatus.CANCELLED, now)
        case NoShow():
            return close(state, BookingStatus.NO_SHOW, now)


def require_open(state: BookingState) -> None:
    """Every step needs an open booking: a closed one is history."""
    if state.status.closed:
        raise LifecycleError(state.status, f"booking {state.id} is {state.status}")


def booked(complete: bool) -> BookingStatus:
    """A new booking's status: every person placed, or on the waitlist."""
    return BookingStatus.CONFIRMED if complete else BookingStatus.WAITLISTED


def placed(state: BookingState, complete: bool) -> BookingState:
    """A re-plan's verdict: only a booking not yet come changes its status with it."""
    require_open(state)
    if state.status not in EXPECTED:
        return state
    return replace(state, status=booked(complete))


def arrive(state: BookingState, now: datetime) -> BookingState:
    require_open(state)
    if state.arrived_at is not None:
        raise LifecycleError(
            state.status, f"booking {state.id} is {state.status}: it arrived already"
        )
    return replace(state, status=BookingStatus.ARRIVED, arrived_at=now)


def verify(state: BookingState, now: datetime) -> BookingState:
    """The code checked at the door (the caller compares it); arrives the unit if need be."""
    require_open(state)
    if state.status in (BookingStatus.VERIFIED, BookingStatus.IN_AREA):
        raise LifecycleError(
            state.status, f"booking {state.id} is {state.status}: it is verified already"
        )
    if state.arrived_at is None:
        state = arrive(state, now)
    return replace(state, status=BookingStatus.VERIFIED, verified_at=now)


def enter(state: BookingState, now: datetime) -> BookingState:
    require_open(state)
    if state.status is BookingStatus.IN_AREA:
        raise LifecycleError(
            state.status, f"booking {state.id} is {state.status}: the unit entered already"
        )
    if not state.walk_in and state.verified_at is None:
        raise LifecycleError(
            state.status,
            f"booking {state.id} is {state.status}: a booked unit enters after its booking "
            "is verified",
        )
    if state.arrived_at is None:
        state = arrive(state, now)
    persons = tuple(
        replace(p, status=PersonStatus.WAITING) if p.status is PersonStatus.EXPECTED else p
        for p in state.persons
    )
    return replace(state, status=BookingStatus.IN_AREA, entered_at=now, persons=persons)


def _person(state: BookingState, person_id: str) -> PersonState:
    try:
        return state.person(person_id)
    except KeyError:
        raise LifecycleError(
            state.status, f"booking {state.id} is {state.status}: no person {person_id!r} in it"
        ) from None


def start_session(state: BookingState, person_id: str, now: datetime) -> BookingState:
    require_open(state)
    person = _person(state, person_id)
    if state.status is not BookingStatus.IN_AREA:
        # H8: questioning comes after entry into the handling area.
        raise LifecycleError(
            state.status,
            f"booking {state.id} is {state.status}: the unit has not entered the handling area",
        )
    if person.status is not PersonStatus.WAITING:
        raise LifecycleError(
            person.status,
            f"{person_id} is {person.status}: a session starts for a person waiting inside",
        )
    if person.minor and person.guardian_at is not None and now < person.guardian_at:
        raise LifecycleError(
            person.status,
            f"{person_id} is {person.status}: H7, a minor's session not before the guardian "
            f"is there ({person.guardian_at.isoformat()})",
        )
    started = replace(person, status=PersonStatus.IN_SESSION, session_started_at=now)
    return replace(state, persons=state._with(started))


def end_session(state: BookingState, person_id: str, now: datetime) -> BookingState:
    require_open(state)
    person = _person(state, person_id)
    if person.status is not PersonStatus.IN_SESSION:
        raise LifecycleError(
            person.status, f"{person_id} is {person.status}: no session is running"
        )
    ended = replace(person, status=PersonStatus.QUESTIONED, session_ended_at=now)
    return replace(state, persons=state._with(ended))


def exit_area(state: BookingState, person_id: str, now: datetime) -> BookingState:
    """A person leaves the handling area; a session still running ends now. The last one out
    closes the booking."""
    require_open(state)
    person = _person(state, person_id)
    if person.status not in INSIDE:
        raise LifecycleError(
            person.status, f"{person_id} is {person.status}: only a person inside exits"
        )
    if person.status is PersonStatus.IN_SESSION:
        person = replace(person, session_ended_at=now)
    gone = replace(person, status=PersonStatus.EXITED, exited_at=now)
    state = replace(state, persons=state._with(gone))
    if all(p.status is PersonStatus.EXITED for p in state.persons):
        state = replace(state, status=BookingStatus.EXITED, closed_at=now)
    return state


def close(state: BookingState, status: BookingStatus, now: datetime) -> BookingState:
    """Cancelled, or released as a no-show: the rooms go back to the plan."""
    if status not in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW):
        raise ValueError(f"close: {status} is not a closing status")
    require_open(state)
    if status is BookingStatus.NO_SHOW and state.arrived_at is not None:
        raise LifecycleError(
            state.status, f"booking {state.id} is {state.status}: the unit came, not a no-show"
        )
    if status is BookingStatus.CANCELLED and (
        state.status is BookingStatus.IN_AREA
        or any(p.session_started_at is not None for p in state.persons)
    ):
        raise LifecycleError(
            state.status,
            f"booking {state.id} is {state.status}: the unit is in the handling area, record "
            "each person's exit instead",
        )
    return replace(state, status=status, closed_at=now)


def person_status(
    entered: bool,
    session_started_at: datetime | None,
    session_ended_at: datetime | None,
    exited_at: datetime | None,
) -> PersonStatus:
    """A person's status from what the store records of them."""
    if exited_at is not None:
        return PersonStatus.EXITED
    if session_ended_at is not None:
        return PersonStatus.QUESTIONED
    if session_started_at is not None:
        return PersonStatus.IN_SESSION
    return PersonStatus.WAITING if entered else PersonStatus.EXPECTED
