"""The two day families: feasible days keep their bounds; overloaded days are the old days."""

from __future__ import annotations

import pytest

from scheduling.generator import PEAK_LOAD, DayFamily, generate, generate_day, peak_loads
from scheduling.possible import impossible_persons


@pytest.mark.parametrize(("persons", "rooms", "seed"), [(100, 16, 1), (320, 40, 2), (60, 8, 3)])
def test_a_feasible_day_keeps_its_bounds(persons: int, rooms: int, seed: int) -> None:
    day = generate(DayFamily.FEASIBLE, persons, rooms, seed)
    got = sum(len(b.persons) for b in day.bookings)
    assert 0 < got <= persons
    assert all(impossible_persons(day.rooms, booking) == [] for booking in day.bookings)
    peaks = peak_loads(day)
    assert all(load <= PEAK_LOAD for kind, load in peaks.items() if kind != "waiting")
    assert peaks.get("waiting", 0.0) <= 1.0
    assert len({b.id for b in day.bookings}) == len(day.bookings)


def test_a_feasible_day_is_the_same_for_the_same_seed() -> None:
    assert generate(DayFamily.FEASIBLE, 100, 16, 5) == generate(DayFamily.FEASIBLE, 100, 16, 5)


def test_an_overloaded_day_is_the_generators_day_and_over_the_bound() -> None:
    day = generate(DayFamily.OVERLOADED, 650, 64, 1)
    assert day == generate_day(650, 64, 1)
    assert sum(len(b.persons) for b in day.bookings) == 650
    assert max(peak_loads(day).values()) > PEAK_LOAD
