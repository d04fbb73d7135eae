"""S8, a follow-up session in the same room as the one before: the recording set-up, the
exhibits and the seating stay as they were, and the person meets no new surroundings. A
follow-up is a later booking of the same case bringing a person of the same id again; each
such session not in the room of the person's previous one costs ``Policy.weight_same_room``.
A session that is not placed has no room to differ."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping

from ortools.sat.python import cp_model

from scheduling.model import Booking, PersonKey

Identity = tuple[str, str]  # (case id, person id)


def follow_ups(
    bookings: Mapping[str, Booking], keys: Collection[PersonKey]
) -> list[tuple[PersonKey, PersonKey]]:
    """Each pair of one person's sessions in consecutive bookings of a case (by expected
    arrival), the earlier first, among the bookings that bring that person."""
    by_identity: dict[Identity, list[PersonKey]] = {}
    for key in keys:
        booking = bookings.get(key[0])
        if booking is not None:
            by_identity.setdefault((booking.case_id, key[1]), []).append(key)
    pairs: list[tuple[PersonKey, PersonKey]] = []
    for found in by_identity.values():
        ordered = sorted(found, key=lambda k: (bookings[k[0]].expected_arrival, k[0]))
        pairs.extend(itertools.pairwise(ordered))
    return pairs


def moved_rooms(
    pairs: Collection[tuple[PersonKey, PersonKey]],
    room_of: Mapping[PersonKey, str],
    counted: Collection[PersonKey],
) -> int:
    """Follow-ups placed in another room than the session before, one of the pair in
    ``counted``."""
    return sum(
        1
        for before, after in pairs
        if (before in counted or after in counted)
        and before in room_of
        and after in room_of
        and room_of[before] != room_of[after]
    )


def add_term(
    model: cp_model.CpModel,
    one: Mapping[str, cp_model.IntVar],
    other: Mapping[str, cp_model.IntVar] | str,
    one_placed: cp_model.IntVar,
    other_placed: cp_model.IntVar | int,
) -> cp_model.IntVar:
    """A literal true when the two sessions are both placed and in different rooms: ``one``
    and ``other`` are the room literals of moving sessions, or ``other`` names the room of a
    session that stays."""
    differ = model.new_bool_var("otherroom")
    if isinstance(other, str):
        model.add(differ >= one_placed - one[other] if other in one else differ >= one_placed)
        return differ
    for room_id in {*one, *other}:
        mine = one.get(room_id, 0)
        theirs = other.get(room_id, 0)
        # In room_id on one side and not on the other, with both placed: different rooms.
        model.add(differ >= mine - theirs - (1 - other_placed))
        model.add(differ >= theirs - mine - (1 - one_placed))
    return differ
