"""Every dashboard query run by a real Prometheus, configured from the shipped scrape file,
scraping a real central and agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring.dashboard_queries import dashboard_queries, promql_of
from monitoring.dashboards import DASHBOARDS_DIR
from tests.conftest import Deployment
from tests.monitoring.prometheus_server import AGENTS_JOB, Prometheus, short_for_profile
from tests.support import port_open, wait_until

AGENT = "van-07"


@pytest.fixture
def prometheus(tmp_path: Path, deployment: Deployment) -> Iterator[Prometheus]:
    deployment.start_central()
    deployment.start_agent(AGENT, synthetic=20)
    agent_port = deployment.metrics_ports[AGENT]
    wait_until(lambda: port_open(agent_port), 20, "the agent's /metrics")
    root = tmp_path / "prometheus"
    config = short_for_profile(
        root,
        central=[f"127.0.0.1:{deployment.http_port}"],
        agents={AGENT: f"127.0.0.1:{agent_port}"},
    )
    server = Prometheus(root, config)
    try:
        yield server
    finally:
        server.kill()


def as_grafana_sends(expr: str) -> str:
    """The query Grafana sends with ``agent`` set to the test's agent."""
    return promql_of(expr).replace("$agent", AGENT)


def test_every_panel_query_runs_and_the_agent_label_joins_both_sides(
    prometheus: Prometheus,
) -> None:
    wait_until(lambda: len(prometheus.query("up == 1")) == 2, 30, "both targets scraped and up")
    # The shipped file's agent label, kept on the test's own target.
    (scraped,) = prometheus.query(f'up{{job="{AGENTS_JOB}"}}')
    assert scraped["metric"]["agent"] == AGENT
    ingest = "sum by (class) (rate(precinct_ingest_messages_total[$__rate_interval]))"
    wait_until(
        lambda: any(float(s["value"][1]) > 0 for s in prometheus.query(promql_of(ingest))),
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
        body = prometheus.response(as_grafana_sends(query.expr))
        if body.get("status") != "success":
            failed[f"{query.dashboard}: {query.where}"] = body
    assert failed == {}
    # The Agent dashboard's scraped row finds the agent by its target label.
    depth = 'sum by (agent, class) (precinct_agent_outbox_depth{agent=~"$agent"})'
    found = prometheus.query(as_grafana_sends(depth))
    assert found
    assert {s["metric"]["agent"] for s in found} == {AGENT}
    connected = prometheus.query(
        as_grafana_sends('max by (agent) (precinct_agent_connected{agent=~"$agent"})')
    )
    assert [s["value"][1] for s in connected] == ["1"]
