"""The shipped rules in a real Prometheus, scraping a real central and agent: alerts fire when
a process is SIGKILLed and resolve when it is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Deployment
from tests.monitoring.prometheus_server import CENTRAL_JOB, Prometheus, short_for_profile
from tests.support import wait_until

# Scrapes and evaluations every second, `for:` of 2 s: an alert fires within a few seconds.
ALERT_DEADLINE = 30


@pytest.fixture
def prometheus(tmp_path: Path, deployment: Deployment) -> Iterator[Prometheus]:
    deployment.start_central()
    agent = deployment.start_agent("a1", station="s1")
    root = tmp_path / "prometheus"
    config = short_for_profile(
        root,
        central=[f"127.0.0.1:{deployment.http_port}"],
        agents={"a1": f"127.0.0.1:{deployment.metrics_ports['a1']}"},
    )
    server = Prometheus(root, config)
    wait_until(
        lambda: len(server.query(f'up{{job="{CENTRAL_JOB}"}} == 1')) == 1,
        ALERT_DEADLINE,
        "prometheus to scrape the central",
    )
    assert agent.alive()
    yield server
    server.kill()
    assert not server.data.exists()


def test_central_down_fires_when_the_central_is_killed_and_resolves_when_it_is_back(
    prometheus: Prometheus, deployment: Deployment
) -> None:
    assert not prometheus.active("CentralDown")
    assert deployment.central is not None
    deployment.central.kill()
    wait_until(
        lambda: prometheus.firing("CentralDown", job=CENTRAL_JOB, severity="critical"),
        ALERT_DEADLINE,
        "CentralDown to fire",
    )
    deployment.start_central()
    wait_until(
        lambda: not prometheus.active("CentralDown"), ALERT_DEADLINE, "CentralDown to resolve"
    )


def test_agent_offline_fires_when_the_agent_is_killed_and_resolves_when_it_is_back(
    prometheus: Prometheus, deployment: Deployment
) -> None:
    # The centre's view of the agent, not a scrape of it: a van cannot be scraped.
    wait_until(
        lambda: len(prometheus.query('precinct_agent_up{agent="a1",station="s1"} == 1')) == 1,
        ALERT_DEADLINE,
        "the central to export a1 as up",
    )
    assert not prometheus.active("AgentOffline")
    deployment.agents["a1"].kill()
    wait_until(
        lambda: prometheus.firing("AgentOffline", agent="a1", station="s1", severity="critical"),
        ALERT_DEADLINE,
        "AgentOffline to fire for a1",
    )
    deployment.start_agent("a1", station="s1")
    wait_until(
        lambda: not prometheus.active("AgentOffline", agent="a1"),
        ALERT_DEADLINE,
        "AgentOffline to resolve",
    )
