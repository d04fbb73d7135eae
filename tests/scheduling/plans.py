"""What the scheduling tests ask of any plan: the independent checker's verdict on it whole."""

from __future__ import annotations

from scheduling.allocator import Planner
from scheduling.checker import Violation, check_plan
from scheduling.model import Minute


def violations(planner: Planner, now: Minute | None = None) -> list[Violation]:
    return check_plan(
        planner.rooms,
        planner.bookings,
        planner.all_assignments(),
        planner.policy,
        planner.fixed,
        now,
    )


def lawful(planner: Planner, now: Minute | None = None) -> bool:
    return not violations(planner, now)
