"""Placing more: the persons a plan leaves out tried again, with more search than a booking gets.

At booking time the allocator's repair has 8 ms for the whole answer, and it saw the plan as it
was then; bookings that came later, and the improver's re-dispatch, changed the plan around
the persons it left out. In the background there is time to try again: first every session
that can start earlier moves up (``Planner.move_up``, as after an early end), which frees room
time and waiting-room places; then each unplaced person (most urgent first) is placed as at
booking time, and if that fails, by the repair with a larger budget and more tries. A
placement is kept only if everyone placed before is still placed and the independent checker
passes every room and booking it touched; otherwise the plan stays as it was (and the whole
plan is checked once at the end). A co-suspect group of one booking is placed whole or not at
all, so the pass never splits a group that waits together (``scheduling.groups``).

What the pass never does: move a session that has started (H10), anything planned before
``now``, or a person nobody could place by their data (``scheduling.possible``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.model import Assignment, Minute, PersonKey
from scheduling.needs import CannotPlace, Need, need_for
from scheduling.repair import lawful_change, repair

# Per person: the repair gets this many tries and this much time (the booking path has 48 tries
# and 8 ms for a whole booking). On generated overloaded days (100-650 persons) 200 tries and
# 0.15 s placed no more than this, and left CP-SAT less of the budget.
TRIES = 100
PERSON_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Placed:
    changes: dict[PersonKey, list[Assignment]]  # each changed person's new assignments
    placed: list[PersonKey]  # persons placed who were not before


def place_more(planner: Planner, now: Minute, window_end: Minute, deadline: float) -> Placed | None:
    """More of ``planner``'s unplaced persons placed, or None when none could be;
    ``deadline`` is a ``time.monotonic()`` moment. ``planner`` is not changed."""
    units = _units(planner, now, window_end)
    if not units:
        return None
    work = planner.copy()
    _move_up(work, now)
    placed_before = {key for key in work.assignments if work.session_of(key) is not None}
    newly: list[PersonKey] = []
    for unit in units:
        if time.monotonic() >= deadline:
            break
        trial = work.copy()
        until = min(deadline, time.monotonic() + PERSON_SECONDS)
        if (
            _place_unit(trial, unit, now, until)
            and all(trial.session_of(key) is not None for key in placed_before)
            and _lawful(work, trial, now)
        ):
            work = trial
            newly.extend(unit)
            placed_before.update(unit)
    if not newly:
        return None  # the moves up alone are left to the improver's own search
    if check_plan(work.rooms, work.bookings, work.all_assignments(), work.policy, work.fixed, now):
        return None  # the moves up are checked here, once: the placements were, one by one
    changes = {
        key: work.assignments.get(key, [])
        for key in {*work.assignments, *planner.assignments}
        if work.assignments.get(key, []) != planner.assignments.get(key, [])
    }
    return Placed(changes, newly)


def _move_up(planner: Planner, now: Minute) -> None:
    """Every session that can start earlier moves up, as after an early end (S1): what it
    leaves, in a room and in a waiting room, is where the unplaced may fit."""
    under_way = [
        key for key, items in planner.assignments.items() if any(item.start < now for item in items)
    ]
    for room_type in sorted({room.type for room in planner.rooms.values()}):
        room = next(r for r in planner.rooms.values() if r.type is room_type)
        planner.move_up(room.id, now, under_way)


def _units(planner: Planner, now: Minute, window_end: Minute) -> list[list[PersonKey]]:
    """The unplaced persons worth trying, most urgent first: the tightest legal limit, then
    the heaviest weight; a co-suspect group's unplaced members as one unit, left out whole
    when one of them cannot be placed in the window at all."""
    found: dict[tuple[str, str], list[tuple[tuple[int, float], PersonKey]]] = {}
    hopeless: set[tuple[str, str]] = set()
    for key in sorted(planner.unassigned):
        if key in planner.fixed or key in planner.assignments:
            continue
        booking = planner.bookings[key[0]]
        person = booking.person(key[1])
        unit = (key[0], person.co_suspect_group or f"\0{key[1]}")
        try:
            need = need_for(booking, person, planner.policy)
        except CannotPlace:
            hopeless.add(unit)
            continue
        if need.earliest_start >= window_end or (
            need.latest_end is not None and need.latest_end < max(now, need.earliest_start)
        ):
            hopeless.add(unit)
            continue
        rank = (_limit(need), -planner.policy.weight(person))
        found.setdefault(unit, []).append((rank, key))
    units = [members for unit, members in found.items() if unit not in hopeless]
    units.sort(key=lambda members: min(rank for rank, _key in members))
    return [[key for _rank, key in sorted(members)] for members in units]


def _limit(need: Need) -> int:
    return need.latest_end if need.latest_end is not None else 1 << 40


def _place_unit(trial: Planner, unit: list[PersonKey], now: Minute, deadline: float) -> bool:
    """Place every person of ``unit`` on ``trial``: as a booking would be, then by the repair
    with the larger budget; True if all are placed (``trial`` is then the plan to keep)."""
    trial.replan(unit, now)
    for key in unit:
        if trial.session_of(key) is not None:
            continue
        left = trial.unassigned.get(key)
        booking = trial.bookings[key[0]]
        need = need_for(booking, booking.person(key[1]), trial.policy)
        until = time.perf_counter() + max(0.0, deadline - time.monotonic())
        if left is None or not repair(trial, key, need, now, left.rule, until, TRIES):
            return False
    return True


def _lawful(before: Planner, after: Planner, now: Minute) -> bool:
    """Nothing of a changed person before ``now`` (what is under way stays), and the
    independent checker over every room and booking the change touched (the rest of the plan
    is as it was)."""
    changed = {
        key
        for key in {*before.assignments, *after.assignments}
        if before.assignments.get(key) != after.assignments.get(key)
    }
    if any(
        a.start < now
        for k in changed
        for a in (*before.assignments.get(k, ()), *after.assignments.get(k, ()))
    ):
        return False
    return lawful_change(before, after, changed, now)
