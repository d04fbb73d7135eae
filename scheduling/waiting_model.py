"""Waiting rooms (H2) in the improver's CP-SAT model, at a size that grows with held persons x
waiting rooms x hours, not with held persons squared.

Time is cut into blocks (an hour each, cut finer where the current plan itself changes the kind
of person a room holds within an hour). In each block a waiting room holds one class of person
at most (men or women, adults or minors): a held person in a room makes the room theirs for
every block their waiting reaches. Capacity is one cumulative per room, and only co-suspects
(few per case) are kept apart pairwise. A block is stricter than the rule (two classes may not
follow each other inside an hour unless the current plan already does so), never looser, so a
solution keeps H2; the current plan is always a solution, so the solver starts from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduling.allocator import Planner
from scheduling.model import Assignment, Minute, PersonKey, PlanRoom, Sex
from scheduling.rooms import RoomType

BLOCK_MINUTES = 60
CHECK_EVERY = 16  # held persons between two looks at the deadline

HoldClass = tuple[Sex, bool]  # who may share a waiting room: same sex, same age group


@dataclass(frozen=True, slots=True)
class HeldPerson:
    """A person the model may hold from ``hold_from`` until their session ``start``."""

    key: PersonKey
    start: cp_model.IntVar  # session start, minutes after ``now``
    hold_from: Minute
    latest_start: Minute
    current_room: str | None  # the waiting room the live plan holds them in


def add_waiting_rooms(
    model: cp_model.CpModel,
    planner: Planner,
    held: list[HeldPerson],
    fixed: list[Assignment],
    now: Minute,
    deadline: float | None = None,
) -> dict[PersonKey, dict[str, cp_model.IntVar]] | None:
    """Each held person in one waiting room from ``hold_from`` to the session whenever the
    session starts later; ``fixed`` are the waiting assignments that do not move. Returns each
    person's room literals, or None once ``deadline`` (``time.monotonic()``) has passed: this
    part of a day's model can take a second to build."""
    rooms = [r for r in planner.rooms.values() if r.type is RoomType.WAITING and r.available]
    if not rooms or not held:
        return {}
    room_ids = {room.id for room in rooms}
    fixed_here = [a for a in fixed if a.room in room_ids and a.end > now]
    last = max([*(p.latest_start for p in held), *(a.end for a in fixed_here)])
    current = [
        (a.room, a.start, a.end, hold_class(planner, a.key)) for a in fixed_here
    ] + _current_holds(planner, held)
    bounds = _block_bounds(now, last, current)

    used: dict[tuple[str, int, HoldClass], cp_model.IntVar] = {}

    def room_class(room_id: str, block: int, kind: HoldClass) -> cp_model.IntVar:
        literal = used.get((room_id, block, kind))
        if literal is None:
            literal = model.new_bool_var(f"class{room_id}_{block}")
            used[(room_id, block, kind)] = literal
        return literal

    intervals: dict[str, list[cp_model.IntervalVar]] = {room.id: [] for room in rooms}
    for assignment in fixed_here:
        kind = hold_class(planner, assignment.key)
        for block in _blocks_touching(bounds, assignment.start, assignment.end):
            model.add(room_class(assignment.room, block, kind) == 1)
        intervals[assignment.room].append(
            model.new_fixed_size_interval_var(
                assignment.start - now, assignment.end - assignment.start, "fixedhold"
            )
        )

    chosen: dict[PersonKey, dict[str, cp_model.IntVar]] = {}
    optional: dict[PersonKey, dict[str, cp_model.IntervalVar]] = {}
    for index, person in enumerate(held):
        if deadline is not None and index % CHECK_EVERY == 0 and time.monotonic() >= deadline:
            return None
        if person.latest_start <= person.hold_from:
            continue  # the session can only start on time: never held
        kind = hold_class(planner, person.key)
        reach = _reach_literals(model, person, bounds, now)
        waits = reach[0][1]
        size = model.new_int_var(0, person.latest_start - person.hold_from, f"wait{person.key}")
        model.add(size == person.start - (person.hold_from - now))
        literals: dict[str, cp_model.IntVar] = {}
        for room in rooms:
            literal = model.new_bool_var(f"held{room.id}{person.key}")
            literals[room.id] = literal
            model.add_hint(literal, int(room.id == person.current_room))
            for block, reached in reach:
                model.add_bool_or([literal.Not(), reached.Not(), room_class(room.id, block, kind)])
            interval = model.new_optional_interval_var(
                person.hold_from - now, size, person.start, literal, f"hold{room.id}{person.key}"
            )
            intervals[room.id].append(interval)
            optional.setdefault(person.key, {})[room.id] = interval
        model.add(sum(literals.values()) == waits)
        chosen[person.key] = literals

    per_block: dict[tuple[str, int], list[cp_model.IntVar]] = {}
    for (room_id, block, _kind), literal in used.items():
        per_block.setdefault((room_id, block), []).append(literal)
    for literals_here in per_block.values():
        if len(literals_here) > 1:
            model.add_at_most_one(literals_here)
    for room in rooms:
        if intervals[room.id]:
            model.add_cumulative(intervals[room.id], [1] * len(intervals[room.id]), room.capacity)
    _keep_co_suspects_apart(model, planner, rooms, optional, fixed_here, now)
    return chosen


