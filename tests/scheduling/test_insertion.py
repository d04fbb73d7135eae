"""Insertion at booking time: a newcomer takes an earlier slot only when the move pays."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling import improver, insertion
from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.insertion import CHANGE_PENALTY, insert_earlier
from scheduling.limit_slack import SLACK_WEIGHT, shortfall
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    LegalBasis,
    Person,
    PersonKey,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.needs import CannotPlace, need_for
from scheduling.rooms import RoomType
from tests.scheduling.plans import lawful
from tests.scheduling.strategies import DAY, bookings, rooms

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def witness_booking(bid: str, ready: int, minutes: int) -> Booking:
    """One witness whose session can start at ``ready``."""
    return Booking(
        id=bid,
        station=f"station-{bid}",
        case_id=f"case-{bid}",
        case_type="theft",
        officers=2,
        expected_arrival=ready - 10,  # booked entry: 10 minutes
        session_minutes=minutes,
        persons=(
            Person(
                id="p1",
                role=PersonRole.WITNESS,
                minor=False,
                sex=Sex.MALE,
                brought_in_at=ready - 40,
                legal_basis=LegalBasis.VOLUNTARY,
            ),
        ),
    )


def one_room() -> Planner:
    return Planner([PlanRoom("inquiry-1", RoomType.INQUIRY, 1, frozenset(), True)])


def start_of(planner: Planner, key: PersonKey) -> int:
    session = planner.session_of(key)
    assert session is not None
    return session.start


def test_the_penalty_is_the_improvers() -> None:
    assert insertion.CHANGE_PENALTY == improver.CHANGE_PENALTY


def test_an_early_arrival_booked_late_goes_first_and_the_later_one_waits_a_little() -> None:
    planner = one_room()
    planner.add_booking(witness_booking("later", DAY + 60, 120))  # 09:00-11:00 (DAY is 08:00)
    planner.add_booking(witness_booking("early", DAY, 60))
    # Without the swap "early" would wait 3 h for 11:00; with it "later" waits one hour.
    assert start_of(planner, ("early", "p1")) == DAY
    assert start_of(planner, ("later", "p1")) == DAY + 60
    assert (
        check_plan(planner.rooms, planner.bookings, planner.all_assignments(), planner.policy) == []
    )


def test_no_swap_when_the_moved_person_would_lose_as_much_as_the_newcomer_gains() -> None:
    planner = one_room()
    planner.add_booking(witness_booking("later", DAY + 30, 60))  # 08:30-09:30
    planner.add_booking(witness_booking("early", DAY, 60))
    # A swap saves "early" 90 minutes and costs "later" 30: it pays, so it is made...
    assert start_of(planner, ("early", "p1")) == DAY
    other = one_room()
    other.add_booking(witness_booking("later", DAY + 5, 60))  # 08:05-09:05
    other.add_booking(witness_booking("early", DAY, 60))
    # ...but here "early" would save 65 minutes and cost "later" 55 plus the penalty: no swap.
    assert start_of(other, ("later", "p1")) == DAY + 5
    assert start_of(other, ("early", "p1")) == DAY + 65


def test_a_started_session_is_never_moved() -> None:
    planner = one_room()
    planner.add_booking(witness_booking("later", DAY + 60, 120))
    planner.start_session(("later", "p1"))
    planner.add_booking(witness_booking("early", DAY, 90))  # does not fit before 09:00
    assert start_of(planner, ("later", "p1")) == DAY + 60
    assert start_of(planner, ("early", "p1")) == DAY + 180


def test_a_session_under_way_by_now_is_not_moved() -> None:
    planner = one_room()
    planner.add_booking(witness_booking("later", DAY + 60, 120))  # 09:00-11:00
    # Booked at 09:10: "later" is in the room (not yet marked started), so it stays.
    planner.add_booking(witness_booking("early", DAY, 60), now=DAY + 70)
    assert start_of(planner, ("later", "p1")) == DAY + 60
    assert start_of(planner, ("early", "p1")) == DAY + 180


def _cost(planner: Planner, keys: list[PersonKey]) -> float:
    total = 0.0
    for key in keys:
        booking = planner.bookings[key[0]]
        person = booking.person(key[1])
        session = planner.session_of(key)
        assert session is not None
        need = need_for(booking, person, planner.policy)
        total += planner.policy.weight(person) * (session.start - need.earliest_start)
        total += SLACK_WEIGHT * shortfall(need, session.start)
    return total


@PROPERTY
@given(rooms(), bookings(), st.data())
def test_a_swap_saves_more_than_its_penalty_and_keeps_every_rule(
    plan_rooms: list[PlanRoom], day: list[Booking], data: st.DataObject
) -> None:
    planner = Planner(plan_rooms)
    now = DAY + data.draw(st.integers(0, 6 * 60))
    for item in day:
        planner.add_booking(item)
    started = (
        data.draw(st.sets(st.sampled_from(sorted(planner.assignments))))
        if planner.assignments
        else set()
    )
    for key in started:
        if all(a.start >= now for a in planner.assignments[key]):
            continue
        planner.start_session(key)
    placed = sorted(key for key in planner.assignments if planner.session_of(key))
    if not placed:
        return
    key = data.draw(st.sampled_from(placed))
    booking = planner.bookings[key[0]]
    try:
        need = need_for(booking, booking.person(key[1]), planner.policy)
    except CannotPlace:
        return
    before: dict[PersonKey, list[Assignment]] = {k: list(v) for k, v in planner.assignments.items()}
    changed = insert_earlier(planner, key, need, now, math.inf)
    after = planner.assignments
    assert set(after) == set(before)  # nobody placed is dropped
    moved = [k for k in before if before[k] != after[k] and k != key]
    if not changed:
        assert moved == []
        assert after[key] == before[key]
        return
    assert len(moved) == 1
    (other,) = moved
    assert other not in planner.fixed
    assert other[0] != key[0]
    assert all(a.start >= now for a in before[other])
    saved = _cost_from(planner, before, [key, other]) - _cost(planner, [key, other])
    assert saved > CHANGE_PENALTY
    assert lawful(planner)


def _cost_from(
    planner: Planner, assignments: dict[PersonKey, list[Assignment]], keys: list[PersonKey]
) -> float:
    total = 0.0
    for key in keys:
        booking = planner.bookings[key[0]]
        person = booking.person(key[1])
        start = next(a.start for a in assignments[key] if a.kind is AssignmentKind.SESSION)
        need = need_for(booking, person, planner.policy)
        total += planner.policy.weight(person) * (start - need.earliest_start)
        total += SLACK_WEIGHT * shortfall(need, start)
    return total
