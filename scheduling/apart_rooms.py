"""S4, persons of one case kept apart: co-suspects questioned at the same time are not in
adjacent rooms, nor is a witness or victim next to a suspect of their case. H2 already keeps
them out of the same room; through a shared wall they can still hear, signal or recognise each
other, so the improver pays ``Policy.weight_apart`` for every such pair whose sessions overlap
in rooms the config names as adjacent."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduling.model import Assignment, Booking, Minute, PersonKey, PersonRole, PlanRoom

Adjacency = Mapping[str, frozenset[str]]


def adjacency(rooms: Mapping[str, PlanRoom]) -> dict[str, frozenset[str]]:
    """Each room's neighbours, read both ways (one room's config naming the other is enough);
    names of unknown rooms and a room naming itself are ignored."""
    found: dict[str, set[str]] = {room_id: set() for room_id in rooms}
    for room in rooms.values():
        for other in room.adjacent_to:
            if other in found and other != room.id:
                found[room.id].add(other)
                found[other].add(room.id)
    return {room_id: frozenset(others) for room_id, others in found.items()}


def kept_apart(bookings: Mapping[str, Booking], one: PersonKey, other: PersonKey) -> bool:
    """Two persons of the same case, both suspects or one a suspect and the other not."""
    if one == other:
        return False
    first, second = bookings.get(one[0]), bookings.get(other[0])
    if first is None or second is None or first.case_id != second.case_id:
        return False
    roles = (first.person(one[1]).role, second.person(other[1]).role)
    return PersonRole.SUSPECT in roles


def violations(
    bookings: Mapping[str, Booking],
    neighbours: Adjacency,
    sessions: Collection[Assignment],
    counted: Collection[PersonKey],
) -> int:
    """Pairs kept apart whose sessions overlap in adjacent rooms, at least one of them in
    ``counted``."""
    by_case: dict[str, list[Assignment]] = {}
    for session in sessions:
        booking = bookings.get(session.booking)
        if booking is not None:
            by_case.setdefault(booking.case_id, []).append(session)
    found = 0
    for same_case in by_case.values():
        for index, one in enumerate(same_case):
            for other in same_case[index + 1 :]:
                if (
                    (one.key in counted or other.key in counted)
                    and other.room in neighbours.get(one.room, frozenset())
                    and one.start < other.end
                    and other.start < one.end
                    and kept_apart(bookings, one.key, other.key)
                ):
                    found += 1
    return found


@dataclass(frozen=True, slots=True)
class Placed:
    """A person's session as a model variable: its start (minutes after the model's origin),
    length and the literal of each room it may take."""

    start: cp_model.IntVar
    duration: int
    rooms: Mapping[str, cp_model.IntVar]


def add_terms(
    model: cp_model.CpModel,
    bookings: Mapping[str, Booking],
    neighbours: Adjacency,
    moving: Mapping[PersonKey, Placed],
    staying: Collection[Assignment],
    origin: Minute,
) -> list[cp_model.IntVar]:
    """One penalty literal per pair kept apart that may end up overlapping in adjacent rooms:
    pairs of moving persons, and a moving person with a session that stays where it is."""
    penalties: list[cp_model.IntVar] = []
    if not any(neighbours.values()):
        return penalties
    moving_by_case = _by_case(bookings, sorted(moving))
    staying_by_case: dict[str, list[Assignment]] = {}
    for session in staying:
        booking = bookings.get(session.booking)
        if booking is not None and booking.case_id in moving_by_case:
            staying_by_case.setdefault(booking.case_id, []).append(session)
    for case_id, keys in moving_by_case.items():
        for index, key in enumerate(keys):
            one = moving[key]
            for other_key in keys[index + 1 :]:
                if kept_apart(bookings, key, other_key):
                    penalties.extend(_moving_pair(model, neighbours, one, moving[other_key]))
            for session in staying_by_case.get(case_id, []):
                if session.key not in moving and kept_apart(bookings, key, session.key):
                    penalties.extend(_staying_pair(model, neighbours, one, session, origin))
    return penalties


def _by_case(
    bookings: Mapping[str, Booking], keys: Collection[PersonKey]
) -> dict[str, list[PersonKey]]:
    found: dict[str, list[PersonKey]] = {}
    for key in keys:
        booking = bookings.get(key[0])
        if booking is not None:
            found.setdefault(booking.case_id, []).append(key)
    return found


def _moving_pair(
    model: cp_model.CpModel, neighbours: Adjacency, one: Placed, other: Placed
) -> list[cp_model.IntVar]:
    pairs = [
        (mine, theirs)
        for room_id, mine in one.rooms.items()
        for neighbour, theirs in other.rooms.items()
        if neighbour in neighbours.get(room_id, frozenset())
    ]
    if not pairs:
        return []
    overlap = _overlap(model, one.start, one.duration, other.start, other.duration)
    penalty = model.new_bool_var("apart")
    for mine, theirs in pairs:
        model.add(penalty >= mine + theirs + overlap - 2)
    return [penalty]


def _staying_pair(
    model: cp_model.CpModel,
    neighbours: Adjacency,
    one: Placed,
    session: Assignment,
    origin: Minute,
) -> list[cp_model.IntVar]:
    near = [
        literal
        for room_id, literal in one.rooms.items()
        if session.room in neighbours.get(room_id, frozenset())
    ]
    if not near:
        return []
    fixed = model.new_constant(session.start - origin)
    overlap = _overlap(model, one.start, one.duration, fixed, session.end - session.start)
    penalty = model.new_bool_var("apart")
    for literal in near:
        model.add(penalty >= literal + overlap - 1)
    return [penalty]


def _overlap(
    model: cp_model.CpModel,
    start: cp_model.IntVar,
    length: int,
    other_start: cp_model.IntVar,
    other_length: int,
) -> cp_model.IntVar:
    """A literal that must be true when the two sessions overlap (the objective keeps it false
    otherwise)."""
    overlap = model.new_bool_var("overlap")
    first = model.new_bool_var("first")
    model.add(start + length <= other_start).only_enforce_if([overlap.Not(), first])
    model.add(other_start + other_length <= start).only_enforce_if([overlap.Not(), first.Not()])
    return overlap
