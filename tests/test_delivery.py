"""End to end over a real Mosquitto: agents -> broker -> central, with processes killed for real."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from central.auth import Role
from tests.conftest import Deployment
from tests.support import (
    Child,
    agent_last_seq,
    child_pids,
    free_port,
    http_get,
    metric_value,
    stored_seqs,
    wait_until,
)

RATE = 300.0


def _assert_all_stored_once(system: Deployment, agent_id: str, token: str) -> int:
    """Every seq the agent handed out is stored exactly once, and the API agrees."""
    last = agent_last_seq(system.agent_dir(agent_id))
    assert last > 0

    def complete() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/{agent_id}", token)
        return status == 200 and body["received"] == last and body["last_seq"] == last

    wait_until(complete, 30, f"{agent_id} to deliver {last} messages")
    seqs = stored_seqs(system.db, agent_id)
    assert seqs == list(range(1, last + 1))
    status, body = http_get(f"{system.base}/api/v1/agents/{agent_id}", token)
    assert status == 200
    assert body["gaps"] == []
    assert body["missing"] == 0
    return last


def _wait_for_readings(system: Deployment, agent_id: str, more_than: int, count: int) -> int:
    """Wait until the agent's outbox has handed out ``count`` numbers past ``more_than``: the
    stream runs for real, however loaded the machine; returns the agent's last seq then."""

    def taken() -> bool:
        if not (system.agent_dir(agent_id) / "outbox.sqlite3").exists():
            return False
        try:
            return agent_last_seq(system.agent_dir(agent_id)) >= more_than + count
        except sqlite3.OperationalError:
            return False  # the agent is still creating its outbox

    wait_until(
        taken,
        60,
        f"{agent_id} to take {count} more readings",
    )
    return agent_last_seq(system.agent_dir(agent_id))


def _wait_for_stored(system: Deployment, agent_id: str, token: str, at_least: int) -> None:
    def stored() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/{agent_id}", token)
        return status == 200 and body["received"] >= at_least

    wait_until(stored, 60, f"the centre to store {at_least} readings of {agent_id}")


def test_agents_to_central_every_seq_stored_once(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    for agent_id in ("a1", "a2"):
        deployment.start_agent(agent_id, synthetic=RATE)
    for agent_id in ("a1", "a2"):
        _wait_for_readings(deployment, agent_id, 0, int(RATE))
    for child in deployment.agents.values():
        assert child.stop() == 0
    total = sum(_assert_all_stored_once(deployment, a, token) for a in ("a1", "a2"))
    assert total >= 2 * RATE  # the synthetic sources really ran for seconds
    _, metrics = http_get(f"{deployment.base}/metrics")
    ingested = metric_value(
        metrics, "precinct_ingest_messages_total", 'class="telemetry"'
    ) + metric_value(metrics, "precinct_ingest_messages_total", 'class="event"')
    assert ingested == total
    # A clean stop says goodbye: the agents are offline, for the stated reason.
    status, agents = http_get(f"{deployment.base}/api/v1/agents", token)
    assert status == 200
    assert {(a["id"], a["online"], a["status_reason"]) for a in agents} == {
        ("a1", False, "stopped"),
        ("a2", False, "stopped"),
    }


def test_central_killed_mid_stream_loses_and_duplicates_nothing(deployment: Deployment) -> None:
    central = deployment.start_central()
    token = deployment.token(Role.ADMIN)
    deployment.start_agent("a1", synthetic=RATE)
    _wait_for_stored(deployment, "a1", token, int(RATE / 2))
    helpers = child_pids(central.process.pid)
    assert helpers  # the ingest store process (and multiprocessing's resource tracker)
    central.kill()
    # Its helper processes notice the closed pipes and go too: no orphan holds the store.
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in helpers),
        10,
        "the central's helper processes to exit",
    )
    # The agent keeps publishing; the broker queues for the central's session.
    at_kill = _wait_for_readings(deployment, "a1", agent_last_seq(deployment.agent_dir("a1")), 200)
    deployment.start_central()
    _wait_for_stored(deployment, "a1", token, at_kill)
    assert deployment.agents["a1"].stop() == 0
    _assert_all_stored_once(deployment, "a1", token)


