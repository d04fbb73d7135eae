"""Every dashboard query run by a real Prometheus scraping a real central and agent."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring.dashboard_queries import dashboard_queries, promql_of
from monitoring.dashboards import DASHBOARDS_DIR
from tests.conftest import Deployment
from tests.support import free_port, http_get, port_open, wait_until

AGENT = "van-07"


class Prometheus:
    """Debian's Prometheus on a free loopback port, scraping every second."""

    def __init__(self, root: Path, central_port: int, agent_port: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = root / "prometheus.yml"
        # JSON is YAML: the scrape configuration the operations guide shows, the agent's
        # target labelled with its id.
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "precinct-central",
                            "static_configs": [{"targets": [f"127.0.0.1:{central_port}"]}],
                        },
                        {
                            "job_name": "precinct-agent",
                            "static_configs": [
                                {"targets": [f"127.0.0.1:{agent_port}"], "labels": {"agent": AGENT}}
                            ],
                        },
                    ],
                }
            ),
            encoding="utf-8",
        )
        self._log = (root / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        status, body = http_get(url)
        assert isinstance(body, dict), (status, body)
        return body

    def series(self, expr: str) -> list[dict[str, Any]]:
        body = self.query(expr)
        result = body.get("data", {}).get("result", []) if body.get("status") == "success" else []
        assert isinstance(result, list)
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def prometheus(tmp_path: Path, deployment: Deployment) -> Iterator[Prometheus]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: the test command installs it (see README)")
    deployment.start_central()
    deployment.start_agent(AGENT, synthetic=20)
    agent_port = deployment.metrics_ports[AGENT]
    wait_until(lambda: port_open(agent_port), 20, "the agent's /metrics")
    server = Prometheus(tmp_path / "prometheus", deployment.http_port, agent_port)
    try:
        ready = f"http://127.0.0.1:{server.port}/-/ready"
        wait_until(lambda: http_get(ready)[0] == 200, 30, "Prometheus to be ready")
        yield server
    finally:
        server.kill()


def as_grafana_sends(expr: str) -> str:
    """The query Grafana sends with ``agent`` set to the test's agent."""
    return promql_of(expr).replace("$agent", AGENT)


def test_every_panel_query_runs_and_the_agent_label_joins_both_sides(
    prometheus: Prometheus,
) -> None:
    wait_until(lambda: len(prometheus.series("up == 1")) == 2, 30, "both targets scraped and up")
    ingest = "sum by (class) (rate(precinct_ingest_messages_total[$__rate_interval]))"
    wait_until(
        lambda: any(float(s["value"][1]) > 0 for s in prometheus.series(promql_of(ingest))),
        30,
        "the ingest rate of the agent's synthetic readings",
    )
    queries = [
        q
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
        for q in dashboard_queries(json.loads(path.read_text(encoding="utf-8")))
        if q.where.startswith("panel")
    ]
    assert len(queries) > 30
    failed = {}
    for query in queries:
        body = prometheus.query(as_grafana_sends(query.expr))
        if body.get("status") != "success":
            failed[f"{query.dashboard}: {query.where}"] = body
    assert failed == {}
    # The Agent dashboard's scraped row finds the agent by its target label.
    depth = 'sum by (agent, class) (precinct_agent_outbox_depth{agent=~"$agent"})'
    found = prometheus.series(as_grafana_sends(depth))
    assert found
    assert {s["metric"]["agent"] for s in found} == {AGENT}
    connected = prometheus.series(
        as_grafana_sends('max by (agent) (precinct_agent_connected{agent=~"$agent"})')
    )
    assert [s["value"][1] for s in connected] == ["1"]
