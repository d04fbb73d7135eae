"""The improver's soft rules S4, S6, S7 and S8: each one makes it prefer the plan that honours
the rule, and at weight 0 the improver leaves such a plan alone. Every improved plan passes
the checker and keeps everyone placed who was placed."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.improver import apply, improve, judged_cost
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    LegalBasis,
    Person,
    PersonKey,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.policy import Policy
from scheduling.rooms import Equipment, RoomType
from tests.scheduling.plans import lawful
from tests.scheduling.strategies import DAY, bookings, rooms

WINDOW = 24 * 60
RECORDED = frozenset({Equipment.RECORDING})
SESSION = 60
READY = DAY + 10  # a booked unit's entry steps take 10 minutes


def person(person_id: str, role: PersonRole, arrival: int) -> Person:
    basis = LegalBasis.CRIMINAL_SUMMONS if role is PersonRole.SUSPECT else LegalBasis.VOLUNTARY
    return Person(person_id, role, False, Sex.MALE, arrival - 30, basis)


def booking(
    booking_id: str,
    case_id: str,
    *persons: Person,
    station: str = "s1",
    arrival: int = DAY,
) -> Booking:
    return Booking(booking_id, station, case_id, "theft", 4, arrival, SESSION, tuple(persons))


def planned(
    rooms: list[PlanRoom],
    day: list[Booking],
    sessions: dict[PersonKey, tuple[str, int]],
    policy: Policy | None = None,
) -> Planner:
    """A planner with ``day`` booked and each person's session where ``sessions`` puts it."""
    planner = Planner(rooms, policy)
    for each in day:
        planner.add_booking(each)
    for key, (room, start) in sessions.items():
        planner.rebook(
            key, [Assignment(*key, AssignmentKind.SESSION, room, start, start + SESSION)]
        )
    assert lawful(planner)
    return planner


def improved(planner: Planner) -> Planner:
    result = improve(planner, DAY, 3.0, window_minutes=WINDOW)
    if result is not None:
        before = judged_cost(planner, DAY, WINDOW)
        apply(planner, result)
        assert lawful(planner)
        assert judged_cost(planner, DAY, WINDOW) < before
    return planner


def room_of(planner: Planner, key: PersonKey) -> str:
    session = planner.session_of(key)
    assert session is not None
    return session.room


def start_of(planner: Planner, key: PersonKey) -> int:
    session = planner.session_of(key)
    assert session is not None
    return session.start


# --- S4: co-suspects, and witnesses and suspects, not in adjacent rooms ---------------------

INTERROGATION = [
    PlanRoom("i1", RoomType.INTERROGATION, 1, RECORDED, adjacent_to=frozenset({"i2"})),
    PlanRoom("i2", RoomType.INTERROGATION, 1, RECORDED),
    PlanRoom("i3", RoomType.INTERROGATION, 1, RECORDED),
    PlanRoom("w1", RoomType.WAITING, 4, frozenset()),
    PlanRoom("w2", RoomType.WAITING, 4, frozenset()),
]
CO_SUSPECTS = [
    booking("b1", "c1", person("p1", PersonRole.SUSPECT, DAY)),
    booking("b2", "c1", person("p1", PersonRole.SUSPECT, DAY)),
]
SIDE_BY_SIDE = {("b1", "p1"): ("i1", READY), ("b2", "p1"): ("i2", READY)}


def test_co_suspects_questioned_at_once_move_out_of_adjacent_rooms() -> None:
    planner = improved(planned(INTERROGATION, CO_SUSPECTS, SIDE_BY_SIDE))
    rooms = {room_of(planner, ("b1", "p1")), room_of(planner, ("b2", "p1"))}
    assert rooms != {"i1", "i2"}
    # Nobody waits for it: the third room is free at the same time.
    assert start_of(planner, ("b1", "p1")) == start_of(planner, ("b2", "p1")) == READY


def test_adjacent_co_suspects_stay_put_at_weight_zero() -> None:
    planner = planned(INTERROGATION, CO_SUSPECTS, SIDE_BY_SIDE, Policy(weight_apart=0))
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


def test_a_witness_moves_away_from_the_suspect_of_the_case_next_door() -> None:
    rooms = [
        PlanRoom("i1", RoomType.INTERROGATION, 1, RECORDED, adjacent_to=frozenset({"q1"})),
        PlanRoom("q1", RoomType.INQUIRY, 1, frozenset()),
        PlanRoom("q2", RoomType.INQUIRY, 1, frozenset()),
        PlanRoom("w1", RoomType.WAITING, 4, frozenset()),
    ]
    day = [
        booking(
            "b1",
            "c1",
            person("s", PersonRole.SUSPECT, DAY),
            person("w", PersonRole.WITNESS, DAY),
        )
    ]
    sessions = {("b1", "s"): ("i1", READY), ("b1", "w"): ("q1", READY)}
    planner = improved(planned(rooms, day, sessions))
    assert room_of(planner, ("b1", "w")) == "q2"
    assert start_of(planner, ("b1", "w")) == READY
    unweighted = planned(rooms, day, sessions, Policy(weight_apart=0))
    assert improve(unweighted, DAY, 1.0, window_minutes=WINDOW) is None


def test_persons_of_different_cases_may_sit_next_door() -> None:
    other_cases = [replace(CO_SUSPECTS[0], case_id="c2"), CO_SUSPECTS[1]]
    planner = planned(INTERROGATION, other_cases, SIDE_BY_SIDE)
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


# --- S6: a spare room of each main type at peaks ---------------------------------------------

