"""A refused booking's answer: lawful partial plans, later arrivals that do fit, groups whole,
and the plan asked about left as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.answers import (
    ARRIVAL_HORIZON,
    ARRIVAL_STEP,
    LATER_SUFFIX,
    refusal,
    shifted,
)
from scheduling.checker import check_plan
from scheduling.generator import generate_day
from scheduling.groups import groups_of, keep_groups_whole, split_groups
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    LegalBasis,
    Person,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.rooms import Equipment, RoomType
from tests.scheduling.strategies import DAY, bookings, rooms

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def violations(planner: Planner, extra: list[Assignment] | None = None) -> list[str]:
    return [
        f"{v.rule} {v.message}"
        for v in check_plan(
            planner.rooms,
            planner.bookings,
            [*planner.all_assignments(), *(extra or [])],
            planner.policy,
            planner.fixed,
        )
    ]


def state(planner: Planner) -> tuple[object, ...]:
    return (
        sorted(planner.all_assignments(), key=repr),
        sorted(planner.unassigned.items()),
        sorted(planner.bookings),
    )


@PROPERTY
@given(rooms(), bookings(count_max=10))
def test_a_refusal_offers_only_what_fits_and_changes_nothing(
    plan_rooms: list[PlanRoom], day: list[Booking]
) -> None:
    plan = Planner(plan_rooms)
    for booking in day[:-1]:
        plan.add_booking(booking)
    last = day[-1]
    before = state(plan)
    attempt = plan.copy()
    if attempt.add_booking(last).complete:
        return
    answer = refusal(plan, attempt, last, None)
    assert state(plan) == before
    # The partial plan is the plan booking those persons now would make (the allocator may move
    # unstarted sessions of other bookings for it, as for any booking): lawful as a whole, and
    # it keeps co-suspect groups whole.
    assert violations(attempt) == []
    assert set(answer.fits_now) <= set(attempt.all_assignments())
    fitting = {a.person for a in answer.fits_now if a.kind is AssignmentKind.SESSION}
    for members in groups_of(last).values():
        placed = {key[1] for key in members} & fitting
        assert placed in (set(), {key[1] for key in members})
    # Everyone is either in the partial plan or told from when (or that nothing soon fits).
    later = {fit.person: fit.arrival for fit in answer.fits_later}
    assert set(later) | fitting == {p.id for p in last.persons}
    assert not set(later) & fitting
    assert {u.person for u in answer.unplaced} == set(later)
    # Each arrival offered does fit: the others coming then, beside the partial plan.
    for arrival in set(later.values()) - {None}:
        assert arrival is not None
        trial = attempt.copy()
        trial.displace = False
        rest = replace(
            last,
            id=last.id + LATER_SUFFIX,
            persons=tuple(p for p in last.persons if p.id in later),
        )
        moved = shifted(rest, arrival - last.expected_arrival)
        trial.add_booking(moved)
        keep_groups_whole(trial, [(moved.id, p.id) for p in moved.persons])
        for person, offered in later.items():
            if offered == arrival:
                assert trial.session_of((moved.id, person)) is not None
        assert violations(trial) == []
    # The suggested arrival lets the whole booking in.
    if answer.suggested_arrival is not None:
        trial = plan.copy()
        trial.displace = False
        whole = trial.add_booking(shifted(last, answer.suggested_arrival - last.expected_arrival))
        assert whole.complete
        assert violations(trial) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_searches_stopping_at_a_legal_limit_find_what_every_step_would(seed: int) -> None:
    """A person who misses their legal limit at one arrival ends the searches for them (a later
    arrival cannot help): on an overloaded day's refusals, the suggested arrival and each
    person's arrival are what trying every step finds."""
    day = generate_day(100, 16, seed)
    plan = Planner(day.rooms)
    refused = 0
    for booking in day.bookings:
        attempt = plan.copy()
        if attempt.add_booking(booking).complete:
            plan.add_booking(booking)
            continue
        refused += 1
        answer = refusal(plan, attempt, booking, None)
        assert answer.suggested_arrival == _first_fitting(plan, booking, None)
        rest = replace(
            booking,
            id=booking.id + LATER_SUFFIX,
            persons=tuple(p for p in booking.persons if (booking.id, p.id) in attempt.unassigned),
        )
        for fit in answer.fits_later:
            assert fit.arrival == _first_fitting(attempt, rest, fit.person), fit.person
    assert refused >= 5


