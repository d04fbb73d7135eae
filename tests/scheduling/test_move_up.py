"""After a session ends early, later sessions that can start earlier move up: never later, never
a started one, never against a hard rule (the independent checker), and only for a real gain."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scheduling.allocator import MOVE_UP_GAIN, Planner
from scheduling.model import Assignment, Booking, PersonKey, PlanRoom
from scheduling.rooms import RoomType
from tests.scheduling.strategies import DAY, bookings, rooms
from tests.scheduling.test_allocator import interrogation, suspect, violations

# A suspect who waits for a room is held in a waiting room (H2).
WAITING = PlanRoom("w1", RoomType.WAITING, 4, frozenset())
PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sessions(planner: Planner) -> dict[PersonKey, Assignment]:
    found = {}
    for key in planner.assignments:
        session = planner.session_of(key)
        if session is not None:
            found[key] = session
    return found


@PROPERTY
@given(rooms(), bookings(), st.data())
def test_moving_up_breaks_no_rule_and_moves_no_one_later(
    plan_rooms: list[PlanRoom], day: list[Booking], data: st.DataObject
) -> None:
    planner = Planner(plan_rooms)
    for booking in day:
        planner.add_booking(booking)
    planned = sorted(sessions(planner).values(), key=lambda a: (a.start, a.key))
    assume(planned)
    ended = data.draw(st.sampled_from(planned))
    at = data.draw(st.integers(ended.start + 1, ended.end))
    # Whatever was due by the end may have started too; the rest has not.
    due = [a.key for a in planned if a.start <= at and a.key != ended.key]
    started = data.draw(st.lists(st.sampled_from(due), unique=True)) if due else []
    for key in (ended.key, *started):
        planner.start_session(key)
    planner.end_session(ended.key, at)
    assert violations(planner, at) == []
    before = dict(planner.assignments)
    before_sessions = sessions(planner)
    unassigned = dict(planner.unassigned)
    fixed = set(planner.fixed)
    skip = set(data.draw(st.lists(st.sampled_from(sorted(before_sessions)), max_size=2)))

    placement = planner.move_up(ended.room, at, skip)

    assert violations(planner, at) == []
    assert planner.unassigned == unassigned
    assert planner.fixed == fixed
    after = sessions(planner)
    assert set(after) == set(before_sessions)
    for key, old in before_sessions.items():
        new = after[key]
        if key in fixed or key in skip or old.start <= at:
            assert planner.assignments[key] == before[key], key
        elif new != old:
            assert new.start <= old.start - MOVE_UP_GAIN, (key, old, new)
        else:
            assert planner.assignments[key] == before[key], key
    moved = {a.key for a in placement.assignments}
    assert moved == {key for key in before if planner.assignments[key] != before[key]}


def test_the_next_session_in_the_room_moves_up_to_the_early_end() -> None:
    planner = Planner([interrogation("i1"), WAITING])
    first = Booking("b1", "s1", "c1", "theft", 2, DAY, 60, (suspect("a", None),))
    second = Booking("b2", "s1", "c2", "theft", 2, DAY, 60, (suspect("b", None),))
    planner.add_booking(first)
    planner.add_booking(second)
    a = planner.session_of(("b1", "a"))
    b = planner.session_of(("b2", "b"))
    assert a is not None
    assert b is not None
    assert b.start == a.end
    planner.start_session(("b1", "a"))
    planner.end_session(("b1", "a"), a.end - 30)
    placement = planner.move_up(a.room, a.end - 30)
    moved = planner.session_of(("b2", "b"))
    assert moved is not None
    assert (moved.room, moved.start, moved.end) == (a.room, a.end - 30, b.end - 30)
    assert [x.key for x in placement.assignments] == [("b2", "b")]
    assert violations(planner, a.end - 30) == []


def test_a_small_gain_or_a_skipped_person_does_not_move() -> None:
    planner = Planner([interrogation("i1"), WAITING])
    planner.add_booking(Booking("b1", "s1", "c1", "theft", 2, DAY, 60, (suspect("a", None),)))
    planner.add_booking(Booking("b2", "s1", "c2", "theft", 2, DAY, 60, (suspect("b", None),)))
    a = planner.session_of(("b1", "a"))
    b = planner.session_of(("b2", "b"))
    assert a is not None
    assert b is not None
    planner.start_session(("b1", "a"))
    planner.end_session(("b1", "a"), a.end - (MOVE_UP_GAIN - 1))
    assert planner.move_up(a.room, a.end - (MOVE_UP_GAIN - 1)).assignments == []
    assert planner.session_of(("b2", "b")) == b
    planner.end_session(("b1", "a"), a.end - 40)
    assert planner.move_up(a.room, a.end - 40, skip={("b2", "b")}).assignments == []
    assert planner.session_of(("b2", "b")) == b


def test_a_unit_not_yet_arrived_moves_up_only_to_its_arrival() -> None:
    planner = Planner([interrogation("i1"), WAITING])
    long = replace(suspect("a", None), session_minutes=120)
    planner.add_booking(Booking("b1", "s1", "c1", "theft", 2, DAY, 120, (long,)))
    # Arrives an hour later: planned after the first session, which runs two hours.
    later = Booking("b2", "s1", "c2", "theft", 2, DAY + 60, 60, (suspect("b", None),))
    planner.add_booking(later)
    a = planner.session_of(("b1", "a"))
    b = planner.session_of(("b2", "b"))
    assert a is not None
    assert b is not None
    planner.start_session(("b1", "a"))
    planner.end_session(("b1", "a"), a.start + 20)
    planner.move_up(a.room, a.start + 20)
    moved = planner.session_of(("b2", "b"))
    assert moved is not None
    # Not before the unit is there and through the entry steps (H8).
    assert moved.start == DAY + 60 + planner.policy.entry_minutes(False)
    assert moved.start < b.start
    assert violations(planner, a.start + 20) == []
