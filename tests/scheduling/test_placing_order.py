"""The order in which one call's persons are placed: urgent first, then weighted shortest."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.model import Booking, LegalBasis, Person, PersonRole, PlanRoom, Sex
from scheduling.needs import Need
from scheduling.placing_order import URGENT_SLACK, placing_order
from scheduling.rooms import RoomType
from tests.scheduling.strategies import DAY, bookings, rooms

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def need(duration: int, latest_end: int | None = None) -> Need:
    return Need(RoomType.INQUIRY, frozenset(), False, DAY, DAY, duration, latest_end)


def person(
    pid: str, role: PersonRole, minutes: int, basis: LegalBasis, brought_in_at: int = DAY - 30
) -> Person:
    return Person(
        id=pid,
        role=role,
        minor=False,
        sex=Sex.MALE,
        brought_in_at=brought_in_at,
        legal_basis=basis,
        co_suspect_group="g1" if role is PersonRole.SUSPECT else None,
        session_minutes=minutes,
    )


def centre() -> list[PlanRoom]:
    return [
        PlanRoom("interrogation-1", RoomType.INTERROGATION, 1, frozenset(), True),
        PlanRoom("inquiry-1", RoomType.INQUIRY, 1, frozenset(), True),
        PlanRoom("waiting-1", RoomType.WAITING, 4, frozenset(), True),
    ]


def booking(*persons: Person) -> Booking:
    return Booking(
        id="b1",
        station="s1",
        case_id="c1",
        case_type="theft",
        officers=2,  # one session at a time (H6): the persons queue for the same officers
        expected_arrival=DAY,
        session_minutes=60,
        persons=persons,
    )


def test_a_short_witness_is_not_kept_waiting_behind_a_long_interrogation() -> None:
    planner = Planner(centre())
    planner.add_booking(
        booking(
            person("suspect", PersonRole.SUSPECT, 120, LegalBasis.CRIMINAL_SUMMONS),
            person("witness", PersonRole.WITNESS, 20, LegalBasis.VOLUNTARY),
        )
    )
    witness = planner.session_of(("b1", "witness"))
    suspect = planner.session_of(("b1", "suspect"))
    assert witness is not None
    assert suspect is not None
    ready = DAY + planner.policy.entry_minutes_booked
    # Witness first: 20 weighted minutes of waiting for the suspect instead of 120 for the
    # witness.
    assert witness.start == ready
    assert suspect.start == witness.end
    assert [a.kind.value for a in planner.assignments[("b1", "suspect")]] == ["waiting", "session"]


def test_a_person_near_the_legal_limit_goes_first_however_long() -> None:
    planner = Planner(centre())
    # Administrative questioning: 8 h from 到案, brought in 5 h 30 before arrival, so a
    # 90-minute session must start within the hour.
    tight = person("suspect", PersonRole.SUSPECT, 90, LegalBasis.ADMINISTRATIVE, DAY - 330)
    placement = planner.add_booking(
        booking(tight, person("witness", PersonRole.WITNESS, 20, LegalBasis.VOLUNTARY))
    )
    assert placement.complete
    suspect = planner.session_of(("b1", "suspect"))
    witness = planner.session_of(("b1", "witness"))
    assert suspect is not None
    assert witness is not None
    assert suspect.start < witness.start
    assert (
        check_plan(planner.rooms, planner.bookings, planner.all_assignments(), planner.policy) == []
    )


@given(
    st.lists(
        st.tuples(
            st.integers(15, 240), st.none() | st.integers(0, 600), st.sampled_from((1, 2, 3))
        ),
        min_size=2,
        max_size=12,
    )
)
def test_urgent_persons_come_first_by_limit_the_others_weighted_shortest(
    drawn: list[tuple[int, int | None, float]],
) -> None:
    items = [
        (need(duration, None if slack is None else DAY + duration + slack), weight)
        for duration, slack, weight in drawn
    ]
    ordered = sorted(items, key=lambda item: placing_order(*item))
    urgent = [
        n.latest_end is not None and n.latest_end - n.earliest_start - n.duration < URGENT_SLACK
        for n, _w in ordered
    ]
    assert urgent == sorted(urgent, reverse=True)
    first = [n.latest_end for n, _w in ordered[: sum(urgent)]]
    assert first == sorted(first)  # type: ignore[type-var]
    rest = [n.duration / w for n, w in ordered[sum(urgent) :]]
    assert rest == sorted(rest)


@PROPERTY
@given(rooms(), bookings())
def test_nobody_placed_is_lost_and_the_checker_passes(
    plan_rooms: list[PlanRoom], day: list[Booking]
) -> None:
    planner = Planner(plan_rooms)
    for item in day:
        placed_before = {key for key in planner.assignments if planner.session_of(key)}
        planner.add_booking(item)
        placed_after = {key for key in planner.assignments if planner.session_of(key)}
        assert placed_before <= placed_after
    assert (
        check_plan(planner.rooms, planner.bookings, planner.all_assignments(), planner.policy) == []
    )
