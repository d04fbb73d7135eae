"""Custody clock levels at their thresholds, and as a property: never lower as time passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.custody import ClockThresholds, Level, LevelChange, clock, level_changes

T = ClockThresholds()
LIMIT = 12 * 60  # criminal summons


@pytest.mark.parametrize(
    ("elapsed", "projected", "level"),
    [
        (0, None, Level.GREEN),
        (359, None, Level.GREEN),
        (360, None, Level.YELLOW),  # 50 %
        (539, None, Level.YELLOW),
        (540, None, Level.ORANGE),  # 75 %
        (100, LIMIT - 119, Level.ORANGE),  # projected end within 2 h of the limit
        (100, LIMIT - 120, Level.GREEN),
        (659, None, Level.ORANGE),
        (660, None, Level.RED),  # limit - 1 h
        (100, LIMIT + 1, Level.RED),  # projected past the limit
        (100, LIMIT, Level.ORANGE),
        (LIMIT, None, Level.BLACK),
    ],
)
def test_levels_at_the_thresholds(elapsed: int, projected: int | None, level: Level) -> None:
    assert clock(elapsed, 0, LIMIT, projected, T).level is level


def test_thresholds_are_configuration() -> None:
    strict = ClockThresholds(yellow_fraction=0.25, orange_fraction=0.5)
    assert clock(180, 0, LIMIT, None, strict).level is Level.YELLOW
    assert clock(180, 0, LIMIT, None, T).level is Level.GREEN
    with pytest.raises(ValueError, match="yellow_fraction"):
        ClockThresholds(yellow_fraction=0.8, orange_fraction=0.5)


@given(
    st.integers(0, 3000),
    st.integers(0, 3000),
    st.integers(60, 48 * 60),
    st.none() | st.integers(0, 4000),
)
def test_a_clock_never_goes_back(first: int, later: int, limit: int, projected: int | None) -> None:
    a = clock(first, 0, limit, projected, T)
    b = clock(first + later, 0, limit, projected, T)
    assert b.level.rank >= a.level.rank
    assert b.remaining_minutes == a.remaining_minutes - later


def test_level_changes_are_what_differs_from_the_stored_level() -> None:
    stored = {("b1", "a"): "green", ("b1", "b"): "yellow"}
    current = [
        (("b1", "a"), Level.YELLOW),  # changed
        (("b1", "b"), Level.YELLOW),  # as stored
        (("b2", "c"), Level.GREEN),  # a clock starting green: stored, news to no one
        (("b2", "d"), Level.ORANGE),  # a clock starting past green: news
    ]
    assert level_changes(current, stored) == [
        LevelChange(("b1", "a"), Level.YELLOW, news=True),
        LevelChange(("b2", "c"), Level.GREEN, news=False),
        LevelChange(("b2", "d"), Level.ORANGE, news=True),
    ]
