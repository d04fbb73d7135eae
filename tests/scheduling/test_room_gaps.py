"""The allocator's search for a free stretch in a room agrees with the plain definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.allocator import _first_gap

Busy = list[tuple[int, int, tuple[str, str]]]


@st.composite
def busy_lists(draw: st.DrawFn) -> Busy:
    intervals = draw(
        st.lists(st.tuples(st.integers(0, 600), st.integers(1, 180)), max_size=25),
    )
    return sorted(
        (start, start + length, ("b", str(i))) for i, (start, length) in enumerate(intervals)
    )


def free(busy: Busy, start: int, length: int) -> bool:
    return all(end <= start or begin >= start + length for begin, end, _key in busy)


@settings(max_examples=2000, deadline=None)
@given(busy_lists(), st.integers(0, 700), st.integers(1, 200))
def test_the_first_gap_is_free_and_none_earlier_is(busy: Busy, start: int, length: int) -> None:
    found = _first_gap(busy, start, length)
    assert found >= start
    assert free(busy, found, length)
    # A free stretch starts at ``start`` or where a busy interval ends: none of those before.
    candidates = {start, *(end for _b, end, _k in busy if start < end < found)}
    assert not any(free(busy, moment, length) for moment in candidates if moment < found)
