"""A real Prometheus for a test: the shipped scrape configuration and rules, pointed at the
test's own central and agents, with the rules' short-`for:` profile and 1 s intervals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
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


def short_for_profile(root: Path, targets: dict[str, list[str]]) -> Path:
    """Write the shipped configuration and rules under ``root``, with each job's targets
    replaced by ``targets[job]``, 1 s intervals, every ``for:`` at ``SHORT_FOR`` and no
    Alertmanager; the configuration file's path."""
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
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = "1s"
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


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

    def query(self, expression: str) -> list[dict[str, Any]]:
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
        assert status == 200, json.dumps(body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def kill(self) -> None:
        """SIGKILL, then its data directory goes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)
