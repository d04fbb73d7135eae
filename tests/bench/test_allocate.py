"""``precinct bench allocate`` at a tiny size: the table's invariants, from one run's JSON."""

from __future__ import annotations

import argparse
import json

import pytest

from bench.allocate import PLANS, run_allocate_bench
from bench.allocate_figures import impossible_keys
from bench.cli import _size
from scheduling.generator import DayFamily, generate


def test_a_tiny_run_keeps_the_tables_invariants(capsys: pytest.CaptureFixture[str]) -> None:
    seeds, size = (4,), (30, 8)  # seed 4 at 30/8: four persons impossible by the data
    run_allocate_bench(budget=0.3, seeds=seeds, reference_budget=0.5, sizes=[size], as_json=True)
    found = json.loads(capsys.readouterr().out)
    assert [(t["family"], t["persons"], t["rooms"]) for t in found["tables"]] == [
        ("feasible", 30, 8),
        ("overloaded", 30, 8),
    ]
    for table in found["tables"]:
        day = generate(DayFamily(table["family"]), *size, seeds[0])
        impossible = len(impossible_keys(day))
        persons = sum(len(b.persons) for b in day.bookings)
        assert table["days"] == [persons]
        plans = table["plans"]
        reference = plans["reference"]
        for name in PLANS:
            plan = plans[name]
            # The reference passes the checker like the live plans.
            assert plan["violations"] == 0, name
            # Impossible persons are counted apart, never as the planner's failures.
            assert plan["impossible"] == impossible
            assert plan["placed"] + plan["impossible"] + plan["unplaced"] == persons
            assert plan["legal_misses"] <= plan["unplaced"]
            # Ratios come from the same run's figures.
            assert plan["waiting_ratio"] == pytest.approx(
                plan["waiting_charged"] / reference["waiting_charged"]
            )
        assert reference["waiting_ratio"] == pytest.approx(1.0)
        latency = table["latency_ms"]
        bookings = len(day.bookings)
        for mode in ("waitlist_on", "waitlist_off"):
            answers = latency[mode]
            assert answers["accepted"]["count"] + answers["refused"]["count"] == bookings
        assert latency["allocator"]["count"] == bookings
        # With the waitlist off, a booking is accepted only when placed whole, as the
        # instant plan (booked in the same order) places it.
        assert latency["waitlist_on"]["accepted"]["count"] >= 1
        assert table["disruption"]["violations"] == 0
    feasible, overloaded = found["tables"]
    assert feasible["plans"]["reference"]["impossible"] == 0
    assert overloaded["plans"]["reference"]["impossible"] == 4
    assert all(v <= 0.8 for k, v in feasible["peak_load"][0].items() if k != "waiting")
    assert feasible["peak_load"][0].get("waiting", 0) <= 1.0


def test_sizes_are_persons_over_rooms() -> None:
    assert _size("650/64") == (650, 64)
    for text in ("650", "x/64", "650/2", "0/16", "650/64/1"):
        with pytest.raises(argparse.ArgumentTypeError):
            _size(text)