def test_broker_restart_mid_stream_loses_nothing(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    deployment.start_agent("a1", synthetic=RATE)
    _wait_for_stored(deployment, "a1", token, int(RATE))
    deployment.broker.stop()
    # Readings keep entering the outbox while the broker is away.
    _wait_for_readings(deployment, "a1", agent_last_seq(deployment.agent_dir("a1")), 200)
    deployment.broker.start()
    wait_until(lambda: http_get(f"{deployment.base}/readyz")[0] == 200, 20, "central to reconnect")
    published_after_restart = agent_last_seq(deployment.agent_dir("a1"))

    def caught_up() -> bool:
        _, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
        return (
            isinstance(body, dict)
            and body["missing"] == 0
            and body["last_seq"] > published_after_restart
        )

    # Whatever the broker lost across the restart is asked for again while the agent is up.
    wait_until(caught_up, 30, "the central to hold everything published so far")
    assert deployment.agents["a1"].stop() == 0
    last = _assert_all_stored_once(deployment, "a1", token)
    assert last >= int(RATE) + 200  # the stream ran across the restart
    status, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
    assert status == 200
    assert body["connection"] >= 2  # it really reconnected


def test_agent_killed_with_unsent_outbox_delivers_everything_once(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    agent = deployment.start_agent("a1", synthetic=RATE)
    _wait_for_stored(deployment, "a1", token, 100)
    deployment.broker.stop()
    _wait_for_readings(deployment, "a1", agent_last_seq(deployment.agent_dir("a1")), 200)
    agent.kill()  # SIGKILL with about a second of readings unsent
    unsent_at_kill = agent_last_seq(deployment.agent_dir("a1"))
    deployment.broker.start()
    wait_until(lambda: http_get(f"{deployment.base}/readyz")[0] == 200, 20, "central to reconnect")
    status, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
    assert status == 200
    assert body["received"] < unsent_at_kill  # there really was a backlog
    restarted = deployment.start_agent("a1")  # no source: only the backlog
    _assert_all_stored_once(deployment, "a1", token)
    assert agent_last_seq(deployment.agent_dir("a1")) == unsent_at_kill
    assert restarted.stop() == 0
    status, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
    assert body["session"] == 2  # the session counter survived the kill


def test_agent_killed_is_marked_offline_by_its_will(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    agent = deployment.start_agent("a1", synthetic=10)

    def state() -> tuple[bool, str | None]:
        status, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
        return (bool(body["online"]), body["status_reason"]) if status == 200 else (False, "absent")

    wait_until(lambda: state() == (True, None), 10, "a1 online")
    agent.kill()
    wait_until(lambda: state() == (False, "lost"), 10, "a1 marked offline by its will")
    _, metrics = http_get(f"{deployment.base}/metrics")
    assert metric_value(metrics, "precinct_agents_online") == 0


def test_two_ingest_processes_share_the_load_and_store_each_message_once(
    deployment: Deployment,
) -> None:
    first = deployment.start_central()
    second_port = free_port()
    second = Child(
        [
            "central",
            "--broker",
            deployment.broker.url,
            "--db",
            str(deployment.db),
            "--listen",
            f"127.0.0.1:{second_port}",
            "--client-id",
            "precinct-central-2",
        ],
        deployment.root / "central-2.log",
    )
    try:
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{second_port}/readyz")[0] == 200,
            20,
            "the second ingest process",
        )
        token = deployment.token(Role.ADMIN)
        for agent_id in ("a1", "a2", "a3"):
            deployment.start_agent(agent_id, synthetic=RATE)
        for agent_id in ("a1", "a2", "a3"):
            _wait_for_readings(deployment, agent_id, 0, int(RATE))
        for child in deployment.agents.values():
            assert child.stop() == 0
        for agent_id in ("a1", "a2", "a3"):
            _assert_all_stored_once(deployment, agent_id, token)
        counts = []
        for base in (deployment.base, f"http://127.0.0.1:{second_port}"):
            _, metrics = http_get(f"{base}/metrics")
            counts.append(
                metric_value(metrics, "precinct_ingest_messages_total", 'class="telemetry"')
            )
        assert all(count > 0 for count in counts)  # both workers took a share
        assert first.alive()
    finally:
        second.kill()


def test_agent_outbox_bound_drops_oldest_telemetry_and_counts_it(deployment: Deployment) -> None:
    dead_broker = f"mqtt://127.0.0.1:{free_port()}"
    deployment.start_agent(
        "a1", synthetic=500, broker_url=dead_broker, env={"PRECINCT_OUTBOX_MAX": "100"}
    )
    port = deployment.metrics_ports["a1"]

    def dropping() -> bool:
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        return (
            status == 200
            and metric_value(
                text,
                "precinct_agent_dropped_total",
                'class="telemetry",reason="outbox_full_oldest"',
            )
            > 100
            and metric_value(text, "precinct_agent_outbox_depth", 'class="event"') >= 2
        )

    wait_until(dropping, 15, "telemetry drops to be counted")
    _, text = http_get(f"http://127.0.0.1:{port}/metrics")
    assert metric_value(text, "precinct_agent_connected") == 0
    assert metric_value(text, "precinct_agent_reconnects_total") >= 1
    events = metric_value(text, "precinct_agent_outbox_depth", 'class="event"')
    telemetry = metric_value(text, "precinct_agent_outbox_depth", 'class="telemetry"')
    assert events >= 2  # the synthetic heartbeat events are kept
    assert events + telemetry <= 100


def test_an_outbox_full_of_events_refuses_telemetry_and_raises_an_alarm(
    deployment: Deployment,
) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    broker_url = deployment.broker.url
    deployment.broker.stop()
    # Every reading also an event: the outbox fills with events only.
    agent = deployment.start_agent(
        "a1",
        synthetic=200,
        broker_url=broker_url,
        env={"PRECINCT_OUTBOX_MAX": "50", "PRECINCT_SYNTHETIC_EVENT_EVERY": "1"},
    )
    port = deployment.metrics_ports["a1"]

    def full() -> bool:
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        return (
            status == 200
            and metric_value(text, "precinct_agent_outbox_full") == 1
            and (
                metric_value(
                    text,
                    "precinct_agent_dropped_total",
                    'class="telemetry",reason="outbox_full_refused"',
                )
                > 0
            )
        )

    wait_until(full, 15, "the outbox-full alarm")
    deployment.broker.start()
    wait_until(lambda: http_get(f"{deployment.base}/readyz")[0] == 200, 20, "central")

    def alarm_arrived() -> bool:
        status, page = http_get(f"{deployment.base}/api/v1/events?kind=outbox_full", token)
        return status == 200 and len(page["items"]) >= 1

    wait_until(alarm_arrived, 20, "the alarm event at the centre")
    assert agent.stop() == 0
    # Every event the agent numbered reaches the centre; only telemetry was thinned.
    box = sqlite3.connect(deployment.agent_dir("a1") / "outbox.sqlite3")
    try:
        event_seqs = [r[0] for r in box.execute("SELECT seq FROM outbox WHERE cls = 0")]
    finally:
        box.close()

    def stored_events() -> list[int]:
        conn = sqlite3.connect(deployment.db)
        try:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT seq FROM events WHERE agent = 'a1' AND class = 'event' ORDER BY seq"
                )
            ]
        finally:
            conn.close()

    wait_until(lambda: stored_events() == event_seqs, 30, "every event at the centre")
