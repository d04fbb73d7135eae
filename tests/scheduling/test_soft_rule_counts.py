"""Each soft rule's model terms agree with its count on a plan: the improver judges a result by
the count, so a model that counted otherwise would search for the wrong plan."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from scheduling import apart_rooms, same_room, spare_rooms, station_fairness
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
from scheduling.rooms import RoomType

NOW = 1_000_000 + 17  # not on a clock hour: the first hour is cut


def minimum(model: cp_model.CpModel, objective: cp_model.LinearExprT) -> int:
    model.minimize(objective)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    return round(solver.objective_value)


@st.composite
def room_days(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """Rooms and each room's busy stretches, back to back or apart, never overlapping."""
    rooms = draw(st.integers(1, 4))
    busy = []
    for _room in range(rooms):
        at = NOW + draw(st.integers(-90, 120))
        for _ in range(draw(st.integers(0, 4))):
            length = draw(st.integers(1, 150))
            busy.append((at, at + length))
            at += length + draw(st.integers(0, 90))
    return rooms, busy


@settings(max_examples=150, deadline=None)
@given(room_days())
def test_spare_room_hours_in_the_model_are_the_hours_counted(
    day: tuple[int, list[tuple[int, int]]],
) -> None:
    rooms, busy = day
    end = NOW + 8 * 60
    model = cp_model.CpModel()
    occupied = [model.new_fixed_size_interval_var(a - NOW, b - a, "busy") for a, b in busy]
    spares = spare_rooms.add_terms(model, occupied, rooms, NOW, end)
    full = spare_rooms.full_blocks(busy, rooms, NOW, end)
    if rooms < 2:
        assert spares == []
        assert full == 0
        return
    assert minimum(model, sum(1 - spare for spare in spares)) == full


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from("abcd"), st.lists(st.integers(0, 500), max_size=5)))
def test_the_worst_station_mean_in_the_model_is_the_one_counted(
    waits: dict[str, list[int]],
) -> None:
    model = cp_model.CpModel()
    worst = station_fairness.add_term(model, waits, 500)
    counted = station_fairness.worst_mean(waits)
    if worst is None:
        assert counted == 0
        return
    assert minimum(model, worst) == counted


def witness_or_suspect(role: PersonRole) -> Person:
    return Person("p", role, False, Sex.MALE, 0, LegalBasis.VOLUNTARY)


@st.composite
def neighbours_and_sessions(
    draw: st.DrawFn,
) -> tuple[dict[str, Booking], list[PlanRoom], list[Assignment]]:
    ids = [f"r{n}" for n in range(4)]
    rooms = [
        PlanRoom(
            room_id,
            RoomType.INQUIRY,
            1,
            frozenset(),
            adjacent_to=frozenset(draw(st.sets(st.sampled_from(ids), max_size=2))),
        )
        for room_id in ids
    ]
    bookings = {}
    sessions = []
    for number in range(draw(st.integers(0, 5))):
        role = draw(st.sampled_from(list(PersonRole)))
        booking = Booking(
            f"b{number}", "s1", draw(st.sampled_from(("c1", "c2"))), "theft", 2, 0, 60,
            (witness_or_suspect(role),),
        )  # fmt: skip
        bookings[booking.id] = booking
        start = NOW + draw(st.integers(0, 180))
        sessions.append(
            Assignment(
                booking.id,
                "p",
                AssignmentKind.SESSION,
                draw(st.sampled_from(ids)),
                start,
                start + draw(st.integers(10, 90)),
            )
        )
    return bookings, rooms, sessions


@settings(max_examples=150, deadline=None)
@given(neighbours_and_sessions(), st.data())
def test_persons_kept_apart_in_the_model_are_the_pairs_counted(
    case: tuple[dict[str, Booking], list[PlanRoom], list[Assignment]], data: st.DataObject
) -> None:
    bookings, rooms, sessions = case
    neighbours = apart_rooms.adjacency({room.id: room for room in rooms})
    moving_count = data.draw(st.integers(0, len(sessions)))
    moving, staying = sessions[:moving_count], sessions[moving_count:]
    model = cp_model.CpModel()
    placed = {}
    for session in moving:
        start = model.new_int_var(0, 1000, "start")
        model.add(start == session.start - NOW)
        literals = {room.id: model.new_bool_var("in") for room in rooms}
        for room_id, literal in literals.items():
            model.add(literal == int(room_id == session.room))
        placed[session.key] = apart_rooms.Placed(start, session.end - session.start, literals)
    penalties = apart_rooms.add_terms(model, bookings, neighbours, placed, staying, NOW)
    counted = apart_rooms.violations(bookings, neighbours, sessions, {s.key for s in moving})
    assert minimum(model, sum(penalties)) == counted


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(("r1", "r2", None)),
    st.sampled_from(("r1", "r2", None)),
    st.booleans(),
)
def test_a_follow_up_in_another_room_in_the_model_is_the_one_counted(
    before: str | None, after: str | None, after_moves: bool
) -> None:
    model = cp_model.CpModel()

    def literals(room: str | None) -> tuple[dict[str, cp_model.IntVar], cp_model.IntVar]:
        found = {r: model.new_constant(int(r == room)) for r in ("r1", "r2")}
        return found, model.new_constant(int(room is not None))

    mine, mine_placed = literals(before)
    if after_moves:
        theirs, theirs_placed = literals(after)
        differ = same_room.add_term(model, mine, theirs, mine_placed, theirs_placed)
    elif after is None:
        return  # a session that stays has a room
    else:
        differ = same_room.add_term(model, mine, after, mine_placed, 1)
    room_of = {key: room for key, room in ((("b1", "p"), before), (("b2", "p"), after)) if room}
    counted = same_room.moved_rooms([(("b1", "p"), ("b2", "p"))], room_of, {("b1", "p")})
    assert minimum(model, differ) == counted
