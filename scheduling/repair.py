"""Repair: place a person the greedy pass could not, by moving a few persons placed before.

First come, first served leaves a newcomer out when earlier bookings hold the rooms it needs,
although moving one or two of them elsewhere would let everyone in. The repair tries exactly
that, within a small neighbourhood and a time budget so that the answer stays instant:

- the sessions in the newcomer's fitting rooms whose removal opens a gap long enough for its
  session before its legal limit (H1, H5), one at a time and then two neighbours together;
- the persons held in a waiting room over the time the newcomer would wait there, when they
  keep the newcomer out of it (H2: co-suspects, the other sex, the other age group, capacity).

For each such set, the set is taken out, the newcomer placed first, and the set placed again
(by the plain greedy pass, without a further repair). A plan is adopted only if every person
placed before is placed again, and the independent checker passes every room and booking the
change touched; otherwise the plan stands as it was. Only persons whose session has not
started (H10) and whose assignments all lie after ``now`` are moved, so nobody already in a
waiting room or a session is asked to change. Everything is tried on a copy of the plan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING

from scheduling.checker import check_plan
from scheduling.model import Assignment, Minute, PersonKey, PlanRoom, Unassigned
from scheduling.needs import CannotPlace, Need
from scheduling.rooms import RoomType

if TYPE_CHECKING:  # the allocator calls the repair: a type only, not an import cycle
    from scheduling.allocator import Planner

# For all the persons one call of the allocator leaves out: the whole answer to a booking, the
# greedy pass and the suggested arrival included, must stay well under 50 ms.
REPAIR_BUDGET_SECONDS = 0.008
# Bounds the neighbourhood even when the clock is generous (a fast machine, a quiet day).
REPAIR_TRIALS = 48
# A person without a legal clock is looked for this far past their earliest start.
OPEN_WINDOW_MINUTES = 6 * 60
# Waiting-room sets larger than this are not tried: each of them must find a new place.
MOST_MOVED = 3
# How many of the newcomer's earliest session starts are looked at for the waiting rooms.
WAITING_OPTIONS = 4


def repair(
    planner: Planner,
    key: PersonKey,
    need: Need,
    now: Minute | None,
    rule: str,
    deadline: float,
    trials: int = REPAIR_TRIALS,
) -> bool:
    """Place ``key``, whom the greedy pass left out by ``rule``, by moving persons placed
    before; True if a lawful plan was adopted. Gives up at ``deadline`` (``perf_counter``) or
    after ``trials`` sets of persons moved."""
    if time.perf_counter() > deadline:
        return False
    moves = _moves(planner, key, need, now, waiting_first=rule == "H2")
    first = next(moves, None)
    if first is None:  # nothing to move (no fitting room at all, or all of it started)
        return False
    trial = planner.copy()
    trial.displace = False  # one level: the persons moved do not move others
    tried: set[frozenset[PersonKey]] = set()
    for moved in islice(chain([first], moves), trials * 4):
        if time.perf_counter() > deadline or len(tried) >= trials:
            break
        if not moved or moved in tried:
            continue
        tried.add(moved)
        if _attempt(trial, key, need, moved, now) and _lawful(planner, trial, key, moved, now):
            trial.unassigned.pop(key, None)
            planner._adopt(trial)
            return True
    return False


def _attempt(
    trial: Planner, key: PersonKey, need: Need, moved: frozenset[PersonKey], now: Minute | None
) -> bool:
    """Take ``moved`` out, place ``key``, place ``moved`` again; undone unless all fit."""
    touched = (key, *sorted(moved))
    kept = {k: list(trial.assignments.get(k, ())) for k in touched}
    left = {k: trial.unassigned.get(k) for k in touched}
    for other in moved:
        trial._release(other)
    try:
        trial._commit(key, trial._place_one(key, need, now))
    except CannotPlace:
        _undo(trial, kept, left)
        return False
    if trial._place(sorted(moved), now).complete:
        return True
    _undo(trial, kept, left)
    return False


def _undo(
    trial: Planner,
    kept: dict[PersonKey, list[Assignment]],
    left: dict[PersonKey, Unassigned | None],
) -> None:
    for key, assignments in kept.items():
        trial._release(key)
        if assignments:
            trial._commit(key, assignments)
        unassigned = left[key]
        if unassigned is None:
            trial.unassigned.pop(key, None)
        else:
            trial.unassigned[key] = unassigned


def _lawful(
    planner: Planner,
    trial: Planner,
    key: PersonKey,
    moved: frozenset[PersonKey],
    now: Minute | None,
) -> bool:
    """The independent checker over every room and booking the change touched (the rest of
    the plan is as it was): the whole plan would take too long on the booking path."""
    return lawful_change(planner, trial, {key, *moved}, now)


def lawful_change(
    before: Planner, after: Planner, changed: set[PersonKey], now: Minute | None
) -> bool:
    """The independent checker passes every room and booking that ``changed`` persons were
    in, in ``before`` or in ``after``: a change elsewhere cannot have broken a rule there."""
    rooms = {a.room for k in changed for a in before.assignments.get(k, ())}
    rooms |= {a.room for k in changed for a in after.assignments.get(k, ())}
    bookings = {k[0] for k in changed}
    involved = [
        a
        for items in after.assignments.values()
        if any(a.room in rooms or a.booking in bookings for a in items)
        for a in items
    ]
    return not check_plan(after.rooms, after.bookings, involved, after.policy, after.fixed, now)


def _movable(planner: Planner, key: PersonKey, now: Minute | None) -> bool:
    """Placed, not started, and nothing of it under way at ``now``."""
    if key in planner.fixed or key in planner.unassigned:
        return False
    items = planner.assignments.get(key)
    if not items:
        return False
    return now is None or all(a.start >= now for a in items)


def _moves(
    planner: Planner, key: PersonKey, need: Need, now: Minute | None, waiting_first: bool
) -> Iterator[frozenset[PersonKey]]:
    """Sets of persons to move, the most promising first: single sessions whose gap fits the
    newcomer (earliest gap first), the waiting rooms' blockers (first when a waiting room is
    what the newcomer lacked), then two neighbouring sessions together."""
    floor = need.earliest_start if now is None else max(need.earliest_start, now)
    until = need.latest_end if need.latest_end is not None else floor + OPEN_WINDOW_MINUTES
    rooms = [
        room
        for room in planner.rooms.values()
        if room.type is need.room_type and room.available and need.equipment <= room.equipment
    ]
    starts = _earliest_starts(planner, key, need, rooms, floor, until)
    # Kept out of the waiting rooms, the newcomer gains only from a session that starts before
    # its earliest one now: a later start means a longer wait, with everyone it clashes with.
    before_earliest = starts[0] if waiting_first and starts else until
    singles: list[tuple[Minute, PersonKey]] = []
    pairs: list[tuple[Minute, PersonKey, PersonKey]] = []
    for room in rooms:
        clean = planner.policy.cleaning(room.type)
        busy = planner._busy.get(room.id, [])
        for index, (start, end, other) in enumerate(busy):
            if end <= floor or start >= until or not _movable(planner, other, now):
                continue
            before = busy[index - 1][1] if index > 0 else floor
            gap = _fits(max(before, floor), _next_start(busy, index + 1), need, clean, until)
            if gap is not None and gap < before_earliest:
                singles.append((gap, other))
            if index + 1 < len(busy):
                follower = busy[index + 1][2]
                if busy[index + 1][0] < until and _movable(planner, follower, now):
                    gap = _fits(
                        max(before, floor), _next_start(busy, index + 2), need, clean, until
                    )
                    if gap is not None and gap < before_earliest:
                        pairs.append((gap, other, follower))
    singles.sort()
    waiting = (
        _waiting_blockers(planner, key, need, now, starts) if need.waits_in_holding else iter(())
    )
    if waiting_first:
        yield from waiting
    for _gap, other in singles:
        yield frozenset({other})
    yield from waiting
    pairs.sort()
    for _gap, first, second in pairs:
        yield frozenset({first, second})


def _earliest_starts(
    planner: Planner,
    key: PersonKey,
    need: Need,
    rooms: list[PlanRoom],
    floor: Minute,
    until: Minute,
) -> list[Minute]:
    """Where the newcomer's session could start in each fitting room as the plan stands,
    sorted, those ending by ``until`` only."""
    cap = planner.bookings[key[0]].officers // 2
    starts = [planner._earliest_in_room(room, key[0], cap, floor, need.duration) for room in rooms]
    return sorted(start for start in starts if start + need.duration <= until)


def _next_start(busy: list[tuple[Minute, Minute, PersonKey]], index: int) -> Minute:
    return busy[index][0] if index < len(busy) else 1 << 40


def _fits(
    start: Minute, next_start: Minute, need: Need, clean: int, until: Minute
) -> Minute | None:
    """The start of the newcomer's session in a gap from ``start`` to ``next_start``, if the
    gap holds it (with the cleaning buffer) before ``until``."""
    if start + need.duration + clean <= next_start and start + need.duration <= until:
        return start
    return None


def _waiting_blockers(
    planner: Planner, key: PersonKey, need: Need, now: Minute | None, starts: list[Minute]
) -> Iterator[frozenset[PersonKey]]:
    """For the newcomer's earliest possible session starts (``starts``, sorted): in each
    waiting room, the persons held over the wait who keep the newcomer out (those it may not
    share with, or everyone when the room is full), if they are few and all movable."""
    booking = planner.bookings[key[0]]
    person = booking.person(key[1])
    hold_from = need.holding_from if now is None else max(need.holding_from, now)
    found: list[tuple[int, Minute, frozenset[PersonKey]]] = []
    for start in starts[:WAITING_OPTIONS]:
        if start <= hold_from:
            continue
        for room in planner.rooms.values():
            if room.type is not RoomType.WAITING or not room.available:
                continue
            held = [
                h.key
                for h in planner._held.get(room.id, [])
                if h.start < start and hold_from < h.end
            ]
            clashing = [k for k in held if not planner._may_share(person, booking, k)]
            blockers = clashing if len(held) - len(clashing) < room.capacity else held
            if (
                blockers
                and len(blockers) <= MOST_MOVED
                and all(_movable(planner, k, now) for k in blockers)
            ):
                found.append((len(blockers), start, frozenset(blockers)))
    found.sort(key=lambda item: (item[0], item[1]))
    for _count, _start, chosen in found:
        yield chosen
