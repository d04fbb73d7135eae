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

from collections.abc import Iterable
from dataclasses import dataclass

from scheduling.allocator import Planner
from scheduling.dispatchers import PRIORITIES, URGENT_SLACK, arrival_order, dispatch
from scheduling.improver import apply, charged_waiting, improve
from scheduling.model import Booking, Minute, PlanRoom
from scheduling.policy import Policy

__all__ = [
    "PRIORITIES",
    "URGENT_SLACK",
    "Reference",
    "arrival_order",
    "dispatch",
    "plan_score",
    "reference_plan",
]


@dataclass(frozen=True, slots=True)
class Reference:
    planner: Planner
    rule: str  # the dispatching priority whose plan was kept
    improved: bool  # the improver found a better plan within its budget


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
