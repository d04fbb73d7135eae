"""Who nobody could place: persons the centre's rooms and the booking's own data rule out.

A benchmark that counts every unplaced person against the allocator mixes "the allocator could
not" with "no plan could": an inquiry room with recording the centre does not have, a female
minor suspect brought without female staff, a session that would end past the legal limit even
if it started the moment the person is ready. This names those persons and the rule, from the
rooms and one booking alone, whatever else is booked.

Each person is judged on their own: what two persons of one booking do to each other (the
booking's officers running sessions one after another, co-suspects needing separate waiting
rooms) depends on how the plan orders them, so such a person counts as possible here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scheduling.model import Booking, PersonKey, PersonRole, PlanRoom
from scheduling.needs import CannotPlace, need_for
from scheduling.policy import Policy
from scheduling.rooms import RoomType


@dataclass(frozen=True, slots=True)
class Impossible:
    key: PersonKey
    rule: str
    reason: str


def impossible_persons(
    rooms: Iterable[PlanRoom], booking: Booking, policy: Policy | None = None
) -> list[Impossible]:
    """Each person of ``booking`` no plan over ``rooms`` could place, with the rule and why;
    an empty list when every one of them fits an empty day."""
    policy = policy or Policy()
    usable = [room for room in rooms if room.available]
    found: list[Impossible] = []
    for person in booking.persons:
        key = (booking.id, person.id)
        try:
            need = need_for(booking, person, policy)
        except CannotPlace as exc:
            found.append(Impossible(key, exc.rule, exc.reason))
            continue
        of_type = [room for room in usable if room.type is need.room_type]
        if not of_type:
            found.append(Impossible(key, "H3", f"no {need.room_type} room in service"))
            continue
        if not any(need.equipment <= room.equipment for room in of_type):
            found.append(
                Impossible(
                    key,
                    "H4",
                    f"no {need.room_type} room in service with {', '.join(sorted(need.equipment))}",
                )
            )
            continue
        # A suspect whose guardian comes after the entry steps waits for them, held (H2).
        must_wait = person.role is PersonRole.SUSPECT and need.earliest_start > need.holding_from
        if must_wait and not any(room.type is RoomType.WAITING for room in usable):
            found.append(
                Impossible(key, "H2", "waits for the guardian, and no waiting room is in service")
            )
    return found
