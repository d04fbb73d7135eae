"""Reinstating persons a re-dispatch left out: their old place back, lawfully, at nobody's
expense among those placed before."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.dispatchers import PRIORITIES, dispatch_persons
from scheduling.generator import DayFamily, generate, generate_day
from scheduling.model import Booking, PersonKey, PlanRoom
from scheduling.redispatch import movable_keys
from scheduling.reinstate import reinstate
from tests.scheduling.strategies import DAY, bookings, rooms

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _generated(persons: int, count: int, seed: int) -> tuple[list[PlanRoom], list[Booking]]:
    day = generate_day(persons, count, seed)
    return day.rooms, day.bookings


DAYS = st.one_of(
    st.tuples(rooms(), bookings()),
    st.builds(_generated, st.integers(10, 60), st.integers(5, 10), st.integers(0, 10**6)),
)


def _placed(planner: Planner) -> set[PersonKey]:
    return {key for key in planner.assignments if planner.session_of(key) is not None}


def _dispatched(planner: Planner, rule: str, now: int) -> Planner:
    trial = planner.copy()
    keys = movable_keys(planner, now, now + 48 * 60)
    for key in keys:
        trial.rebook(key, [])
    dispatch_persons(trial, keys, PRIORITIES[rule], now)
    return trial


@PROPERTY
@given(DAYS, st.sampled_from(sorted(PRIORITIES)))
def test_reinstated_plans_are_lawful_and_lose_nobody_placed_before(
    generated: tuple[list[PlanRoom], list[Booking]], rule: str
) -> None:
    plan_rooms, day = generated
    original = Planner(plan_rooms)
    for booking in day:
        original.add_booking(booking)
    now = min((b.expected_arrival for b in day), default=DAY) - 60
    dispatched = _dispatched(original, rule, now)
    before = _placed(original)
    lost = before - _placed(dispatched)
    kept = before & _placed(dispatched)
    snapshot = dispatched.all_assignments()

    result = reinstate(dispatched, original, lost, before, now, time.monotonic() + 5)

    assert dispatched.all_assignments() == snapshot  # not changed in place
    assert kept <= _placed(result)
    assert (
        check_plan(
            result.rooms,
            result.bookings,
            result.all_assignments(),
            result.policy,
            result.fixed,
            now,
        )
        == []
    )


def test_an_overloaded_day_gets_most_of_its_lost_persons_back() -> None:
    day = generate(DayFamily.OVERLOADED, 100, 16, 1)
    original = Planner(day.rooms)
    for booking in day.bookings:
        original.add_booking(booking)
    now = day.day_start
    dispatched = _dispatched(original, "urgent_wspt", now)
    before = _placed(original)
    lost = before - _placed(dispatched)
    assert lost

    result = reinstate(dispatched, original, lost, before, now, time.monotonic() + 30)

    assert len(before - _placed(result)) <= len(lost) // 2