INQUIRY = [
    PlanRoom("q1", RoomType.INQUIRY, 1, frozenset()),
    PlanRoom("q2", RoomType.INQUIRY, 1, frozenset()),
]
TWO_WITNESSES = [
    booking("b1", "c1", person("w", PersonRole.WITNESS, DAY)),
    booking("b2", "c2", person("w", PersonRole.WITNESS, DAY)),
]
BOTH_ROOMS_BUSY = {("b1", "w"): ("q1", READY), ("b2", "w"): ("q2", READY)}


def test_a_heavy_spare_room_weight_staggers_sessions_to_keep_a_room_free() -> None:
    planner = improved(
        planned(INQUIRY, TWO_WITNESSES, BOTH_ROOMS_BUSY, Policy(weight_spare_room=100))
    )
    first, second = sorted([start_of(planner, ("b1", "w")), start_of(planner, ("b2", "w"))])
    assert second >= first + SESSION


def test_both_rooms_stay_busy_at_spare_room_weight_zero() -> None:
    planner = planned(INQUIRY, TWO_WITNESSES, BOTH_ROOMS_BUSY, Policy(weight_spare_room=0))
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


def test_the_default_weight_does_not_make_anyone_wait_an_hour_for_a_spare_room() -> None:
    planner = planned(INQUIRY, TWO_WITNESSES, BOTH_ROOMS_BUSY)
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


# --- S7: fairness between stations ------------------------------------------------------------

ONE_ROOM = [PlanRoom("q1", RoomType.INQUIRY, 1, frozenset())]
TWO_STATIONS = [
    booking(
        "a", "c1", person("w1", PersonRole.WITNESS, DAY), person("w2", PersonRole.WITNESS, DAY)
    ),
    booking("b", "c2", person("w", PersonRole.WITNESS, DAY), station="s2"),
]
# Station s1 first, both its persons, then s2: the same total wait as any other order, but s2
# waits two hours while s1 waits half an hour on average.
S2_LAST = {
    ("a", "w1"): ("q1", READY),
    ("a", "w2"): ("q1", READY + SESSION),
    ("b", "w"): ("q1", READY + 2 * SESSION),
}


def test_the_improver_spreads_waiting_between_stations() -> None:
    planner = improved(planned(ONE_ROOM, TWO_STATIONS, S2_LAST))
    s1 = [start_of(planner, ("a", "w1")) - READY, start_of(planner, ("a", "w2")) - READY]
    s2 = start_of(planner, ("b", "w")) - READY
    assert max(sum(s1) / 2, s2) == SESSION  # no station waits an hour on average
    assert sum(s1) + s2 == 3 * SESSION  # and nobody waits longer in total


def test_one_station_waits_last_at_fairness_weight_zero() -> None:
    planner = planned(ONE_ROOM, TWO_STATIONS, S2_LAST, Policy(weight_station_fairness=0))
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


# --- S8: a follow-up in the room of the session before ---------------------------------------

LATER = DAY + 300
FOLLOW_UP = [
    booking("b1", "c1", person("w", PersonRole.WITNESS, DAY)),
    booking("b2", "c1", person("w", PersonRole.WITNESS, LATER), arrival=LATER),
]
ELSEWHERE = {("b1", "w"): ("q1", READY), ("b2", "w"): ("q2", LATER + 10)}


def test_a_follow_up_moves_into_the_room_of_the_session_before() -> None:
    planner = planned(INQUIRY, FOLLOW_UP, ELSEWHERE)
    planner.start_session(("b1", "w"), DAY + 10)
    improved(planner)
    assert room_of(planner, ("b2", "w")) == "q1"
    assert start_of(planner, ("b2", "w")) == LATER + 10


def test_a_follow_up_stays_elsewhere_at_same_room_weight_zero() -> None:
    planner = planned(INQUIRY, FOLLOW_UP, ELSEWHERE, Policy(weight_same_room=0))
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


def test_another_person_of_the_case_is_not_a_follow_up() -> None:
    others = [
        FOLLOW_UP[0],
        booking("b2", "c1", person("x", PersonRole.WITNESS, LATER), arrival=LATER),
    ]
    planner = planned(
        INQUIRY, others, {("b1", "w"): ("q1", READY), ("b2", "x"): ("q2", LATER + 10)}
    )
    assert improve(planner, DAY, 1.0, window_minutes=WINDOW) is None


# --- all rules at once, on random days --------------------------------------------------------


@st.composite
def neighbouring(draw: st.DrawFn) -> list[PlanRoom]:
    found = draw(rooms())
    ids = [room.id for room in found]
    return [
        replace(room, adjacent_to=frozenset(draw(st.sets(st.sampled_from(ids), max_size=2))))
        for room in found
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    neighbouring(),
    bookings(count_max=8),
    st.sampled_from((Policy(), Policy(weight_spare_room=200, weight_station_fairness=20))),
)
def test_improved_plans_with_every_soft_rule_are_lawful_and_keep_everyone_placed(
    plan_rooms: list[PlanRoom], day: list[Booking], policy: Policy
) -> None:
    planner = Planner(plan_rooms, policy)
    for each in day:
        planner.add_booking(each)
    placed = set(planner.assignments)
    result = improve(planner, DAY, 0.2, window_minutes=WINDOW)
    if result is None:
        return
    assert result.cost_after < result.cost_before
    apply(planner, result)
    assert lawful(planner)
    assert placed <= {key for key in planner.assignments if planner.session_of(key) is not None}
