"""``precinct bench wall`` run for real with tiny numbers: every part starts (broker, central,
simulated cabinet, agent, Chromium on the wall), every forced door is seen on the wall, and the
figures are consistent with each other (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.spread import Spread
from bench.wall import Result, report
from tests.support import ROOT, run_precinct


def test_a_tiny_wall_benchmark_reports_sane_figures() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "bench",
            "wall",
            "--alarms",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
        check=False,
    )
    # 1 is a missed latency target on a busy machine; a run that broke prints no figures.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["alarms"], result["seen"]) == (3, 3)
    assert all(f.startswith("reading -> visible p99") for f in result["failures"])
    spreads = ("reading_to_visible", "commit_to_visible", "reading_to_commit")
    for name in spreads:
        spread = result[name]
        assert 0 <= spread["p50"] <= spread["p99"] <= spread["max"] < 60_000, (name, spread)
    # Each alarm's delay from the reading is its delay from the commit plus the ingest's.
    for figure in ("p50", "p99"):
        assert result["reading_to_visible"][figure] >= result["commit_to_visible"][figure]
    table = report(Result(**{**result, **{name: Spread(**result[name]) for name in spreads}}))
    assert "alarms seen on the wall: 3 of 3" in table
    assert f"{result['commit_to_visible']['p99']:7.1f}" in table


def test_bad_numbers_are_refused() -> None:
    refused = run_precinct("bench", "wall", "--alarms", "0")
    assert refused.returncode == 2
    assert "--alarms" in refused.stderr
    assert run_precinct("bench", "wall", "--help").returncode == 0
