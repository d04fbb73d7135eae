"""What one plan of a generated day amounts to: placed, impossible by the data, unplaced by
the planner, legal-limit misses, weighted waiting, violations. Pure: computed from the plan.

Persons impossible by the data (``scheduling.possible``) are counted apart and left out of
everything else, so that "the planner could not" is never mixed with "nobody could". Weighted
waiting is S1: for each placed person, minutes from ready (entry steps, sobering, guardian) to
session start, times the person's weight; ``waiting_charged`` adds each unplaced possible
person as waiting until the end of the day (escalated, questioned outside the plan), so that
plans placing different persons compare. A legal-limit miss is a possible person under a legal
clock the plan leaves unplaced, whichever rule stopped them (they are not questioned in the
plan before their limit), or placed past the limit (a violation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.generator import Day
from scheduling.improver import charged_waiting
from scheduling.model import PersonKey
from scheduling.needs import CannotPlace, need_for
from scheduling.possible import impossible_persons

LONG_WAIT = 120  # minutes: a person waiting longer than this is counted


@dataclass(frozen=True, slots=True)
class PlanFigures:
    persons: int
    placed: int
    impossible: int  # by the data: nobody could place them
    unplaced: int  # possible persons the planner left unplaced
    legal_misses: int  # possible persons under a legal clock left unplaced, or placed past it
    waiting: float  # weighted minutes, placed persons
    waiting_charged: float  # plus unplaced possible persons waiting until 24:00
    waited_over_2h: int
    violations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __add__(self, other: PlanFigures) -> PlanFigures:
        return PlanFigures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def impossible_keys(day: Day) -> set[PersonKey]:
    return {item.key for booking in day.bookings for item in impossible_persons(day.rooms, booking)}


def figures(planner: Planner, day: Day, impossible: set[PersonKey]) -> PlanFigures:
    everyone = [(b.id, p.id) for b in planner.bookings.values() for p in b.persons]
    possible = [key for key in everyone if key not in impossible]
    placed = [key for key in everyone if planner.session_of(key) is not None]
    violations = check_plan(
        planner.rooms, planner.bookings, planner.all_assignments(), planner.policy, planner.fixed
    )
    misses = sum(
        1 for key in possible if key in planner.unassigned and planner.unassigned[key].rule == "H5"
    ) + sum(1 for v in violations if v.rule == "H5")
    return PlanFigures(
        persons=len(everyone),
        placed=len(placed),
        impossible=len(impossible & set(everyone)),
        unplaced=sum(1 for key in possible if planner.session_of(key) is None),
        legal_misses=misses,
        waiting=charged_waiting(planner, 0, placed),
        waiting_charged=charged_waiting(planner, day.day_start + 24 * 60, possible),
        waited_over_2h=sum(1 for key in placed if _waited(planner, key) > LONG_WAIT),
        violations=len(violations),
    )


def _waited(planner: Planner, key: PersonKey) -> int:
    session = planner.session_of(key)
    booking = planner.bookings[key[0]]
    try:
        need = need_for(booking, booking.person(key[1]), planner.policy)
    except CannotPlace:
        return 0
    return 0 if session is None else session.start - need.earliest_start
