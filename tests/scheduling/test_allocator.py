"""The instant allocator never breaks a hard rule, as judged by the independent checker."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.checker import check_plan
from scheduling.generator import generate_day
from scheduling.model import (
    AssignmentKind,
    Booking,
    LegalBasis,
    Person,
    PersonRole,
    PlanRoom,
    Sex,
)
from scheduling.policy import Policy
from scheduling.rooms import Equipment, RoomType
from tests.scheduling.strategies import DAY, bookings, rooms

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def violations(planner: Planner, now: int | None = None) -> list[str]:
    return [
        f"{v.rule} {v.message}"
        for v in check_plan(
            planner.rooms,
            planner.bookings,
            planner.all_assignments(),
            planner.policy,
            planner.fixed,
            now,
        )
    ]


def every_person_answered(planner: Planner) -> None:
    for booking in planner.bookings.values():
        for person in booking.persons:
            key = (booking.id, person.id)
            placed = planner.session_of(key) is not None
            assert placed != (key in planner.unassigned), key


@PROPERTY
@given(rooms(), bookings())
def test_generated_days_break_no_hard_rule(plan_rooms: list[PlanRoom], day: list[Booking]) -> None:
    planner = Planner(plan_rooms)
    for booking in day:
        planner.add_booking(booking)
    assert violations(planner) == []
    every_person_answered(planner)


@PROPERTY
@given(rooms(), bookings(), st.data())
def test_replans_break_no_hard_rule(
    plan_rooms: list[PlanRoom], day: list[Booking], data: st.DataObject
) -> None:
    planner = Planner(plan_rooms)
    for planned in day:
        planner.add_booking(planned)
    now = DAY
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(
            st.sampled_from(("late", "broken", "start", "cancel", "replan", "overrun", "red"))
        )
        booking: Booking | None = (
            data.draw(st.sampled_from(sorted(planner.bookings.values(), key=lambda b: b.id)))
            if planner.bookings
            else None
        )
        now += data.draw(st.integers(0, 4 * 60))
        if (
            action == "late"
            and booking is not None
            and not any(key[0] == booking.id for key in planner.fixed)
        ):
            # A van is late only before anyone of it has been questioned.
            planner.replace_booking(
                replace(
                    booking,
                    expected_arrival=booking.expected_arrival + data.draw(st.integers(10, 240)),
                ),
                now,
            )
        elif action == "broken":
            room = data.draw(st.sampled_from(sorted(planner.rooms.values(), key=lambda r: r.id)))
            planner.set_room(replace(room, available=False), now)
        elif action == "start" and booking is not None:
            planner.start_session((booking.id, booking.persons[0].id))
        elif action == "overrun" and booking is not None:
            key = (booking.id, booking.persons[0].id)
            session = planner.session_of(key)
            if session is not None:
                planner.start_session(key)
                planner.extend_session(key, session.end + data.draw(st.integers(1, 180)), now)
        elif action == "red" and booking is not None:
            before_unplaced = set(planner.unassigned)
            planner.replan_first((booking.id, booking.persons[-1].id), now)
            assert set(planner.unassigned) - before_unplaced <= {
                (booking.id, booking.persons[-1].id)
            }
        elif action == "cancel" and booking is not None:
            planner.remove_booking(booking.id)
        elif booking is not None:
            planner.replan([(booking.id, p.id) for p in booking.persons], now)
        assert violations(planner, now) == []
    every_person_answered(planner)


def test_benchmark_days_break_no_hard_rule() -> None:
    for persons, count in ((100, 16), (320, 40), (650, 64)):
        day = generate_day(persons, count, seed=7)
        planner = Planner(day.rooms)
        for booking in day.bookings:
            planner.add_booking(booking)
        assert violations(planner) == []
        placed = sum(1 for key in planner.assignments if planner.session_of(key))
        assert placed >= persons * 0.7, (persons, placed)


def suspect(pid: str, group: str | None = "g1", sex: Sex = Sex.MALE) -> Person:
    return Person(
        pid,
        PersonRole.SUSPECT,
        False,
        sex,
        DAY - 60,
        LegalBasis.CRIMINAL_SUMMONS,
        co_suspect_group=group,
        session_minutes=60,
    )


def interrogation(name: str) -> PlanRoom:
    return PlanRoom(name, RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING}))


def test_co_suspects_wait_in_different_rooms_and_are_questioned_apart() -> None:
    waiting = [
        PlanRoom("w1", RoomType.WAITING, 4, frozenset()),
        PlanRoom("w2", RoomType.WAITING, 4, frozenset()),
    ]
    planner = Planner([interrogation("i1"), *waiting])
    booking = Booking(
        "b1",
        "s1",
        "case-1",
        "theft",
        6,
        DAY,
        60,
        (suspect("a"), suspect("b"), suspect("c", group=None)),
    )
    placement = planner.add_booking(booking)
    held = {a.person: a.room for a in placement.assignments if a.kind is AssignmentKind.WAITING}
    sessions = sorted(
        (a.start, a.person) for a in placement.assignments if a.kind is AssignmentKind.SESSION
    )
    assert len(sessions) == 3
    assert [start for start, _ in sessions] == [DAY + 10, DAY + 70, DAY + 130]
    waiting_co_suspects = [held[p] for _, p in sessions[1:] if p in ("a", "b")]
    if len(waiting_co_suspects) == 2:
        assert waiting_co_suspects[0] != waiting_co_suspects[1]
    assert violations(planner) == []


def test_a_third_co_suspect_with_two_waiting_rooms_taken_is_left_unassigned_with_h2() -> None:
    planner = Planner([interrogation("i1"), PlanRoom("w1", RoomType.WAITING, 4, frozenset())])
    booking = Booking(
        "b1", "s1", "case-1", "theft", 2, DAY, 60, (suspect("a"), suspect("b"), suspect("c"))
    )
    placement = planner.add_booking(booking)
    assert len([a for a in placement.assignments if a.kind is AssignmentKind.SESSION]) == 2
    assert [(u.person, u.rule) for u in placement.unassigned] == [("c", "H2")]
    assert violations(planner) == []


def test_the_legal_limit_is_kept_including_exit_processing() -> None:
    policy = Policy()
    planner = Planner([interrogation("i1")], policy)
    late = Person(
        "x",
        PersonRole.SUSPECT,
        False,
        Sex.MALE,
        DAY - 12 * 60 + 100,
        LegalBasis.CRIMINAL_SUMMONS,
        session_minutes=60,
    )
    placement = planner.add_booking(Booking("b1", "s1", "c", "theft", 2, DAY, 60, (late,)))
    # Ready at DAY+10, session to DAY+70, exit to DAY+100: exactly the limit.
    assert placement.complete
    later = replace(late, id="y", brought_in_at=late.brought_in_at - 1)
    refused = planner.add_booking(Booking("b2", "s1", "c2", "theft", 2, DAY, 60, (later,)))
    assert [u.rule for u in refused.unassigned] == ["H5"]


def test_started_sessions_do_not_move_when_the_room_breaks() -> None:
    planner = Planner([interrogation("i1"), interrogation("i2")])
    booking = Booking(
        "b1", "s1", "c", "theft", 4, DAY, 60, (suspect("a", None), suspect("b", None))
    )
    planner.add_booking(booking)
    first = planner.session_of(("b1", "a"))
    assert first is not None
    planner.start_session(("b1", "a"))
    planner.set_room(replace(planner.rooms[first.room], available=False), DAY + 20)
    assert planner.session_of(("b1", "a")) == first
    assert violations(planner) == []


def test_checker_catches_each_kind_of_broken_plan() -> None:
    """The checker is not the allocator's echo: hand it broken plans and it objects."""
    planner = Planner(
        [interrogation("i1"), interrogation("i2"), PlanRoom("q1", RoomType.INQUIRY, 1, frozenset())]
    )
    booking = Booking(
        "b1", "s1", "c", "homicide", 4, DAY, 60, (suspect("a", None), suspect("b", None))
    )
    planner.add_booking(booking)
    plan = planner.all_assignments()
    assert violations(planner) == []
    a, b = sorted(plan, key=lambda x: x.person)
    assert a.kind is b.kind is AssignmentKind.SESSION
    assert a.start == b.start  # two rooms, four officers: both at once

    def rules(changed: list) -> set[str]:  # type: ignore[type-arg]
        return {
            v.rule for v in check_plan(planner.rooms, planner.bookings, changed, planner.policy)
        }

    assert "H1" in rules([a, replace(b, room=a.room)])
    assert "H3" in rules([replace(a, room="q1"), b])
    assert "H4" in rules([replace(a, room="q1"), b])
    assert "H5" in rules([replace(a, start=DAY + 900, end=DAY + 960), b])
    assert "H8" in rules([replace(a, start=DAY - 30, end=DAY + 30), b])
    two_officers = {"b1": replace(booking, officers=2)}
    assert "H6" in {v.rule for v in check_plan(planner.rooms, two_officers, [a, b], planner.policy)}
    assert rules([a, b]) == set()


