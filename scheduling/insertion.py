"""Insertion at booking time: a newcomer who would wait takes the slot of a session placed
before it, and that session is placed again (S1 against S5).

Stations book in an order unrelated to arrival, so a unit arriving early but booked late can
find the early slots held by units arriving later, which were placed at their earliest start
with nobody earlier in sight. Had the bookings come in arrival order, the early unit would have
gone first and the later one would have waited a little. The insertion tries that swap: for a
newcomer who would wait, one session in a fitting room that starts before the newcomer's is
taken out (one whose removal opens a gap long enough for the newcomer), the newcomer placed
first and that session placed again, both by the allocator's own greedy rules, so every hard
rule holds as for any placement. The best such swap is kept only if what it saves (S1 weighted
waiting, and S2 slack before legal limits, as the improver counts them) is more than what it
adds plus ``CHANGE_PENALTY`` for the person moved, whose station is told (``plan_changed``),
as the improver charges each move (S5). Only sessions that have not started and persons not
yet waiting are moved (H10), and a person who cannot be placed again is never moved: nobody
placed is dropped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from scheduling.limit_slack import SLACK_WEIGHT, shortfall
from scheduling.model import Assignment, AssignmentKind, Minute, PersonKey
from scheduling.needs import CannotPlace, Need, need_for

if TYPE_CHECKING:  # the allocator calls the insertion: a type only, not an import cycle
    from scheduling.allocator import Planner

# Weighted minutes of waiting a move must save, as the improver's S5
# (``scheduling.improver.CHANGE_PENALTY``; a test keeps the two equal).
CHANGE_PENALTY = 10
# Sessions tried per newcomer, earliest first: the answer to a booking stays instant.
INSERT_TRIALS = 8
# For all the insertions of one call, apart from the repair's budget: placing a person comes
# before saving another's waiting.
INSERT_BUDGET_SECONDS = 0.004


def insert_earlier(
    planner: Planner, key: PersonKey, need: Need, now: Minute | None, deadline: float
) -> bool:
    """``key`` is placed; give it an earlier session by moving one other person's, if that
    lowers the weighted waiting by more than the move's penalty. True if the plan changed.
    Gives up at ``deadline`` (``perf_counter``)."""
    mine = planner.session_of(key)
    if mine is None or key in planner.fixed:
        return False
    if (
        planner.policy.weight(planner.person(key)) * (mine.start - need.earliest_start)
        <= CHANGE_PENALTY
    ):
        return False
    kept = planner.assignments[key]
    best: tuple[float, PersonKey, list[Assignment], list[Assignment]] | None = None
    for other in _blockers(planner, key, need, mine.start, now):
        if time.perf_counter() > deadline:
            break
        found = _swap(planner, key, need, other, now)
        if found is None:
            continue
        placed, moved, other_need = found
        gain = _gain(planner, key, need, kept, placed) + _gain(
            planner, other, other_need, planner.assignments[other], moved
        )
        if gain > CHANGE_PENALTY and (best is None or gain > best[0]):
            best = (gain, other, placed, moved)
    if best is None:
        return False
    _, other, placed, moved = best
    planner._release(key)
    planner._release(other)
    planner._commit(key, placed)
    planner._commit(other, moved)
    return True


def _blockers(
    planner: Planner, key: PersonKey, need: Need, before: Minute, now: Minute | None
) -> list[PersonKey]:
    """Persons of other bookings whose session, in a room fitting ``key``, leaves a gap long
    enough for ``key``'s session when taken out, starting before ``before``; not started and
    not yet waiting. The earliest such gaps first, at most ``INSERT_TRIALS``."""
    floor = need.earliest_start if now is None else max(need.earliest_start, now)
    found: list[tuple[Minute, PersonKey]] = []
    for room in planner.rooms.values():
        if room.type is not need.room_type or not room.available:
            continue
        if not need.equipment <= room.equipment:
            continue
        busy = planner._busy.get(room.id, [])
        occupied = need.duration + planner.policy.cleaning(room.type)
        free_from = floor  # the latest end of the sessions before, from the floor on
        for index, (start, end, other) in enumerate(busy):
            if start >= before:
                break
            opening = free_from
            free_from = max(free_from, end)
            closing = busy[index + 1][0] if index + 1 < len(busy) else 1 << 40
            if opening >= before or closing - opening < occupied:
                continue
            if other[0] == key[0] or other in planner.fixed:
                continue
            if now is not None and any(a.start < now for a in planner.assignments[other]):
                continue
            found.append((opening, other))
    found.sort()
    return [other for _start, other in found[:INSERT_TRIALS]]


def _swap(
    planner: Planner, key: PersonKey, need: Need, other: PersonKey, now: Minute | None
) -> tuple[list[Assignment], list[Assignment], Need] | None:
    """Both placed again, ``key`` first: their new assignments and ``other``'s need, or None
    if either cannot be placed. The plan is left exactly as it was."""
    kept_mine, kept_other = planner.assignments[key], planner.assignments[other]
    booking = planner.bookings[other[0]]
    try:
        other_need = need_for(booking, booking.person(other[1]), planner.policy)
    except CannotPlace:
        return None
    planner._release(key)
    planner._release(other)
    try:
        placed = planner._place_one(key, need, now)
        planner._commit(key, placed)
        moved = planner._place_one(other, other_need, now)
    except CannotPlace:
        return None
    finally:
        planner._release(key)
        planner._commit(key, kept_mine)
        planner._commit(other, kept_other)
    return placed, moved, other_need


def _gain(
    planner: Planner,
    key: PersonKey,
    need: Need,
    before: list[Assignment],
    after: list[Assignment],
) -> float:
    """What ``key``'s new session saves, in weighted minutes as the improver counts them:
    S1 waiting, and S2 slack before the legal limit (negative: it costs)."""
    old = next(a.start for a in before if a.kind is AssignmentKind.SESSION)
    new = next(a.start for a in after if a.kind is AssignmentKind.SESSION)
    waiting = planner.policy.weight(planner.person(key)) * (old - new)
    return waiting + SLACK_WEIGHT * (shortfall(need, old) - shortfall(need, new))