def _first_fitting(plan: Planner, booking: Booking, person: str | None) -> int | None:
    """The first arrival step at which ``booking`` fits whole (or ``person`` of it, its
    co-suspects kept whole), every step tried."""
    trial = plan.copy()
    trial.displace = False
    for shift in range(ARRIVAL_STEP, ARRIVAL_HORIZON + 1, ARRIVAL_STEP):
        later = shifted(booking, shift)
        placement = trial.add_booking(later)
        keys = [(later.id, p.id) for p in later.persons]
        keep_groups_whole(trial, [k for k in keys if trial.session_of(k) is not None])
        fits = (
            placement.complete
            if person is None
            else trial.session_of((later.id, person)) is not None
        )
        trial.remove_booking(later.id)
        if fits and (person is not None or placement.complete):
            return later.expected_arrival
    return None


@PROPERTY
@given(rooms(), bookings(), st.data())
def test_with_the_waitlist_a_co_suspect_group_is_placed_whole_or_waits_whole(
    plan_rooms: list[PlanRoom], day: list[Booking], data: st.DataObject
) -> None:
    plan = Planner(plan_rooms)
    for booking in day:
        plan.add_booking(booking)
        keep_groups_whole(plan, [(booking.id, p.id) for p in booking.persons])
        assert split_groups(plan) == []
    # Bookings cancelled free rooms: the waitlist is tried again, groups still whole.
    for booking in data.draw(st.lists(st.sampled_from(day), unique_by=lambda b: b.id)):
        plan.remove_booking(booking.id)
        retried = list(plan.unassigned)
        plan.place_unassigned()
        keep_groups_whole(plan, retried)
        assert split_groups(plan) == []
    assert violations(plan) == []
    for booking in plan.bookings.values():
        for person in booking.persons:
            key = (booking.id, person.id)
            assert (plan.session_of(key) is not None) != (key in plan.unassigned), key


def suspect(person_id: str, group: str | None = "g1") -> Person:
    return Person(
        person_id,
        PersonRole.SUSPECT,
        False,
        Sex.MALE,
        DAY - 30,
        LegalBasis.CRIMINAL_SUMMONS_SERIOUS,
        co_suspect_group=group,
    )


ONE_ROOM = [
    PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING})),
    PlanRoom("W-1", RoomType.WAITING, 1, frozenset()),
]


def booking(booking_id: str, *persons: Person, case: str = "C") -> Booking:
    return Booking(booking_id, "s1", case, "theft", 4, DAY, 120, persons)


def test_a_refusal_names_who_fits_now_and_from_when_the_other_fits() -> None:
    plan = Planner(ONE_ROOM)
    assert plan.add_booking(booking("b0", suspect("A", None), case="other")).complete
    # Two suspects of separate groups: one waits in W-1 for I-1 after A, the other has
    # neither a room nor a waiting place until A is done.
    asked = booking("b1", suspect("X", None), suspect("Y", None))
    attempt = plan.copy()
    assert not attempt.add_booking(asked, DAY).complete
    answer = refusal(plan, attempt, asked, DAY)
    sessions = [a for a in answer.fits_now if a.kind is AssignmentKind.SESSION]
    assert [(a.person, a.room, a.start) for a in sessions] == [("X", "I-1", DAY + 130)]
    assert [(u.person, u.rule) for u in answer.unplaced] == [("Y", "H2")]
    (later,) = answer.fits_later
    assert later.person == "Y"
    assert later.arrival is not None
    assert later.arrival > DAY
    assert answer.suggested_arrival is not None
    assert answer.suggested_arrival >= later.arrival


def test_a_group_that_cannot_be_placed_whole_waits_whole() -> None:
    plan = Planner(ONE_ROOM)
    assert plan.add_booking(booking("b0", suspect("A", None), case="other")).complete
    group = booking("b1", suspect("X"), suspect("Y"))
    placement = plan.add_booking(group, DAY)
    assert [u.person for u in placement.unassigned] == ["Y"]
    held = keep_groups_whole(plan, [("b1", "X"), ("b1", "Y")])
    assert [(u.person, u.rule) for u in held] == [("X", "H2")]
    assert "waits with co-suspect Y" in held[0].reason
    assert plan.session_of(("b1", "X")) is None
    assert split_groups(plan) == []
    # Room freed: both are placed together.
    plan.remove_booking("b0")
    retried = list(plan.unassigned)
    plan.place_unassigned()
    assert keep_groups_whole(plan, retried) == []
    assert plan.session_of(("b1", "X")) is not None
    assert plan.session_of(("b1", "Y")) is not None
    assert violations(plan) == []


def test_a_person_no_arrival_can_help_ends_the_search_at_once() -> None:
    plan = Planner(ONE_ROOM)
    minor = replace(suspect("M", None), minor=True)  # no guardian: H7 whenever they come
    asked = booking("b1", suspect("X", None), minor)
    attempt = plan.copy()
    assert not attempt.add_booking(asked, DAY).complete
    answer = refusal(plan, attempt, asked, DAY)
    assert answer.suggested_arrival is None
    assert [(f.person, f.arrival) for f in answer.fits_later] == [("M", None)]
    assert [a.person for a in answer.fits_now] == ["X"]
