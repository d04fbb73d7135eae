"""The offline reference: a plan made seeing the whole day, to judge the live plan against.

The live allocator answers each booking as it comes, in booking order. The reference knows
every booking at once and dispatches the day as a room flow would if it had: for each room
type, walking forward in time, when a person gets a room the next one is chosen among those
ready by then, by priority. Three priorities are tried and the best plan kept (most persons
placed, then fewest legal-limit misses, then least weighted waiting):

- ``edf``: earliest legal deadline, then weighted shortest session first;
- ``urgent_wspt``: those within ``URGENT_SLACK`` of their deadline first, by deadline; then
  weighted shortest first;
- ``arrival``: each booking whole, in order of expected arrival (what the live allocator
  would do had stations booked in arrival order).

Every person is placed through a :class:`~scheduling.allocator.Planner`, so the reference uses
the allocator's own feasibility rules rather than a copy of them and its plan must pass the
checker like any other. Then the improver (CP-SAT) works on the best plan with a longer budget
than the live service gives it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scheduling.allocator import Planner
from scheduling.improver import apply, charged_waiting, improve
from scheduling.model import Booking, Minute, PersonKey, PlanRoom
from scheduling.needs import CannotPlace, Need, need_for
from scheduling.policy import Policy
from scheduling.rooms import RoomType

URGENT_SLACK = 120  # minutes between the earliest possible end and the legal limit
_NO_DEADLINE = 1 << 40

Priority = Callable[[Need, float], tuple[float, ...]]


def _edf(need: Need, weight: float) -> tuple[float, ...]:
    deadline = _NO_DEADLINE if need.latest_end is None else need.latest_end
    return (deadline, need.duration / weight)


def _urgent_wspt(need: Need, weight: float) -> tuple[float, ...]:
    if need.latest_end is not None:
        slack = need.latest_end - need.earliest_start - need.duration
        if slack < URGENT_SLACK:
            return (0, need.latest_end, need.duration / weight)
    return (1, need.duration / weight, need.earliest_start)


PRIORITIES: dict[str, Priority] = {"edf": _edf, "urgent_wspt": _urgent_wspt}


@dataclass(frozen=True, slots=True)
class Reference:
    planner: Planner
    rule: str  # the dispatching priority whose plan was kept
    improved: bool  # the improver found a better plan within its budget


def dispatch(
    rooms: Iterable[PlanRoom],
    bookings: Iterable[Booking],
    priority: Priority = _edf,
    policy: Policy | None = None,
) -> Planner:
    """The day dispatched by ``priority`` (lower first), one room type after another."""
    planner = Planner(rooms, policy)
    every = list(bookings)
    for booking in every:
        planner.restore(booking, [])
    by_type: dict[RoomType, list[tuple[Minute, PersonKey, tuple[float, ...]]]] = {}
    cannot: list[PersonKey] = []
    for booking in every:
        for person in booking.persons:
            key = (booking.id, person.id)
            try:
                need = need_for(booking, person, planner.policy)
            except CannotPlace:
                cannot.append(key)
                continue
            rank = priority(need, planner.policy.weight(person))
            by_type.setdefault(need.room_type, []).append((need.earliest_start, key, rank))
    planner.replan(cannot)  # leaves each of them unassigned, with the rule
    for room_type in sorted(by_type):
        _dispatch_type(planner, sorted(by_type[room_type]))
    return planner


def _dispatch_type(
    planner: Planner, persons: list[tuple[Minute, PersonKey, tuple[float, ...]]]
) -> None:
    """``persons`` by readiness; when one gets a room, the next is the best of those ready by
    then (the time only moves forward)."""
    ready: list[tuple[tuple[float, ...], PersonKey]] = []
    now = persons[0][0] if persons else 0
    index = 0
    while index < len(persons) or ready:
        if not ready:
            now = max(now, persons[index][0])
        while index < len(persons) and persons[index][0] <= now:
            _ready_at, key, rank = persons[index]
            heapq.heappush(ready, (rank, key))
            index += 1
        _rank, key = heapq.heappop(ready)
        planner.replan([key])
        session = planner.session_of(key)
        if session is not None:
            now = max(now, session.start)


def arrival_order(
    rooms: Iterable[PlanRoom], bookings: Iterable[Booking], policy: Policy | None = None
) -> Planner:
    planner = Planner(rooms, policy)
    for booking in sorted(bookings, key=lambda b: (b.expected_arrival, b.id)):
        planner.add_booking(booking)
    return planner


def plan_score(planner: Planner, horizon_end: Minute) -> tuple[int, int, float]:
    """Lower is better: persons unplaced, legal-limit misses, weighted waiting (unplaced
    persons charged until ``horizon_end``)."""
    misses = sum(1 for item in planner.unassigned.values() if item.rule == "H5")
    return (len(planner.unassigned), misses, charged_waiting(planner, horizon_end))


def reference_plan(
    rooms: Iterable[PlanRoom],
    bookings: Iterable[Booking],
    day_start: Minute,
    budget_seconds: float,
    policy: Policy | None = None,
) -> Reference:
    """The best of the dispatched plans, then improved by CP-SAT for ``budget_seconds``."""
    centre = list(rooms)
    every = list(bookings)
    horizon_end = day_start + 24 * 60
    tried = {name: dispatch(centre, every, rule, policy) for name, rule in PRIORITIES.items()}
    tried["arrival"] = arrival_order(centre, every, policy)
    rule, best = min(tried.items(), key=lambda item: plan_score(item[1], horizon_end))
    improved = False
    if budget_seconds > 0:
        result = improve(best, day_start, budget_seconds, window_minutes=24 * 60)
        if result is not None:
            apply(best, result)
            improved = True
    return Reference(best, rule, improved)
