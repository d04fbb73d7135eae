"""Persons impossible by the data: never placed on an empty day; everyone else placed there."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.model import Booking, LegalBasis, Person, PersonRole, PlanRoom, Sex
from scheduling.possible import impossible_persons
from scheduling.rooms import Equipment, RoomType
from tests.scheduling.strategies import DAY, bookings, rooms


@settings(max_examples=300, deadline=None)
@given(rooms(), bookings(count_max=4))
def test_impossible_persons_are_never_placed_on_an_empty_day(
    centre: list[PlanRoom], day: list[Booking]
) -> None:
    for booking in day:
        impossible = {item.key for item in impossible_persons(centre, booking)}
        placed = Planner(centre).add_booking(booking)
        placed_keys = {a.key for a in placed.assignments}
        assert not impossible & placed_keys


@settings(max_examples=300, deadline=None)
@given(rooms(), bookings(count_max=4))
def test_a_possible_person_alone_is_placed_on_an_empty_day(
    centre: list[PlanRoom], day: list[Booking]
) -> None:
    for booking in day:
        impossible = {item.key for item in impossible_persons(centre, booking)}
        for person in booking.persons:
            if (booking.id, person.id) in impossible:
                continue
            alone = replace(booking, persons=(person,))
            placement = Planner(centre).add_booking(alone)
            assert placement.complete, (person, placement.unassigned)


def _booking(person: Person, **fields: object) -> Booking:
    base = Booking(
        id="b1",
        station="s1",
        case_id="c1",
        case_type="theft",
        officers=2,
        expected_arrival=DAY,
        session_minutes=60,
        persons=(person,),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


WITNESS = Person("p1", PersonRole.WITNESS, False, Sex.MALE, DAY - 30, LegalBasis.VOLUNTARY)
GIRL_SUSPECT = Person(
    "p1",
    PersonRole.SUSPECT,
    True,
    Sex.FEMALE,
    DAY - 30,
    LegalBasis.CRIMINAL_SUMMONS,
    guardian_at=DAY + 60,
)


def test_an_inquiry_with_recording_the_centre_lacks_is_named_h4() -> None:
    centre = [PlanRoom("inq-1", RoomType.INQUIRY, 1, frozenset())]
    found = impossible_persons(centre, _booking(WITNESS, recording=True))
    assert [(f.key, f.rule) for f in found] == [(("b1", "p1"), "H4")]
    assert "recording" in found[0].reason
    assert impossible_persons(centre, _booking(WITNESS)) == []


def test_a_female_minor_suspect_without_female_staff_is_named_h7() -> None:
    centre = [
        PlanRoom("min-1", RoomType.MINORS, 1, frozenset({Equipment.RECORDING})),
        PlanRoom("wait-1", RoomType.WAITING, 4, frozenset()),
    ]
    assert [f.rule for f in impossible_persons(centre, _booking(GIRL_SUSPECT))] == ["H7"]
    assert impossible_persons(centre, _booking(GIRL_SUSPECT, female_staff=True)) == []


def test_a_suspect_waiting_for_the_guardian_needs_a_waiting_room() -> None:
    centre = [PlanRoom("min-1", RoomType.MINORS, 1, frozenset({Equipment.RECORDING}))]
    found = impossible_persons(centre, _booking(GIRL_SUSPECT, female_staff=True))
    assert [f.rule for f in found] == ["H2"]


def test_a_room_out_of_service_does_not_count() -> None:
    centre = [PlanRoom("inq-1", RoomType.INQUIRY, 1, frozenset(), available=False)]
    assert [f.rule for f in impossible_persons(centre, _booking(WITNESS))] == ["H3"]


@given(st.integers(1, 600))
def test_a_session_that_cannot_end_before_the_limit_is_named_h5(minutes: int) -> None:
    suspect = Person(
        "p1", PersonRole.SUSPECT, False, Sex.MALE, DAY - 8 * 60 + minutes, LegalBasis.ADMINISTRATIVE
    )
    centre = [PlanRoom("int-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING}))]
    # Ready 10 minutes after arrival, 60-minute session, 30 minutes of exit steps.
    fits = minutes >= 10 + 60 + 30
    found = impossible_persons(centre, _booking(suspect))
    assert [f.rule for f in found] == ([] if fits else ["H5"])
