"""The shipped rules and scrape configuration pass Prometheus' own checks and unit tests, run
with the real promtool (Debian's prometheus package, installed by tests/run.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from monitoring.rule_files import RULE_TESTS_DIR, RULES_DIR, rule_files, with_for

PROMETHEUS_YML = RULES_DIR.parent / "prometheus.yml"


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: the test command installs prometheus (README)")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def test_promtool_checks_every_rule_file() -> None:
    files = [str(p) for p in rule_files(RULES_DIR)]
    assert files
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = [str(p) for p in rule_files(RULE_TESTS_DIR)]
    assert tests
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_shipped_scrape_configuration() -> None:
    result = promtool("check", "config", str(PROMETHEUS_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rule_files(RULES_DIR))} rule files found" in result.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: up ==\n"
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_the_short_profile_is_valid_and_fires_sooner(tmp_path: Path) -> None:
    """The test profile's copy passes promtool too, and a unit test at its time scale sees
    AgentOffline fire after 2 s, where the shipped rule waits 3 minutes."""
    source = RULES_DIR / "agents.yml"
    short = tmp_path / "agents.yml"
    short.write_text(with_for(source.read_text(encoding="utf-8"), "2s", source.name))
    assert promtool("check", "rules", str(short)).returncode == 0
    case = tmp_path / "case.yml"
    case.write_text(
        """
rule_files: [agents.yml]
evaluation_interval: 1s
tests:
  - interval: 1s
    input_series:
      - series: 'precinct_agent_up{agent="van-07",station="s1"}'
        values: "0x10"
    alert_rule_test:
      - eval_time: 1s
        alertname: AgentOffline
      - eval_time: 3s
        alertname: AgentOffline
        exp_alerts:
          - exp_labels: {severity: critical, agent: van-07, station: s1}
            exp_annotations:
              summary: "Agent van-07 (s1) is offline"
              description: >-
                The centre has marked agent van-07 of station s1 offline (its last will or an
                offline status) for more than 3 minutes. Its devices' readings and alarms wait
                in its outbox and do not reach the centre.
              runbook: docs/operations.md#agentoffline
"""
    )
    result = promtool("test", "rules", str(case), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
