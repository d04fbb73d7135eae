"""Re-dispatching the live plan: its unstarted sessions planned again as the offline dispatchers
would, seeing every booking at once.

The instant allocator places bookings in the order stations send them, so a session booked
early for a late arrival can hold the room a person arriving sooner needed. Once the day is
booked, the dispatchers (``scheduling.dispatchers``) place the same persons by readiness and
priority, which comes close to the offline reference at a fraction of a CP-SAT run's cost. The
improver tries this first and lets CP-SAT continue from whichever plan is better.

What has already happened stays: started sessions (H10), persons whose waiting began before
``now`` and anything planned before ``now``. A re-dispatched plan is kept only if everyone
placed before is still placed, the independent checker passes it, and it saves more weighted
waiting than its moves cost (S5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.dispatchers import PRIORITIES, arrival_persons, dispatch_persons
from scheduling.model import Assignment, Minute, PersonKey
from scheduling.needs import CannotPlace, need_for

ROUNDS = 4  # dispatches per rule, each keeping in place whom the one before left out


@dataclass(frozen=True, slots=True)
class Redispatch:
    changes: dict[PersonKey, list[Assignment]]  # each moved person's new assignments
    rule: str  # the dispatcher whose plan was kept
    cost_before: float
    cost_after: float  # moves included


def movable_keys(planner: Planner, now: Minute, window_end: Minute) -> list[PersonKey]:
    """Persons the re-dispatch may plan again: not started, nothing of theirs before ``now``,
    a session (or, unplaced, readiness) before ``window_end``; persons no room could take
    by their data stay as they are."""
    found = []
    for key in [*planner.assignments, *planner.unassigned]:
        if key in planner.fixed:
            continue
        items = planner.assignments.get(key, [])
        if any(item.start < now for item in items):
            continue
        booking = planner.bookings[key[0]]
        try:
            need = need_for(booking, booking.person(key[1]), planner.policy)
        except CannotPlace:
            continue
        session = planner.session_of(key)
        first = need.earliest_start if session is None else session.start
        if first < window_end:
            found.append(key)
    return found


def redispatch(
    planner: Planner,
    now: Minute,
    window_end: Minute,
    cost: Callable[[Planner], float],
    move_cost: float,
    deadline: float,
) -> Redispatch | None:
    """The best lawful re-dispatch of ``planner``'s movable persons, or None when none is
    cheaper by ``cost`` plus ``move_cost`` per person moved. ``deadline`` (a
    ``time.monotonic()`` moment) is checked between dispatchers, each of which is quick.
    ``planner`` is not changed."""
    keys = dict.fromkeys(movable_keys(planner, now, window_end))
    if not keys:
        return None
    placed_before = [key for key in keys if planner.session_of(key) is not None]
    cost_before = cost(planner)
    tried: list[tuple[float, str, Planner, dict[PersonKey, list[Assignment]]]] = []
    for rule in [*PRIORITIES, "arrival"]:
        trial = _keeping_everyone(planner, keys, placed_before, rule, now, deadline)
        if trial is None:
            continue
        changes = {
            key: trial.assignments.get(key, [])
            for key in {*trial.assignments, *planner.assignments}
            if trial.assignments.get(key, []) != planner.assignments.get(key, [])
        }
        if any(key not in keys for key in changes):
            continue
        total = cost(trial) + move_cost * len(changes)
        if total < cost_before:
            tried.append((total, rule, trial, changes))
    # The checker is slow on purpose: it judges only the plans worth keeping, best first.
    for total, rule, trial, changes in sorted(tried, key=lambda item: item[0]):
        violations = check_plan(
            trial.rooms,
            trial.bookings,
            trial.all_assignments(),
            trial.policy,
            trial.fixed,
            now,
        )
        if not violations:
            return Redispatch(changes, rule, cost_before, total)
    return None


def _keeping_everyone(
    planner: Planner,
    keys: dict[PersonKey, None],
    placed_before: list[PersonKey],
    rule: str,
    now: Minute,
    deadline: float,
) -> Planner | None:
    """``rule``'s dispatch of ``keys`` in which everyone in ``placed_before`` is placed, or
    None. Whoever a dispatch leaves out keeps their place in the next one, and the others
    are dispatched around them, up to ``ROUNDS`` times."""
    pinned: set[PersonKey] = set()
    for _round in range(ROUNDS):
        if time.monotonic() >= deadline:
            return None
        trial = planner.copy()
        moving = [key for key in keys if key not in pinned]
        for key in moving:
            trial.rebook(key, [])
        if rule in PRIORITIES:
            dispatch_persons(trial, moving, PRIORITIES[rule], now)
        else:
            arrival_persons(trial, moving, now)
        lost = {key for key in placed_before if trial.session_of(key) is None}
        if not lost:
            return trial
        pinned |= lost
    return None
