"""The tightest fit: which of the rooms free equally early a session takes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.allocator import Planner
from scheduling.model import Booking, LegalBasis, Person, PersonRole, PlanRoom, Sex
from scheduling.room_fit import OPEN_SIDE, idle_around
from scheduling.rooms import RoomType
from tests.scheduling.strategies import DAY

Busy = list[tuple[int, int, tuple[str, str]]]


@st.composite
def free_stretch(draw: st.DrawFn) -> tuple[Busy, int, int]:
    """A room's sessions (sorted by start, possibly overlapping like started ones) and an
    interval that overlaps none of them."""
    intervals = draw(st.lists(st.tuples(st.integers(0, 900), st.integers(1, 180)), max_size=20))
    busy = sorted((s, s + length, ("b", str(i))) for i, (s, length) in enumerate(intervals))
    start = draw(st.integers(0, 1000))
    end = start + draw(st.integers(1, 200))
    return [b for b in busy if b[1] <= start or b[0] >= end], start, end


@settings(max_examples=2000, deadline=None)
@given(free_stretch())
def test_idle_time_is_the_nearest_gap_on_each_side(drawn: tuple[Busy, int, int]) -> None:
    busy, start, end = drawn
    before = min([start - e for _s, e, _k in busy if e <= start] + [OPEN_SIDE])
    after = min([s - end for s, _e, _k in busy if s >= end] + [OPEN_SIDE])
    assert idle_around(busy, start, end) == min(before, OPEN_SIDE) + min(after, OPEN_SIDE)


def test_a_room_in_use_is_preferred_to_an_empty_one() -> None:
    assert idle_around([(0, 60, ("b", "p"))], 60, 120) < idle_around([], 60, 120)


def _witness_booking(bid: str, arrival: int, minutes: int) -> Booking:
    return Booking(
        id=bid,
        station="s1",
        case_id=f"case-{bid}",
        case_type="theft",
        officers=2,
        expected_arrival=arrival,
        session_minutes=minutes,
        persons=(
            Person(
                id="p1",
                role=PersonRole.WITNESS,
                minor=False,
                sex=Sex.FEMALE,
                brought_in_at=arrival - 30,
                legal_basis=LegalBasis.VOLUNTARY,
            ),
        ),
    )


def test_a_session_fills_the_gap_that_fits_it_and_keeps_the_empty_room_whole() -> None:
    planner = Planner(
        [
            PlanRoom("inquiry-a", RoomType.INQUIRY, 1, frozenset(), True),
            PlanRoom("inquiry-b", RoomType.INQUIRY, 1, frozenset(), True),
        ]
    )
    entry = planner.policy.entry_minutes_booked
    # Booked first, for later in the morning: room a is busy from 09:00.
    planner.add_booking(_witness_booking("late", DAY + 9 * 60 - entry, 60))
    late = planner.session_of(("late", "p1"))
    assert late is not None
    first_room = late.room
    # An hour's session ready at 08:00 fits exactly before it in that room...
    planner.add_booking(_witness_booking("hour", DAY + 8 * 60 - entry, 60))
    hour = planner.session_of(("hour", "p1"))
    assert hour is not None
    assert (hour.room, hour.start) == (first_room, DAY + 8 * 60)
    # ...so that a three-hour session ready at 08:00 still starts at once in the other room.
    planner.add_booking(_witness_booking("long", DAY + 8 * 60 - entry, 180))
    long = planner.session_of(("long", "p1"))
    assert long is not None
    assert long.start == DAY + 8 * 60
    assert long.room != first_room