def hold_class(planner: Planner, key: PersonKey) -> HoldClass:
    person = planner.person(key)
    return (person.sex, person.minor)


def _current_holds(
    planner: Planner, held: list[HeldPerson]
) -> list[tuple[str, Minute, Minute, HoldClass]]:
    found = []
    for person in held:
        for assignment in planner.assignments.get(person.key, []):
            if assignment.room == person.current_room and assignment.start < assignment.end:
                found.append(
                    (
                        assignment.room,
                        assignment.start,
                        assignment.end,
                        hold_class(planner, person.key),
                    )
                )
    return found


def _block_bounds(
    now: Minute, last: Minute, current: Iterable[tuple[str, Minute, Minute, HoldClass]]
) -> list[Minute]:
    """Hour blocks from ``now`` past ``last``, each cut at the current plan's own holding
    times where a room holds more than one class within it, so the current plan fits."""
    grid = list(range(now, last + BLOCK_MINUTES, BLOCK_MINUTES))
    kinds: dict[tuple[str, int], set[HoldClass]] = {}
    points: dict[tuple[str, int], set[Minute]] = {}
    for room_id, start, end, kind in current:
        first = max(0, (start - now) // BLOCK_MINUTES)
        for index in range(first, (end - 1 - now) // BLOCK_MINUTES + 1):
            kinds.setdefault((room_id, index), set()).add(kind)
            points.setdefault((room_id, index), set()).update((start, end))
    cuts = set(grid)
    for place, seen in kinds.items():
        if len(seen) > 1:
            low = now + place[1] * BLOCK_MINUTES
            cuts.update(p for p in points[place] if low < p < low + BLOCK_MINUTES)
    return sorted(cuts)


def _blocks_touching(bounds: list[Minute], start: Minute, end: Minute) -> list[int]:
    return [
        index
        for index in range(len(bounds) - 1)
        if bounds[index] < end and start < bounds[index + 1]
    ]


def _reach_literals(
    model: cp_model.CpModel, person: HeldPerson, bounds: list[Minute], now: Minute
) -> list[tuple[int, cp_model.IntVar]]:
    """For each block the waiting may reach: a literal true when it does (the session starts
    after the block's beginning and after ``hold_from``). The first is 'held at all'."""
    found: list[tuple[int, cp_model.IntVar]] = []
    for index in _blocks_touching(bounds, person.hold_from, person.latest_start):
        threshold = max(bounds[index], person.hold_from) - now
        reached = model.new_bool_var(f"reach{person.key}_{index}")
        model.add(person.start > threshold).only_enforce_if(reached)
        model.add(person.start <= threshold).only_enforce_if(reached.Not())
        if found:
            model.add_implication(reached, found[-1][1])
        found.append((index, reached))
    return found


def _keep_co_suspects_apart(
    model: cp_model.CpModel,
    planner: Planner,
    rooms: list[PlanRoom],
    optional: dict[PersonKey, dict[str, cp_model.IntervalVar]],
    fixed: list[Assignment],
    now: Minute,
) -> None:
    groups: dict[tuple[str, str], list[PersonKey]] = {}
    for key in optional:
        group = _co_suspects(planner, key)
        if group is not None:
            groups.setdefault(group, []).append(key)
    for group, keys in groups.items():
        for room in rooms:
            mine = [optional[key][room.id] for key in keys]
            mine.extend(
                model.new_fixed_size_interval_var(a.start - now, a.end - a.start, "fixedco")
                for a in fixed
                if a.room == room.id and _co_suspects(planner, a.key) == group
            )
            if len(mine) > 1:
                model.add_no_overlap(mine)


def _co_suspects(planner: Planner, key: PersonKey) -> tuple[str, str] | None:
    person = planner.person(key)
    if person.co_suspect_group is None:
        return None
    return (planner.bookings[key[0]].case_id, person.co_suspect_group)
