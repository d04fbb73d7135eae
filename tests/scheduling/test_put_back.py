"""Putting back the re-dispatch's small moves: what goes back is exactly where it was, the plan
stays lawful, nobody loses more than a move is worth, and on a feasible day fewer move."""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.generator import DayFamily, generate
from scheduling.improver import charged_waiting
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    LegalBasis,
    Minute,
    Person,
    PersonKey,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.put_back import fewer_moves, put_back
from scheduling.redispatch import redispatch
from scheduling.rooms import RoomType
from tests.scheduling.plans import lawful
from tests.scheduling.strategies import DAY, bookings, rooms

WORTH = 100.0  # the improver's charge per move: 10 weighted minutes, in tenths


def booked(centre: list[PlanRoom], day: list[Booking]) -> Planner:
    planner = Planner(centre)
    for booking in day:
        planner.add_booking(booking)
    return planner


def own_cost(now: Minute) -> Callable[[Planner, PersonKey], float]:
    def cost(planner: Planner, key: PersonKey) -> float:
        return 10 * charged_waiting(planner, now + 48 * 60, [key])

    return cost


def with_changes(planner: Planner, changes: dict[PersonKey, list[Assignment]]) -> Planner:
    changed = planner.copy()
    for key, assignments in changes.items():
        changed.rebook(key, assignments)
    return changed


@settings(max_examples=60, deadline=None)
@given(rooms(), bookings(), st.integers(min_value=0, max_value=6 * 60))
def test_what_goes_back_is_where_it_was_and_the_plan_stays_lawful(
    centre: list[PlanRoom], day: list[Booking], minutes_in: int
) -> None:
    planner = booked(centre, day)
    now = DAY + minutes_in
    for assignment in planner.all_assignments():
        if assignment.start < now and assignment.kind is AssignmentKind.SESSION:
            planner.start_session(assignment.key)
    cost = own_cost(now)
    dispatched = redispatch(
        planner,
        now,
        now + 48 * 60,
        lambda p: charged_waiting(p, now + 48 * 60),
        0,
        time.monotonic() + 5,
    )
    if dispatched is None:
        return
    every = with_changes(planner, dispatched.changes)
    result = put_back(planner, dispatched.changes, cost, WORTH, time.monotonic() + 5)
    fewer = with_changes(planner, result.changes)
    # Checked here without the checker's safety net in fewer_moves.
    assert lawful(fewer, now)
    assert set(result.changes) | result.put_back == set(dispatched.changes)
    assert not set(result.changes) & result.put_back
    for key in result.put_back:
        assert fewer.assignments.get(key) == planner.assignments.get(key)
    for key in result.changes:
        # A move kept has its person's minutes of the re-dispatch: only rooms were swapped.
        kept, dispatched_session = fewer.session_of(key), every.session_of(key)
        assert kept is not None
        assert dispatched_session is not None
        assert (kept.start, kept.end) == (dispatched_session.start, dispatched_session.end)
    lost = sum(cost(fewer, key) - cost(every, key) for key in dispatched.changes)
    assert lost <= WORTH * len(result.put_back)


def suspect(booking_id: str, arrival: Minute) -> Booking:
    return Booking(
        id=booking_id,
        station="s1",
        case_id=f"case-{booking_id}",
        case_type="theft",
        officers=2,
        expected_arrival=arrival,
        session_minutes=60,
        persons=(
            Person(
                "p1",
                PersonRole.SUSPECT,
                False,
                Sex.MALE,
                arrival - 30,
                LegalBasis.CRIMINAL_SUMMONS_SERIOUS,
            ),
        ),
    )


def test_two_sessions_that_only_swapped_rooms_go_back() -> None:
    centre = [
        PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset()),
        PlanRoom("I-2", RoomType.INTERROGATION, 1, frozenset()),
        PlanRoom("W-1", RoomType.WAITING, 4, frozenset()),
    ]
    planner = booked(centre, [suspect("a", DAY + 60), suspect("b", DAY + 60)])
    first, second = planner.session_of(("a", "p1")), planner.session_of(("b", "p1"))
    assert first is not None
    assert second is not None
    assert first.room != second.room
    swapped = {
        ("a", "p1"): [
            Assignment("a", "p1", AssignmentKind.SESSION, second.room, first.start, first.end)
        ],
        ("b", "p1"): [
            Assignment("b", "p1", AssignmentKind.SESSION, first.room, second.start, second.end)
        ],
    }
    result = put_back(planner, swapped, own_cost(DAY), WORTH, time.monotonic() + 5)
    assert result.changes == {}
    assert result.put_back == {("a", "p1"), ("b", "p1")}


def test_on_a_feasible_day_fewer_persons_move_for_about_the_same_waiting() -> None:
    day = generate(DayFamily.FEASIBLE, 100, 16, 3)
    planner = booked(day.rooms, day.bookings)
    now = day.day_start

    def total(plan: Planner) -> float:
        return 10 * charged_waiting(plan, now + 48 * 60)

    dispatched = redispatch(planner, now, now + 48 * 60, total, 0, time.monotonic() + 5)
    assert dispatched is not None
    kept = fewer_moves(
        planner,
        dispatched.changes,
        total,
        own_cost(now),
        WORTH,
        now,
        time.monotonic() + 5,
    )
    assert len(kept) < 0.9 * len(dispatched.changes)
    every, fewer = with_changes(planner, dispatched.changes), with_changes(planner, kept)
    assert lawful(fewer, now)
    assert total(fewer) + WORTH * len(kept) <= total(every) + WORTH * len(dispatched.changes)
    assert total(fewer) < total(planner)
