"""Every agent's and device's health, and the broker's, on the central's /metrics: a real
Mosquitto (publishing $SYS every second), a real central, real agents killed with SIGKILL, a
simulated cabinet on a pty, and a relay that cuts one agent's link to the broker."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, metric_value, wait_until
from tests.tcp_relay import TcpRelay
from tests.test_devices_end_to_end import CabinetSimulator, _agent_config

FILES = "station-1-files"
CABINET = f'agent="{FILES}",class="cabinet",device="cab-1"'


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


class CentralMetrics:
    def __init__(self, deployment: Deployment) -> None:
        self._url = f"{deployment.base}/metrics"

    def scrape(self) -> dict[str, float]:
        status, text = http_get(self._url)
        assert status == 200, text
        return _samples(text)

    def value(self, name: str, labels: str = "") -> float | None:
        return self.scrape().get(f"{name}{{{labels}}}" if labels else name)

    def wait_for(
        self, name: str, labels: str, check: Callable[[float], bool], what: str, timeout: float = 30
    ) -> float:
        def holds() -> bool:
            value = self.value(name, labels)
            return value is not None and check(value)

        wait_until(holds, timeout, what)
        value = self.value(name, labels)
        assert value is not None
        return value


@pytest.fixture
def cabinet_board() -> Iterator[CabinetSimulator]:
    board = CabinetSimulator()
    yield board
    board.close()


def test_agents_devices_and_the_broker_come_and_go_on_the_centres_metrics(
    deployment: Deployment, cabinet_board: CabinetSimulator, tmp_path: Path
) -> None:
    deployment.start_central()
    metrics = CentralMetrics(deployment)
    config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", cabinet_board.port)
    deployment.start_agent(FILES, extra=["--config", str(config)])
    van = deployment.start_agent("van-07", station="s2", synthetic=20)

    for agent, station in ((FILES, "s1"), ("van-07", "s2")):
        metrics.wait_for(
            "precinct_agent_up", f'agent="{agent}",station="{station}"', lambda v: v == 1, agent
        )
        # The birth carried the agent's health.
        metrics.wait_for(
            "precinct_agent_reported_outbox_depth", f'agent="{agent}"', lambda v: v >= 0, agent
        )
    assert metrics.value("precinct_agent_up", 'agent="never-seen",station="s1"') is None
    now = time.time()
    taken = metrics.value("precinct_agent_health_timestamp_seconds", 'agent="van-07"')
    assert taken is not None
    assert now - 60 < taken <= now
    assert metrics.value("precinct_agent_reported_disk_full", 'agent="van-07"') == 0
    # No client certificate: no expiry to report.
    assert (
        metrics.value(
            "precinct_agent_reported_certificate_expiry_timestamp_seconds", 'agent="van-07"'
        )
        is None
    )
    metrics.wait_for("precinct_device_up", CABINET, lambda v: v == 1, "the cabinet up")
    metrics.wait_for(
        "precinct_agent_missing_messages", 'agent="van-07"', lambda v: v == 0, "no gaps"
    )
    seen = metrics.wait_for(
        "precinct_agent_last_seen_timestamp_seconds", 'agent="van-07"', lambda v: v > 0, "seen"
    )
    assert abs(seen - time.time()) < 30

    # The broker's own figures from $SYS: the central and two agents connected.
    metrics.wait_for(
        "precinct_broker_clients_connected", "", lambda v: v == 3, "three broker clients"
    )
    assert (metrics.value("precinct_broker_uptime_seconds") or 0) >= 1
    assert (metrics.value("precinct_broker_heap_bytes") or 0) > 0
    assert metrics.value("precinct_broker_messages_stored") is not None
    assert metrics.value("precinct_broker_publish_dropped_total") == 0
    first_update = metrics.wait_for(
        "precinct_broker_sys_last_update_timestamp_seconds", "", lambda v: v > 0, "$SYS"
    )
    metrics.wait_for(
        "precinct_broker_sys_last_update_timestamp_seconds",
        "",
        lambda v: v > first_update,
        "the next $SYS update",
        timeout=10,
    )

    # Set at start-up: an unset gauge (0) would look like a full disk.
    assert (metrics.value("precinct_store_disk_free_bytes") or 0) > 0

    # Well-named, every family with its samples (Debian's promtool, installed by tests/run.sh).
    _, text = http_get(f"{deployment.base}/metrics")
    lint = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")

    # The board goes away: the agent says so, and the centre shows the device down.
    cabinet_board.close()
    metrics.wait_for("precinct_device_up", CABINET, lambda v: v == 0, "the cabinet down")

    # SIGKILL: no goodbye; the broker publishes the agent's will.
    van.kill()
    metrics.wait_for(
        "precinct_agent_up", 'agent="van-07",station="s2"', lambda v: v == 0, "van-07 offline"
    )
    assert metrics.value("precinct_agent_up", f'agent="{FILES}",station="s1"') == 1
    metrics.wait_for("precinct_broker_clients_connected", "", lambda v: v == 2, "two clients")
    # Its last report stays, with the time it was taken.
    assert metrics.value("precinct_agent_reported_outbox_depth", 'agent="van-07"') is not None
    assert metrics.value("precinct_agent_health_timestamp_seconds", 'agent="van-07"') is not None

    # The API shows the same report.
    token = deployment.token(Role.OPS)
    status, agents = http_get(f"{deployment.base}/api/v1/agents", token)
    assert status == 200
    health = {a["id"]: a["health"] for a in agents}
    assert health["van-07"]["disk_full"] is False
    assert health["van-07"]["certificate_expires"] is None
    assert health["van-07"]["outbox_depth"] >= 0
    assert health[FILES]["time"].endswith("Z")


def test_an_outbox_growing_while_the_link_is_down_is_reported_once_it_is_back(
    deployment: Deployment,
) -> None:
    deployment.start_central()
    metrics = CentralMetrics(deployment)
    relay = TcpRelay(deployment.broker.port)
    try:
        # A slow backlog lane, so that the backlog is still there in the next reports.
        deployment.start_agent(
            "van-07",
            synthetic=40,
            broker_url=relay.url,
            env={"PRECINCT_HEALTH_INTERVAL": "0.3", "PRECINCT_BACKLOG_RATE": "40"},
        )
        up = 'agent="van-07",station="s1"'
        metrics.wait_for("precinct_agent_up", up, lambda v: v == 1, "van-07 online")
        metrics.wait_for(
            "precinct_agent_reported_outbox_depth", 'agent="van-07"', lambda v: v < 40, "drained"
        )

        relay.cut()
        metrics.wait_for("precinct_agent_up", up, lambda v: v == 0, "van-07 offline (its will)")
        cut_at = time.time()
        frozen = metrics.value("precinct_agent_health_timestamp_seconds", 'agent="van-07"')
        agent_metrics = f"http://127.0.0.1:{deployment.metrics_ports['van-07']}/metrics"

        def backlog() -> float:
            _, text = http_get(agent_metrics)
            return sum(
                metric_value(text, "precinct_agent_outbox_depth", f'class="{cls}"')
                for cls in ("event", "telemetry")
            )

        wait_until(lambda: backlog() >= 150, 30, "a backlog of 150 in van-07's outbox")
        # Unreachable, the van reports nothing: the centre keeps its last report and its time.
        assert metrics.value("precinct_agent_health_timestamp_seconds", 'agent="van-07"') == frozen
        waiting = backlog()

        relay.heal()
        reported = metrics.wait_for(
            "precinct_agent_reported_outbox_depth",
            'agent="van-07"',
            lambda v: v >= waiting,
            f"the backlog of {waiting} reported",
        )
        assert reported >= 150
        oldest = metrics.value(
            "precinct_agent_reported_outbox_oldest_age_seconds", 'agent="van-07"'
        )
        assert oldest is not None
        assert oldest >= (time.time() - cut_at) - 10
        assert metrics.value("precinct_agent_up", up) == 1
        # Then it drains, report by report.
        metrics.wait_for(
            "precinct_agent_reported_outbox_depth",
            'agent="van-07"',
            lambda v: v < 40,
            "the backlog drained",
            timeout=60,
        )
        assert (metrics.value("precinct_agent_missing_messages", 'agent="van-07"') or 0) >= 0
    finally:
        relay.close()


def test_hostile_health_reports_are_counted_as_rejected(deployment: Deployment) -> None:
    deployment.start_central()
    metrics = CentralMetrics(deployment)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile")
    client.connect("127.0.0.1", deployment.broker.port)
    client.loop_start()
    try:
        for payload in (b"\xff", b"{}", b'{"v": 1, "agent": "a9", "session": 1}', b"x" * 70_000):
            client.publish("precinct/v1/a9/health", payload, qos=1).wait_for_publish(5)
        client.publish("precinct/v1/a9/health", b'{"v":1,"agent":"a8"}', qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()

    def counted() -> bool:
        scraped = metrics.scrape()
        return (
            scraped.get('precinct_ingest_rejected_total{reason="bad_json"}') == 1
            and scraped.get('precinct_ingest_rejected_total{reason="bad_version"}') == 1
            and scraped.get('precinct_ingest_rejected_total{reason="bad_field"}') == 1
            and scraped.get('precinct_ingest_rejected_total{reason="oversized"}') == 1
            and scraped.get('precinct_ingest_rejected_total{reason="agent_mismatch"}') == 1
        )

    wait_until(counted, 20, "five hostile reports counted")
    # Nothing of them became an agent's health; the central still answers.
    assert metrics.value("precinct_agent_reported_outbox_depth", 'agent="a9"') is None
    assert http_get(f"{deployment.base}/readyz")[0] == 200


def test_with_broker_sys_off_the_broker_metrics_stay_absent(deployment: Deployment) -> None:
    # First on: the central's persistent session at the broker holds the $SYS subscription.
    central = deployment.start_central()
    metrics = CentralMetrics(deployment)
    metrics.wait_for("precinct_broker_uptime_seconds", "", lambda v: v >= 0, "$SYS at the centre")
    central.kill()
    deployment.start_central(env={"PRECINCT_BROKER_SYS": "false"})
    uptimes: list[bytes] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sys-watcher")
    watcher.on_message = lambda _c, _u, message: uptimes.append(bytes(message.payload))
    watcher.connect("127.0.0.1", deployment.broker.port)
    watcher.subscribe("$SYS/broker/uptime")
    watcher.loop_start()
    try:
        wait_until(lambda: len(set(uptimes)) >= 2, 15, "two $SYS updates from the broker")
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    # Neither exported nor taken for an agent's message (which would be quarantined).
    scraped = metrics.scrape()
    assert [k for k in scraped if k.startswith("precinct_broker_")] == []
    assert not any(k.startswith("precinct_ingest_rejected_total") for k in scraped)
    assert http_get(f"{deployment.base}/readyz")[0] == 200
