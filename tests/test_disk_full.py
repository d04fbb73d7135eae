"""A full disk on a real small tmpfs: the agent keeps running, the centre acknowledges nothing
it could not commit, and both recover by themselves when space returns."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from central.auth import Role
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.conftest import Deployment
from tests.support import (
    agent_last_seq,
    http_get,
    http_request,
    metric_value,
    stored_seqs,
    wait_until,
)
from tests.tmpfs import fill, free, small_tmpfs

RESERVE = 256 << 10
AGENT_DISK_ENV = {
    "PRECINCT_DISK_RESERVE_BYTES": str(RESERVE),
    "PRECINCT_DISK_CHECK_INTERVAL": "0.2",
    "PRECINCT_SYNTHETIC_EVENT_EVERY": "5",
}
RATE = 200.0


def _metric(system: Deployment, agent_id: str, name: str, labels: str = "") -> float:
    status, text = http_get(f"http://127.0.0.1:{system.metrics_ports[agent_id]}/metrics")
    return metric_value(text, name, labels) if status == 200 else -1.0


def _stored_by_class(db: Path, agent: str, after_seq: int, up_to_seq: int) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(
            conn.execute(
                "SELECT class, count(*) FROM events WHERE agent = ? AND seq > ? AND seq <= ? "
                "GROUP BY class",
                (agent, after_seq, up_to_seq),
            ).fetchall()
        )
    finally:
        conn.close()


def _agent_events(db: Path, agent: str, kind: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM events WHERE agent = ? AND device = 'agent' AND kind = ? "
                "AND class = 'event'",
                (agent, kind),
            ).fetchone()[0]
        )
    finally:
        conn.close()


def _wait_all_stored(system: Deployment, token: str, agent_id: str) -> int:
    """Every number the agent handed out reaches the centre, each once; returns the last."""
    last = agent_last_seq(system.agent_dir(agent_id))

    def complete() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/{agent_id}", token)
        return status == 200 and body["received"] == last and body["missing"] == 0

    wait_until(complete, 60, f"every reading of {agent_id} to be stored")
    assert stored_seqs(system.db, agent_id) == list(range(1, last + 1))
    return last


def test_agent_on_a_full_disk_keeps_running_refuses_telemetry_and_recovers(
    deployment: Deployment,
) -> None:
    refused = ("precinct_agent_dropped_total", 'class="telemetry",reason="disk_full"')
    published = ("precinct_agent_published_total", 'class="telemetry"')
    with small_tmpfs(deployment.agent_dir("a1"), "4m") as disk:
        deployment.start_central()
        token = deployment.token(Role.ADMIN)
        agent = deployment.start_agent("a1", synthetic=RATE, env=AGENT_DISK_ENV)
        wait_until(lambda: _metric(deployment, "a1", *published) >= RATE, 30, "readings to flow")

        fill(disk)
        filled = time.monotonic()
        wait_until(
            lambda: not agent.alive() or _metric(deployment, "a1", "precinct_agent_disk_full") == 1,
            30,
            "the agent to report its disk full",
        )
        assert agent.alive(), agent.output()[-2000:]
        first_full_seq = agent_last_seq(disk)
        # Several seconds of readings refused, and the agent still running (today it exited
        # within a second, every time it was started again).
        wait_until(lambda: _metric(deployment, "a1", *refused) >= 3 * RATE, 60, "refusals")
        assert agent.alive()
        wait_until(
            lambda: _agent_events(deployment.db, "a1", "disk_full") == 1,
            30,
            "the disk_full event to reach the centre",
        )
        refused_total = _metric(deployment, "a1", *refused)
        refused_events = _metric(deployment, "a1", "precinct_agent_events_refused_total")

        free(disk)
        freed = time.monotonic()
        wait_until(lambda: _metric(deployment, "a1", "precinct_agent_disk_full") == 0, 30, "room")
        recovered = time.monotonic() - freed
        last_full_seq = agent_last_seq(disk)
        refused_at_recovery = _metric(deployment, "a1", *refused)
        telemetry_at_recovery = _metric(deployment, "a1", *published)
        wait_until(
            lambda: _metric(deployment, "a1", *published) >= telemetry_at_recovery + 2 * RATE,
            30,
            "telemetry to be accepted again",
        )
        assert _metric(deployment, "a1", *refused) == refused_at_recovery
        assert (disk / "outbox.reserve").stat().st_size == RESERVE
        assert agent.alive()
        assert agent.stop() == 0

        # Every number handed out is stored once: events kept from the reserve reached the
        # centre, refused telemetry never got a number (so left no gap).
        last = _wait_all_stored(deployment, token, "a1")
        during = _stored_by_class(deployment.db, "a1", first_full_seq, last_full_seq)
        warnings = [line for line in agent.output().splitlines() if "disk full" in line]
        assert len(warnings) == 1, warnings
        assert "WARNING" in warnings[0]
        print(
            f"\nagent on a full disk: exits 0; a {freed - filled:.1f} s episode; "
            f"telemetry refused {refused_total:.0f} "
            f"({refused_at_recovery:.0f} at recovery); stored during the episode {during}; "
            f"event refusals {refused_events:.0f}; recovered {recovered:.2f} s after space "
            f"returned; {last} readings stored once"
        )


def test_events_past_the_reserve_are_refused_to_their_source_and_none_is_lost(
    deployment: Deployment,
) -> None:
    """Every synthetic reading comes with an event; the reserve runs out mid-episode."""
    env = {**AGENT_DISK_ENV, "PRECINCT_SYNTHETIC_EVENT_EVERY": "1"}
    with small_tmpfs(deployment.agent_dir("a1"), "4m") as disk:
        deployment.start_central()
        token = deployment.token(Role.ADMIN)
        agent = deployment.start_agent("a1", synthetic=RATE, env=env)
        wait_until(
            lambda: (
                _metric(deployment, "a1", "precinct_agent_published_total", 'class="event"') >= RATE
            ),
            30,
            "events to flow",
        )
        fill(disk)
        wait_until(
            lambda: (
                not agent.alive()
                or _metric(deployment, "a1", "precinct_agent_events_refused_total") >= RATE
            ),
            60,
            "events refused once the reserve is spent",
        )
        assert agent.alive(), agent.output()[-2000:]
        refusals = _metric(deployment, "a1", "precinct_agent_events_refused_total")
        free(disk)
        wait_until(lambda: _metric(deployment, "a1", "precinct_agent_disk_full") == 0, 30, "room")
        assert agent.stop() == 0
        _wait_all_stored(deployment, token, "a1")
    conn = sqlite3.connect(deployment.db)
    try:
        beats = [
            json.loads(body)["n"]
            for (body,) in conn.execute(
                "SELECT body FROM events WHERE agent = 'a1' AND kind = 'heartbeat' ORDER BY seq"
            )
        ]
    finally:
        conn.close()
    # Each heartbeat once and in order, none missing: the refused ones were handed again.
    assert beats == list(range(len(beats)))
    print(f"\nreserve spent: {refusals:.0f} event refusals, {len(beats)} heartbeats stored once")


def _received(system: Deployment, token: str, agent_id: str) -> int:
    status, body = http_get(f"{system.base}/api/v1/agents/{agent_id}", token)
    return int(body["received"]) if status == 200 else -1


def test_central_on_a_full_disk_acknowledges_nothing_and_resumes_losing_nothing(
    deployment: Deployment,
) -> None:
    agents = ("a1", "a2")
    with small_tmpfs(deployment.root / "store", "16m") as disk:
        deployment.db = disk / "central.sqlite3"
        deployment.start_central()
        admin = deployment.token(Role.ADMIN)
        centre = deployment.token(Role.CENTRE, name="duty")
        station = deployment.token(Role.STATION, "s1")
        for room in ROOMS:
            assert http_request("POST", f"{deployment.base}/api/v1/rooms", centre, room)[0] == 201
        for agent_id in agents:
            deployment.start_agent(agent_id, synthetic=RATE)
        wait_until(
            lambda: min(_received(deployment, admin, a) for a in agents) >= RATE, 30, "readings"
        )

        fill(disk)
        filled = time.monotonic()

        def store_full() -> bool:
            status, body = http_get(f"{deployment.base}/readyz")
            return status == 503 and body.get("reason") == "store disk full"

        wait_until(store_full, 30, "readyz to report the full store")
        _, body = http_get(f"{deployment.base}/readyz")
        assert body["checks"] == {"broker": True, "store": False}
        _, metrics = http_get(f"{deployment.base}/metrics")
        assert metric_value(metrics, "precinct_store_disk_full") == 1
        assert metric_value(metrics, "precinct_ingest_write_errors_total") >= 1
        held = {a: _received(deployment, admin, a) for a in agents}
        # The agents go on publishing; nothing more is committed, so nothing is acknowledged
        # and the readings wait in the central's broker session.
        wait_until(
            lambda: all(
                _metric(deployment, a, "precinct_agent_published_total", 'class="telemetry"')
                >= held[a] + 2 * RATE
                for a in agents
            ),
            30,
            "readings published while the store is full",
        )
        assert {a: _received(deployment, admin, a) for a in agents} == held
        # API writes answer 503, not 500.
        room = {"id": "I-9", "type": "interrogation", "capacity": 1, "equipment": ["recording"]}
        status, answer = http_request("POST", f"{deployment.base}/api/v1/rooms", centre, room)
        assert status == 503, answer
        arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        status, answer = http_request(
            "POST", f"{deployment.base}/api/v1/bookings", station, booking_body(arrival)
        )
        assert status == 503, answer
        assert http_get(f"{deployment.base}/healthz")[0] == 200

        free(disk)
        freed = time.monotonic()
        wait_until(lambda: http_get(f"{deployment.base}/readyz")[0] == 200, 30, "readyz again")
        resumed = time.monotonic() - freed
        _, metrics = http_get(f"{deployment.base}/metrics")
        assert metric_value(metrics, "precinct_store_disk_full") == 0
        write_errors = metric_value(metrics, "precinct_ingest_write_errors_total")
        for agent_id in agents:
            assert deployment.agents[agent_id].stop() == 0
        totals = {}
        for agent_id in agents:
            totals[agent_id] = _wait_all_stored(deployment, admin, agent_id)
        status, answer = http_request("POST", f"{deployment.base}/api/v1/rooms", centre, room)
        assert status == 201, answer
        assert deployment.central is not None
        lines = deployment.central.output().splitlines()
        warnings = [line for line in lines if "store commit failed" in line]
        assert len(warnings) == 1, warnings
        assert "disk full" in warnings[0]
        print(
            f"\ncentral on a full disk: a {freed - filled:.1f} s episode, received held at "
            f"{held}, {write_errors:.0f} commits retried, ready again {resumed:.2f} s after "
            f"space returned, stored once each: {totals}"
        )


def test_agent_started_on_a_full_disk_uses_its_reserve_or_waits_for_room(
    deployment: Deployment,
) -> None:
    with small_tmpfs(deployment.agent_dir("a1"), "4m") as disk:
        deployment.start_central()
        # A first run leaves its outbox and reserve behind.
        first = deployment.start_agent("a1", synthetic=RATE, env=AGENT_DISK_ENV)
        wait_until(lambda: _metric(deployment, "a1", "precinct_agent_connected") == 1, 30, "up")
        assert first.stop() == 0
        fill(disk)
        # Started again on the full disk: the reserve left behind makes room to open the outbox.
        second = deployment.start_agent("a1", synthetic=RATE, env=AGENT_DISK_ENV)
        wait_until(
            lambda: (
                not second.alive() or _metric(deployment, "a1", "precinct_agent_disk_full") == 1
            ),
            30,
            "the agent to run on its reserve",
        )
        assert second.alive(), second.output()[-2000:]
        assert second.stop() == 0

        # With no reserve and no room (the room the last run's log gave back taken too) it
        # cannot even open the outbox: it waits, warned once, instead of exiting.
        fill(disk)
        third = deployment.start_agent("a1", synthetic=RATE, env=AGENT_DISK_ENV)
        wait_until(lambda: "waiting for room" in third.output(), 30, "the agent to wait for room")
        assert third.alive()
        free(disk)
        wait_until(lambda: _metric(deployment, "a1", "precinct_agent_connected") == 1, 30, "up")
        assert _metric(deployment, "a1", "precinct_agent_disk_full") == 0
        assert third.alive()
        assert third.stop() == 0
        assert sum("disk full" in line for line in third.output().splitlines()) == 1