def test_an_overrunning_session_pushes_the_next_one_in_its_room() -> None:
    planner = Planner(
        [interrogation("i1"), interrogation("i2"), PlanRoom("w1", RoomType.WAITING, 4, frozenset())]
    )
    first = Booking("b1", "s1", "c1", "theft", 2, DAY, 60, (suspect("a", None),))
    second = Booking("b2", "s1", "c2", "theft", 2, DAY, 60, (suspect("b", None),))
    third = Booking("b3", "s1", "c3", "theft", 2, DAY + 60, 60, (suspect("c", None),))
    for booking in (first, second, third):
        planner.add_booking(booking)
    a = planner.session_of(("b1", "a"))
    c = planner.session_of(("b3", "c"))
    assert a is not None
    assert c is not None
    assert (c.room, c.start) == (a.room, a.end)
    planner.start_session(("b1", "a"))
    planner.extend_session(("b1", "a"), a.end + 30, DAY + 70)
    moved = planner.session_of(("b3", "c"))
    assert moved is not None
    assert moved.room != a.room or moved.start >= a.end + 30
    assert planner.session_of(("b2", "b")) is not None
    assert violations(planner, DAY + 70) == []


def test_a_red_clock_goes_ahead_of_sessions_that_can_wait() -> None:
    planner = Planner([interrogation("i1"), PlanRoom("w1", RoomType.WAITING, 4, frozenset())])
    relaxed = Booking(
        "b1",
        "s1",
        "c1",
        "theft",
        2,
        DAY,
        60,
        (replace(suspect("a", None), legal_basis=LegalBasis.CONTINUED_QUESTIONING),),
    )
    # First come, first served for the set-up: at booking time the insertion would already
    # put "u" first (S2, slack before the legal limit).
    planner.displace = False
    planner.add_booking(relaxed)
    urgent_person = replace(suspect("u", None), brought_in_at=DAY - 9 * 60)
    planner.add_booking(Booking("b2", "s1", "c2", "theft", 2, DAY, 60, (urgent_person,)))
    planner.displace = True
    urgent = planner.session_of(("b2", "u"))
    assert urgent is not None
    assert urgent.start == DAY + 70  # behind the booking made before it
    planner.replan_first(("b2", "u"), DAY)
    moved = planner.session_of(("b2", "u"))
    later = planner.session_of(("b1", "a"))
    assert moved is not None
    assert later is not None
    assert moved.start == DAY + 10
    assert later.start == DAY + 70
    assert violations(planner, DAY) == []
