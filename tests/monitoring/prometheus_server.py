"""A real Prometheus for a test: the shipped scrape configuration and rules, pointed at the
test's own central and agents, with the rules' short-`for:` profile and 1 s intervals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.rule_files import RULES_DIR, rule_files, with_for
from tests.support import free_port, http_get, wait_until

SHIPPED_CONFIG = RULES_DIR.parent / "prometheus.yml"
CENTRAL_JOB = "precinct-central"
AGENTS_JOB = "precinct-agents"
SHORT_FOR = "2s"


def short_for_profile(root: Path, central: Sequence[str], agents: Mapping[str, str]) -> Path:
    """Write the shipped configuration and rules under ``root``, pointed at the test's own
    processes, with 1 s intervals, every ``for:`` at ``SHORT_FOR`` and no Alertmanager; the
    configuration file's path.

    ``central`` lists the central targets (``host:port``); ``agents`` maps each agent id to its
    target, labelled with that id as the shipped file labels each of its agents."""
    rules = root / "rules"
    rules.mkdir(parents=True)
    for path in rule_files(RULES_DIR):
        (rules / path.name).write_text(
            with_for(path.read_text(encoding="utf-8"), SHORT_FOR, path.name), encoding="utf-8"
        )
    config = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting", None)
    config["rule_files"] = [str(rules / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs.keys() == {CENTRAL_JOB, AGENTS_JOB}, f"{SHIPPED_CONFIG}: jobs {sorted(jobs)}"
    for job in jobs.values():
        job["scrape_timeout"] = "1s"
    jobs[CENTRAL_JOB]["static_configs"] = [{"targets": list(central)}]
    jobs[AGENTS_JOB]["static_configs"] = _agent_targets(jobs[AGENTS_JOB]["static_configs"], agents)
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _agent_targets(
    shipped: list[dict[str, Any]], agents: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One static config per test agent, shaped as the shipped ones: its target labelled with
    its id as ``agent``. A shipped target without that label would leave the Agent dashboard's
    scraped row empty in production, so the profile refuses to paper over it."""
    unlabelled = [entry["targets"] for entry in shipped if "agent" not in entry.get("labels", {})]
    assert shipped, f"{SHIPPED_CONFIG}: no agent targets"
    assert not unlabelled, f"{SHIPPED_CONFIG}: agent targets without an agent label: {unlabelled}"
    return [{"targets": [address], "labels": {"agent": agent}} for agent, address in agents.items()]


class Prometheus:
    """One ``prometheus`` process on a free loopback port, its data in ``root``."""

    def __init__(self, root: Path, config: Path) -> None:
        if shutil.which("prometheus") is None:
            pytest.fail("prometheus is not installed: the test command installs it (README)")
        self.root = root
        self.port = free_port()
        self.data = root / "data"
        self._log = (root / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: self._get("/-/ready")[0] == 200, 30, "prometheus to be ready")
        except AssertionError:
            self.kill()  # no fixture owns it yet
            raise

    def _get(self, path: str) -> tuple[int, Any]:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log()[-2000:]}")
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    def log(self) -> str:
        return (self.root / "prometheus.log").read_text(errors="replace")

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now, as /api/v1/alerts gives them."""
        status, body = self._get("/api/v1/alerts")
        assert status == 200, body
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    def firing(self, alert: str, **labels: str) -> bool:
        return any(
            a["state"] == "firing"
            and a["labels"].get("alertname") == alert
            and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in self.alerts()
        )

    def active(self, alert: str, **labels: str) -> bool:
        """Pending or firing."""
        return any(
            a["labels"].get("alertname") == alert
            and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in self.alerts()
        )

    def response(self, expression: str) -> dict[str, Any]:
        """The API's whole answer to an instant query, an error included."""
        _, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
        assert isinstance(body, dict), body
        return body

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The series of an instant query that must succeed."""
        body = self.response(expression)
        assert body.get("status") == "success", json.dumps(body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def kill(self) -> None:
        """SIGKILL, then its data directory goes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)
