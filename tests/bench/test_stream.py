"""``precinct bench stream`` run for real with tiny numbers: every part starts, every client
gets every event, and the figures are consistent with each other (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.spread import Spread
from bench.stream import Result, report
from tests.support import ROOT, run_precinct


def test_a_tiny_stream_benchmark_reports_sane_figures() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "bench",
            "stream",
            "--clients",
            "3",
            "--events",
            "5",
            "--vans",
            "2",
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
    assert (result["clients"], result["vans"], result["events"]) == (3, 2, 5)
    assert result["deliveries"] == result["expected"] == 15
    assert all(f.startswith("reading -> delivered p99") for f in result["failures"])
    spreads = (
        "reading_to_delivered",
        "commit_to_delivered",
        "commit_to_first",
        "commit_to_all",
        "reading_to_commit",
    )
    for name in spreads:
        spread = result[name]
        assert 0 <= spread["p50"] <= spread["p99"] <= spread["max"] < 60_000, (name, spread)
    # Each delivery's delay from the reading is its delay from the commit plus the ingest's.
    for figure in ("p50", "p99"):
        assert result["reading_to_delivered"][figure] >= result["commit_to_delivered"][figure]
    assert result["commit_to_first"]["p50"] <= result["commit_to_all"]["p50"]
    assert result["events_per_s"] > 0
    assert result["deliveries_per_s"] >= result["events_per_s"]
    assert result["rss_before_kib"] > 10 * 1024  # a central with the web stack loaded
    assert result["rss_end_kib"] > 0
    assert isinstance(result["kib_per_client"], float)
    assert result["cores"]["central"] >= 0
    assert "clients (this process)" in result["cores"]
    # The table prints the same figures.
    table = report(Result(**{**result, **{name: Spread(**result[name]) for name in spreads}}))
    assert "deliveries: 15 of 15" in table
    assert f"{result['kib_per_client']:.1f} KiB per client" in table
    assert f"{result['commit_to_delivered']['p99']:7.1f}" in table


def test_bad_numbers_are_refused() -> None:
    refused = run_precinct("bench", "stream", "--clients", "0")
    assert refused.returncode == 2
    assert "--clients" in refused.stderr
    assert run_precinct("bench", "stream", "--help").returncode == 0
