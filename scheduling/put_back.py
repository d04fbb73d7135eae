"""Putting back the moves of a re-planned day that gain little (S5).

A re-dispatch plans every session that has not started again, so a plan that saves much
waiting in sum may still move most of the day a little, and every booking moved is told
(``plan_changed``). On generated feasible days about half of its moves were sessions at the
very same minutes in another room of the kind (a dispatch picks rooms as they free). Each moved
person whose own gain is below what a move must be worth goes back where they were, if that
place is free: the room with its cleaning buffer (H1), the booking's officers (H6) and the
waiting room (H2, capacity). Where the session's room is taken by sessions that moved too, the
person goes back when those can take another fitting room at their same minutes (their own old
room first): a swap of rooms changes nobody's waiting. Only the returning person's waiting and
legal slack change, so their own gain is exactly what the plan gives up in those terms; one
put back can free the place another needs, so the persons are tried again until none more
goes back. :func:`fewer_moves` judges the whole plan (soft rules, the checker) before it keeps
the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.model import Assignment, AssignmentKind, Minute, PersonKey
from scheduling.needs import CannotPlace, may_wait_together, need_for

PASSES = 4  # rounds over the persons moved; one put back may make room for another


@dataclass(frozen=True, slots=True)
class PutBack:
    changes: dict[PersonKey, list[Assignment]]  # the moves kept
    put_back: frozenset[PersonKey]


def put_back(
    before: Planner,
    changes: dict[PersonKey, list[Assignment]],
    own_cost: Callable[[Planner, PersonKey], float],
    worth: float,
    deadline: float,
) -> PutBack:
    """``changes`` (each moved person's new assignments, made on ``before``) without the moves
    that gain their person less than ``worth`` by ``own_cost`` and whose old place is free in
    the plan with the other moves made, or can be freed by giving the sessions there other
    rooms at their same minutes. ``deadline`` (``time.monotonic()``) ends the search with what
    was put back so far. ``before`` is not changed."""
    after = before.copy()
    for key, assignments in changes.items():
        after.rebook(key, assignments)
    gains = {
        key: own_cost(before, key) - own_cost(after, key)
        for key in changes
        if before.session_of(key) is not None and key not in before.fixed
    }
    candidates = sorted(
        (key for key in gains if gains[key] < worth),
        key=lambda k: (gains[k], before.assignments[k][-1].start),
    )
    places = _Places(after)
    for _pass in range(PASSES):
        progress = False
        for key in candidates:
            old = before.assignments[key]
            if places.of[key] == old:
                continue
            if time.monotonic() >= deadline:
                return _result(before, changes, places)
            if places.free(key, old):
                places.move(key, old)
                progress = True
            elif places.swap(key, old, set(changes), before):
                progress = True
        if not progress:
            break
    return _result(before, changes, places)


def _result(
    before: Planner, changes: dict[PersonKey, list[Assignment]], places: _Places
) -> PutBack:
    kept = {
        key: places.of[key] for key in changes if places.of[key] != before.assignments.get(key, [])
    }
    return PutBack(kept, frozenset(key for key in changes if key not in kept))


@dataclass(slots=True)
class _Places:
    """Who is where in a plan, by room and by booking, kept up to date as persons move."""

    planner: Planner
    by_room: dict[str, list[Assignment]] = field(default_factory=dict)
    of: dict[PersonKey, list[Assignment]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, items in self.planner.assignments.items():
            self._add(key, items)

    def move(self, key: PersonKey, items: list[Assignment]) -> None:
        for item in self.of.pop(key, []):
            self.by_room[item.room].remove(item)
        self._add(key, items)

    def _add(self, key: PersonKey, items: list[Assignment]) -> None:
        self.of[key] = list(items)
        for item in items:
            self.by_room.setdefault(item.room, []).append(item)

    def swap(
        self, key: PersonKey, old: list[Assignment], movable: set[PersonKey], before: Planner
    ) -> bool:
        """Put ``key`` back in ``old`` where its session's room is taken by other sessions of
        ``movable``, each of which then takes another room at the same minutes: their own old
        room when their time is as it was, else the room ``key`` leaves, else the free room
        with the fewest extras (S3)."""
        mine = _session(self.of[key])
        back = _session(old)
        if mine is None or back is None or (mine.start, mine.end) != (back.start, back.end):
            return False
        clean = self.planner.policy.cleaning(self.planner.rooms[back.room].type)
        blocking = [
            o
            for o in self.by_room.get(back.room, [])
            if o.key != key and o.start < back.end + clean and back.start < o.end + clean
        ]
        if not blocking or any(
            o.key not in movable
            or o.kind is not AssignmentKind.SESSION
            # one already back where it was stays there: no trading one move for another
            or self.of[o.key] == before.assignments.get(o.key)
            for o in blocking
        ):
            return False
        kept = {o.key: self.of[o.key] for o in blocking}
        now_mine = self.of[key]
        for other in blocking:
            self.move(other.key, [])
        self.move(key, [])
        if self.free(key, old):
            self.move(key, old)
            if all(
                self._elsewhere(other, mine.room, kept[other.key], before) for other in blocking
            ):
                return True
        for other in blocking:
            self.move(other.key, [])
        self.move(key, now_mine)
        for k, items in kept.items():
            self.move(k, items)
        return False

    def _elsewhere(
        self, session: Assignment, freed: str, items: list[Assignment], before: Planner
    ) -> bool:
        """Give ``session`` (of ``items``) the first room that fits and is free now."""
        booking = self.planner.bookings[session.booking]
        try:
            need = need_for(booking, booking.person(session.person), self.planner.policy)
        except CannotPlace:
            return False
        fitting = [
            r
            for r in self.planner.rooms.values()
            if r.type is need.room_type
            and r.available
            and need.equipment <= r.equipment
            and r.id != session.room
        ]
        first: list[str] = []
        old = _session(before.assignments.get(session.key, []))
        if old is not None and (old.start, old.end) == (session.start, session.end):
            first.append(old.room)
        first.append(freed)
        order = [
            *first,
            *(
                r.id
                for r in sorted(fitting, key=lambda r: (len(r.equipment - need.equipment), r.id))
                if r.id not in first
            ),
        ]
        for room_id in order:
            if room_id not in {r.id for r in fitting}:
                continue
            moved = [replace(a, room=room_id) if a == session else a for a in items]
            if self.free(session.key, moved):
                self.move(session.key, moved)
                return True
        return False

    def free(self, key: PersonKey, items: list[Assignment]) -> bool:
        """Whether ``key`` may have ``items`` with everyone else where they are now."""
        for item in items:
            room = self.planner.rooms.get(item.room)
            if room is None or not room.available:
                return False
            others = [o for o in self.by_room.get(item.room, []) if o.key != key]
            if item.kind is AssignmentKind.SESSION:
                if not self._session_free(key, item, others):
                    return False
            elif not self._waiting_free(key, item, others, room.capacity):
                return False
        return True

    def _session_free(self, key: PersonKey, item: Assignment, others: list[Assignment]) -> bool:
        room = self.planner.rooms[item.room]
        clean = self.planner.policy.cleaning(room.type)
        for other in others:
            if other.start < item.end + clean and item.start < other.end + clean:
                return False
        booking = self.planner.bookings[key[0]]
        parallel = 0
        for person in booking.persons:
            other_key = (booking.id, person.id)
            if other_key == key:
                continue
            for other in self.of.get(other_key, []):
                overlaps = other.start < item.end and item.start < other.end
                if other.kind is AssignmentKind.SESSION and overlaps:
                    parallel += 1
        return parallel < booking.officers // 2

    def _waiting_free(
        self, key: PersonKey, item: Assignment, others: list[Assignment], capacity: int
    ) -> bool:
        booking = self.planner.bookings[key[0]]
        overlapping = [o for o in others if o.start < item.end and item.start < o.end]
        for other in overlapping:
            other_booking = self.planner.bookings[other.booking]
            if not may_wait_together(
                booking.person(key[1]), booking, other_booking.person(other.key[1]), other_booking
            ):
                return False
        moments = sorted(
            [(max(o.start, item.start), 1) for o in overlapping]
            + [(min(o.end, item.end), -1) for o in overlapping]
        )
        held = peak = 0
        for _moment, step in moments:
            held += step
            peak = max(peak, held)
        return peak + 1 <= capacity


def _session(items: list[Assignment]) -> Assignment | None:
    return next((a for a in items if a.kind is AssignmentKind.SESSION), None)


def fewer_moves(
    before: Planner,
    changes: dict[PersonKey, list[Assignment]],
    cost: Callable[[Planner], float],
    own_cost: Callable[[Planner, PersonKey], float],
    worth: float,
    now: Minute,
    deadline: float,
) -> dict[PersonKey, list[Assignment]]:
    """``changes`` with the moves that gain little put back (:func:`put_back`), if the plan
    that leaves is lawful (the independent checker) and, each move charged ``worth``, no worse
    by ``cost`` than the plan with every move; otherwise ``changes`` as they were."""
    found = put_back(before, changes, own_cost, worth, deadline)
    if not found.put_back:
        return changes
    every, fewer = before.copy(), before.copy()
    for key, assignments in changes.items():
        every.rebook(key, assignments)
    for key, assignments in found.changes.items():
        fewer.rebook(key, assignments)
    if cost(fewer) + worth * len(found.changes) > cost(every) + worth * len(changes):
        return changes  # the soft rules over the whole plan lost more than the moves saved
    if check_plan(
        fewer.rooms, fewer.bookings, fewer.all_assignments(), fewer.policy, fewer.fixed, now
    ):
        return changes
    return found.changes
