"""Reinstating: a person a re-dispatch left out gets back the place they had before.

The re-dispatch (``scheduling.redispatch``) plans the unstarted sessions again in another
order; on an overloaded day a few persons placed before then find no room. Rather than give
up the whole re-dispatch, each of them is given back exactly the assignments they had, and
whoever holds that place in the new plan makes way: the sessions in that room over that time
(cleaning included, H1), the persons in that waiting room who may not share it with them or
overfill it (H2), the booking's own sessions beyond its officers (H6). Those are placed again
as the allocator would (S5 does not apply: they were just re-dispatched). Taken only if nobody
placed before loses their place by it; a person placed only by the re-dispatch may, which
costs the re-dispatch at most one person for each person placed before that it keeps.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from scheduling.allocator import _peak
from scheduling.model import Assignment, AssignmentKind, Minute, PersonKey

# How far a chain of persons given back their places may go: each level is a few more moves.
DEPTH = 8

if TYPE_CHECKING:  # the planner is only read and changed here: a type, not an import cycle
    from scheduling.allocator import Planner


def reinstate(
    plan: Planner,
    original: Planner,
    lost: Iterable[PersonKey],
    keep: Collection[PersonKey],
    now: Minute,
    deadline: float,
) -> Planner:
    """``plan`` with as many of ``lost`` as possible back in their place in ``original``;
    nobody in ``keep`` placed in ``plan`` is left out by it. Stops at ``deadline`` (a
    ``time.monotonic()`` moment). ``plan`` is not changed."""
    result = plan
    placed = {other for other in keep if plan.session_of(other) is not None}
    for key in sorted(lost, key=lambda k: _first_start(original, k)):
        if time.monotonic() >= deadline:
            break
        if result.session_of(key) is not None:
            continue
        trial = result.copy()
        if _give_back(trial, original, key, now, DEPTH, set()) and all(
            trial.session_of(other) is not None for other in placed
        ):
            result = trial
            placed.add(key)
    return result


def _give_back(
    trial: Planner,
    original: Planner,
    key: PersonKey,
    now: Minute,
    depth: int,
    settled: set[PersonKey],
) -> bool:
    """On ``trial``: ``key`` back in its place, whoever holds it placed again, and those of
    them placed nowhere given back their own place in turn, ``depth`` levels deep. Persons
    ``settled`` back in their place earlier in the chain do not move again (no cycles)."""
    old = _free_waiting_room(trial, key, original.assignments.get(key, []))
    if not old:
        return False
    blocking = _holding(trial, key, old, original)
    if blocking & (trial.fixed | settled) or any(
        a.start < now for k in blocking for a in trial.assignments.get(k, ())
    ):
        return False
    for other in blocking:
        trial.rebook(other, [])
    trial.rebook(key, list(old))
    settled.add(key)
    trial.replan(sorted(blocking), now)
    for other in sorted(blocking):
        if trial.session_of(other) is not None or original.session_of(other) is None:
            continue
        if depth == 0 or not _give_back(trial, original, other, now, depth - 1, settled):
            return False
    return trial.session_of(key) is not None


def _first_start(planner: Planner, key: PersonKey) -> Minute:
    return min((a.start for a in planner.assignments.get(key, ())), default=1 << 40)


def _free_waiting_room(plan: Planner, key: PersonKey, old: list[Assignment]) -> list[Assignment]:
    """``old`` with its waiting in a room that keeps H2 as the plan stands now, if there is
    one: nobody need make way there."""
    found = []
    for item in old:
        if item.kind is AssignmentKind.WAITING:
            room = plan.holding_room(key, item.start, item.end)
            if room is not None:
                item = replace(item, room=room)
        found.append(item)
    return found


def _holding(
    plan: Planner, key: PersonKey, old: list[Assignment], original: Planner
) -> set[PersonKey]:
    """Whoever in ``plan`` keeps ``key`` from taking ``old`` (H1, H2, H6); of the persons
    sharing a full waiting room, only as many as needed, those not in their original place
    first (they moved already; the others are where they were promised to be)."""
    found: set[PersonKey] = set()
    booking = plan.bookings[key[0]]
    person = booking.person(key[1])
    for item in old:
        room = plan.rooms[item.room]
        if item.kind is AssignmentKind.WAITING:
            overlapping = [
                held.key
                for held in plan._held.get(room.id, [])
                if held.key != key and held.start < item.end and item.start < held.end
            ]
            apart = {k for k in overlapping if not plan._may_share(person, booking, k)}
            sharing = [
                held
                for held in plan._held.get(room.id, [])
                if held.key in overlapping and held.key not in apart
            ]
            found |= apart
            sharing.sort(
                key=lambda held: (
                    plan.assignments.get(held.key) == original.assignments.get(held.key),
                    held.key,
                )
            )
            while sharing and _peak(sharing, item.start, item.end) + 1 > room.capacity:
                found.add(sharing.pop(0).key)
            continue
        clean = plan.policy.cleaning(room.type)
        found |= {
            other
            for start, end, other in plan._busy.get(room.id, [])
            if other != key and start < item.end + clean and item.start < end
        }
        partners = [
            a.key
            for k, items in plan.assignments.items()
            if k[0] == key[0] and k != key
            for a in items
            if a.kind is AssignmentKind.SESSION and a.start < item.end and item.start < a.end
        ]
        if len(partners) + 1 > booking.officers // 2:
            found |= set(partners)
    return found
