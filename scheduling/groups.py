"""Co-suspect groups placed whole: a group of one booking is in the plan together or waits
together, never split between the plan and the waitlist.

A group is the persons of one booking sharing a ``co_suspect_group``. When some of them fit and
some do not, the ones that fit are taken out again and wait with the others. Taking persons out
of a lawful plan leaves it lawful (every hard rule only limits what is placed), so this never
needs the allocator's rules. A session that has started is never taken out (H10).
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduling.allocator import Planner
from scheduling.model import Booking, PersonKey, Unassigned

GroupKey = tuple[str, str]  # (booking id, co_suspect_group)


def groups_of(booking: Booking) -> dict[GroupKey, list[PersonKey]]:
    """The booking's co-suspect groups with their members (a person without a group is in
    none)."""
    found: dict[GroupKey, list[PersonKey]] = {}
    for person in booking.persons:
        if person.co_suspect_group is not None:
            found.setdefault((booking.id, person.co_suspect_group), []).append(
                (booking.id, person.id)
            )
    return found


def keep_groups_whole(planner: Planner, placed: Iterable[PersonKey]) -> list[Unassigned]:
    """Of the persons just ``placed``, take out those with a co-suspect of their group left
    unassigned; they wait with it, under its rule. Returns what they are left unassigned with.

    Only persons just placed are taken out: a group member placed earlier keeps a place it was
    promised, even if a later change left a co-suspect unplaced."""
    held: list[Unassigned] = []
    for key in dict.fromkeys(placed):
        booking = planner.bookings.get(key[0])
        if booking is None or key in planner.fixed or planner.session_of(key) is None:
            continue
        group = booking.person(key[1]).co_suspect_group
        if group is None:
            continue
        waiting = next(
            (
                planner.unassigned[member]
                for member in groups_of(booking).get((booking.id, group), [])
                if member in planner.unassigned
            ),
            None,
        )
        if waiting is None:
            continue
        unassigned = Unassigned(
            key[0],
            key[1],
            waiting.rule,
            f"waits with co-suspect {waiting.person} ({waiting.rule}): "
            f"co-suspect group {group} is placed whole",
        )
        planner.hold_back(key, unassigned)
        held.append(unassigned)
    return held


def split_groups(planner: Planner) -> list[GroupKey]:
    """Groups with members both placed (not started) and unassigned: what must never happen
    to a group placed by :func:`keep_groups_whole` (for checks and tests)."""
    found = []
    for booking in planner.bookings.values():
        for group, members in groups_of(booking).items():
            placed = [m for m in members if planner.session_of(m) is not None]
            if any(m in planner.unassigned for m in members) and any(
                m not in planner.fixed for m in placed
            ):
                found.append(group)
    return found
