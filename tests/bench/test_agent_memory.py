"""``precinct bench agent-memory`` end to end on a short window: a lean venv is built, both
agents publish, and the figures are sane."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT


def test_a_short_agent_memory_benchmark_reports_sane_figures() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "edge_agent.command_line", "bench", "agent-memory"),
            *("--seconds", "1", "--rate", "20", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    figures = {agent["install"]: agent for agent in json.loads(done.stdout)["agents"]}
    assert set(figures) == {"lean", "full"}
    for agent in figures.values():
        assert 10 < agent["startup_mib"] < 500
        assert agent["loaded_mib"] >= agent["startup_mib"] * 0.8
        assert agent["peak_mib"] >= agent["loaded_mib"]
        assert agent["published"] > 0
    assert figures["lean"]["site_packages_mib"] < figures["full"]["site_packages_mib"] / 2
