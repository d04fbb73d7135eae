"""The test profile of the shipped Prometheus configuration: the test's own targets, the
shipped jobs and the agent label, every ``for:`` short."""

from __future__ import annotations

from pathlib import Path

import yaml

from monitoring.rule_files import RULES_DIR, load_alert_rules
from tests.monitoring.prometheus_server import (
    AGENTS_JOB,
    CENTRAL_JOB,
    SHIPPED_CONFIG,
    SHORT_FOR,
    short_for_profile,
)


def test_the_profile_points_the_shipped_jobs_at_the_test_and_labels_each_agent(
    tmp_path: Path,
) -> None:
    config_path = short_for_profile(
        tmp_path, central=["127.0.0.1:1"], agents={"a1": "127.0.0.1:2", "a2": "127.0.0.1:3"}
    )
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == [job["job_name"] for job in shipped["scrape_configs"]]
    assert jobs[CENTRAL_JOB]["static_configs"] == [{"targets": ["127.0.0.1:1"]}]
    assert jobs[AGENTS_JOB]["static_configs"] == [
        {"targets": ["127.0.0.1:2"], "labels": {"agent": "a1"}},
        {"targets": ["127.0.0.1:3"], "labels": {"agent": "a2"}},
    ]
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    assert "alerting" not in config
    assert config["global"]["external_labels"] == shipped["global"]["external_labels"]
    rules = load_alert_rules(tmp_path / "rules")
    assert len(rules) == len(load_alert_rules(RULES_DIR))
    assert {rule.for_ for rule in rules} <= {SHORT_FOR, ""}
