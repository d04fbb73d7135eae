"""The answer to a booking that cannot be placed whole: enough for the officer to choose.

It carries each person left out with the rule that kept them out, the arrival at which the whole
booking would fit (``suggested_arrival``), and the best partial plan: the persons who fit now
with their rooms and times, and for each of the others the earliest arrival from which they fit
beside them (or none within the horizon). Co-suspect groups stay whole in the partial plan
(``scheduling.groups``): it is a plan the officer could book as it is, and booking it would
place those persons as shown (the allocator may move unstarted sessions of other bookings for
them, as for any booking).

Both searches try later arrivals in ``ARRIVAL_STEP`` minutes up to ``ARRIVAL_HORIZON`` (the legal
clocks keep running meanwhile) on one copy of the plan, adding and removing the shifted booking
at each step, and without moving other bookings (that is for a booking actually made). A person
no arrival can help (a need the rooms or the request cannot meet, a legal limit already too
close) ends the whole-booking search at once, and a person who misses their legal limit at one
arrival (H5) ends it there, and their own search too. Nothing here changes the plan it is
given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scheduling.allocator import Planner
from scheduling.groups import keep_groups_whole
from scheduling.model import Assignment, Booking, Minute, Person, Unassigned
from scheduling.needs import CannotPlace, need_for

ARRIVAL_STEP = 15
ARRIVAL_HORIZON = 240
# The persons who do not fit now are tried as a booking of their own beside the partial plan.
LATER_SUFFIX = "~later"
# A person the plan cannot place before their legal limit at one arrival cannot be placed at a
# later one either (the rooms only get fewer starts to offer, the limit does not move): the
# searches stop there for them.
LIMIT_RULE = "H5"


@dataclass(frozen=True, slots=True)
class LaterFit:
    person: str
    arrival: Minute | None  # the earliest arrival from which the person fits; None: not soon


@dataclass(frozen=True, slots=True)
class Refusal:
    unplaced: tuple[Unassigned, ...]  # everyone outside the partial plan, with the rule
    suggested_arrival: Minute | None  # the whole booking fits if it comes then
    fits_now: tuple[Assignment, ...]  # the partial plan: sessions and waiting, by person
    fits_later: tuple[LaterFit, ...]  # the others, in the booking's order


def refusal(plan: Planner, attempt: Planner, booking: Booking, now: Minute | None) -> Refusal:
    """The answer for ``booking``, which ``attempt`` (a copy of ``plan`` with the booking added)
    could not place whole. ``attempt`` is left holding the partial plan; ``plan`` is not
    changed."""
    keys = [(booking.id, p.id) for p in booking.persons]
    keep_groups_whole(attempt, [k for k in keys if attempt.session_of(k) is not None])
    unplaced = tuple(attempt.unassigned[k] for k in keys if k in attempt.unassigned)
    fits_now = tuple(a for k in keys for a in attempt.assignments.get(k, ()))
    hopeless = {p.id for p in booking.persons if not _may_fit_later(booking, p, plan)}
    rest = [p for p in booking.persons if (booking.id, p.id) in attempt.unassigned]
    return Refusal(
        unplaced,
        None if hopeless else _whole_booking_arrival(plan, booking, now),
        fits_now,
        _later_fits(attempt, booking, rest, hopeless, now),
    )


def shifted(booking: Booking, minutes: int) -> Booking:
    """The booking arriving ``minutes`` later; a guardian is there no earlier than the unit."""
    arrival = booking.expected_arrival + minutes
    return replace(
        booking,
        expected_arrival=arrival,
        persons=tuple(
            replace(p, guardian_at=None if p.guardian_at is None else max(p.guardian_at, arrival))
            for p in booking.persons
        ),
    )


def _may_fit_later(booking: Booking, person: Person, plan: Planner) -> bool:
    """False when the person's own needs already rule every arrival out (those needs do not
    depend on the arrival, except the legal limit, which only comes closer), or no room in
    service meets them."""
    try:
        need = need_for(booking, person, plan.policy)
    except CannotPlace:
        return False
    return any(
        room.type is need.room_type and room.available and need.equipment <= room.equipment
        for room in plan.rooms.values()
    )


def _whole_booking_arrival(plan: Planner, booking: Booking, now: Minute | None) -> Minute | None:
    trial = plan.copy()
    trial.displace = False
    for shift in range(ARRIVAL_STEP, ARRIVAL_HORIZON + 1, ARRIVAL_STEP):
        later = shifted(booking, shift)
        placement = trial.add_booking(later, now)
        trial.remove_booking(later.id)
        if placement.complete:
            return later.expected_arrival
        if any(item.rule == LIMIT_RULE for item in placement.unassigned):
            return None  # a later arrival only brings that limit closer
    return None


def _later_fits(
    attempt: Planner,
    booking: Booking,
    rest: list[Person],
    hopeless: set[str],
    now: Minute | None,
) -> tuple[LaterFit, ...]:
    """For each person outside the partial plan, the earliest arrival at which they fit beside
    it, as one booking of those persons (so co-suspects among them are placed whole: one no
    arrival helps keeps its group out too)."""
    found: dict[str, Minute] = {}
    hopeful = {p.id for p in rest} - hopeless
    past_limit: set[str] = set()  # missed their legal limit at one arrival: so at every later
    if hopeful:
        trial = attempt.copy()
        trial.displace = False
        others = replace(booking, id=booking.id + LATER_SUFFIX, persons=tuple(rest))
        for shift in range(ARRIVAL_STEP, ARRIVAL_HORIZON + 1, ARRIVAL_STEP):
            later = shifted(others, shift)
            trial.add_booking(later, now)
            keys = [(later.id, p.id) for p in later.persons]
            keep_groups_whole(trial, [k for k in keys if trial.session_of(k) is not None])
            for key in keys:
                if key[1] not in found and trial.session_of(key) is not None:
                    found[key[1]] = later.expected_arrival
                left = trial.unassigned.get(key)
                if left is not None and left.rule == LIMIT_RULE:
                    past_limit.add(key[1])
            trial.remove_booking(later.id)
            if len(found) + len(past_limit - set(found)) >= len(hopeful):
                break
    return tuple(LaterFit(p.id, found.get(p.id)) for p in rest)
