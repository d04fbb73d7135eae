"""The dispatchers: a day planned person by person in order of priority, seeing every booking.

For each room type, walking forward in time, when a person gets a room the next one is chosen
among those ready by then, by priority (lower first). Every person is placed through a
:class:`~scheduling.allocator.Planner`, so the allocator's own feasibility rules apply and the
plan must pass the checker like any other. The offline reference starts from them, and the
improver uses them to re-dispatch the sessions of the live plan that have not started.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from scheduling.allocator import Planner
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
    dispatch_persons(planner, [(b.id, p.id) for b in every for p in b.persons], priority)
    return planner


def dispatch_persons(
    planner: Planner,
    keys: Iterable[PersonKey],
    priority: Priority = _edf,
    now: Minute | None = None,
) -> None:
    """Place ``keys`` (known to ``planner``, none of them placed) by ``priority``, one room
    type after another, none before ``now``; whoever cannot be placed is left unassigned."""
    by_type: dict[RoomType, list[tuple[Minute, PersonKey, tuple[float, ...]]]] = {}
    cannot: list[PersonKey] = []
    for key in keys:
        booking = planner.bookings[key[0]]
        person = booking.person(key[1])
        try:
            need = need_for(booking, person, planner.policy)
        except CannotPlace:
            cannot.append(key)
            continue
        rank = priority(need, planner.policy.weight(person))
        ready = need.earliest_start if now is None else max(need.earliest_start, now)
        by_type.setdefault(need.room_type, []).append((ready, key, rank))
    planner.replan(cannot, now)  # leaves each of them unassigned, with the rule
    for room_type in sorted(by_type):
        _dispatch_type(planner, sorted(by_type[room_type]), now)


def _dispatch_type(
    planner: Planner,
    persons: list[tuple[Minute, PersonKey, tuple[float, ...]]],
    now: Minute | None,
) -> None:
    """``persons`` by readiness; when one gets a room, the next is the best of those ready by
    then (the time only moves forward)."""
    ready: list[tuple[tuple[float, ...], PersonKey]] = []
    clock = persons[0][0] if persons else 0
    index = 0
    while index < len(persons) or ready:
        if not ready:
            clock = max(clock, persons[index][0])
        while index < len(persons) and persons[index][0] <= clock:
            _ready_at, key, rank = persons[index]
            heapq.heappush(ready, (rank, key))
            index += 1
        _rank, key = heapq.heappop(ready)
        planner.replan([key], now)
        session = planner.session_of(key)
        if session is not None:
            clock = max(clock, session.start)


def arrival_order(
    rooms: Iterable[PlanRoom], bookings: Iterable[Booking], policy: Policy | None = None
) -> Planner:
    planner = Planner(rooms, policy)
    for booking in sorted(bookings, key=lambda b: (b.expected_arrival, b.id)):
        planner.add_booking(booking)
    return planner


def arrival_persons(planner: Planner, keys: Iterable[PersonKey], now: Minute | None = None) -> None:
    """Place ``keys`` booking by booking in order of expected arrival, none before ``now``."""
    by_booking: dict[str, list[PersonKey]] = {}
    for key in keys:
        by_booking.setdefault(key[0], []).append(key)
    for booking_id in sorted(by_booking, key=lambda b: (planner.bookings[b].expected_arrival, b)):
        planner.replan(by_booking[booking_id], now)
