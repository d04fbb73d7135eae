"""Alarms through the whole system: a forced cabinet door -> agent -> broker -> central -> alarm."""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, http_post, metric_value, wait_until
from tests.test_devices_end_to_end import (
    CabinetSimulator,
    _agent_config,
    _device,
    cabinet_board,  # noqa: F401  (the fixture)
)

AGENT = "station-1-files"
SLOTS = (1, 2, 3, 4)


def _alarms(deployment: Deployment, token: str, query: str = "") -> list[dict[str, Any]]:
    status, page = http_get(f"{deployment.base}/api/v1/alarms{query}", token)
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


def _latencies(db: Path) -> list[float]:
    """Reading time of each forced door to the alarm's commit, in seconds."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT raised_at, derived_at FROM alarms WHERE kind = 'door_forced'"
        ).fetchall()
    finally:
        conn.close()
    return [
        (datetime.fromisoformat(derived) - datetime.fromisoformat(raised)).total_seconds()
        for raised, derived in rows
    ]


def test_a_forced_door_is_one_alarm_acknowledged_and_kept_once_across_a_central_kill(
    deployment: Deployment,
    cabinet_board: CabinetSimulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN)
    centre = deployment.token(Role.CENTRE, name="duty officer")
    own = deployment.token(Role.STATION, "s1")
    other = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", cabinet_board.port)
    deployment.start_agent(AGENT, extra=["--config", str(config)])
    wait_until(
        lambda: bool((_device(deployment, admin, "cab-1") or {}).get("online")),
        20,
        "the cabinet at the centre",
    )
    for slot in SLOTS:
        cabinet_board.send(f"force {slot}")
    wait_until(
        lambda: len(_alarms(deployment, admin, "?kind=door_forced&state=open")) == len(SLOTS),
        20,
        "one open alarm per forced door",
    )
    alarms = _alarms(deployment, admin, "?kind=door_forced")
    assert [(a["device"], a["station"], a["agent"], a["count"]) for a in alarms] == [
        ("cab-1", "s1", AGENT, 1)
    ] * len(SLOTS)
    assert {a["severity"] for a in alarms} == {"critical"}
    assert sorted(a["body"]["slot"] for a in alarms) == sorted(SLOTS)
    assert len({a["source"] for a in alarms}) == len(SLOTS)
    assert [a["id"] for a in _alarms(deployment, own)] == [a["id"] for a in alarms]
    assert _alarms(deployment, other) == []
    assert all("body" not in a for a in _alarms(deployment, ops))

    first = alarms[0]
    url = f"{deployment.base}/api/v1/alarms/{first['id']}/ack"
    assert http_post(url, other, {"note": "not ours"})[0] == 404
    status, acked = http_post(url, centre, {"note": "officer checked the cabinet"})
    assert status == 200, acked
    assert acked["state"] == "acknowledged"
    assert acked["acked_by"] == "centre:duty officer"
    assert acked["ack_note"] == "officer checked the cabinet"
    assert acked["acked_at"] is not None
    status, again = http_post(url, admin, {"note": "twice"})
    assert status == 409, again
    assert "duty officer" in again["detail"]
    status, page = http_get(f"{deployment.base}/api/v1/audit?action=alarm.acknowledged", admin)
    assert status == 200
    assert [(e["actor"], e["target"]) for e in page["items"]] == [
        ("duty officer", str(first["id"]))
    ]

    # The door shut again ends its alarm by itself.
    closed_slot = alarms[1]["body"]["slot"]
    cabinet_board.send(f"close {closed_slot}")
    wait_until(
        lambda: _alarms(deployment, admin, "?state=cleared") != [],
        20,
        "the closed door's alarm to be cleared",
    )
    [cleared] = _alarms(deployment, admin, "?state=cleared")
    assert cleared["id"] == alarms[1]["id"]

    def open_gauge() -> float:
        status, text = http_get(f"{deployment.base}/metrics")
        assert status == 200
        return metric_value(text, "precinct_alarms_open", 'kind="door_forced",severity="critical"')

    wait_until(lambda: open_gauge() == len(SLOTS) - 2, 20, "the open-alarms gauge")
    _, text = http_get(f"{deployment.base}/metrics")
    assert metric_value(text, "precinct_alarm_latency_seconds_count") == len(SLOTS)

    latencies = _latencies(deployment.db)
    print(
        f"alarm latency over {len(latencies)} forced doors: median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    assert max(latencies) < 10

    # Killed, with the deriver's cursor lost as if its last batch had never committed: the
    # restarted central reads every stored event again and raises none of them twice.
    before = _alarms(deployment, admin)
    assert deployment.central is not None
    deployment.central.kill()
    conn = sqlite3.connect(deployment.db)
    try:
        conn.execute("DELETE FROM alarm_cursors")
        conn.commit()
    finally:
        conn.close()
    deployment.start_central()

    def cursor_caught_up() -> bool:
        conn = sqlite3.connect(deployment.db)
        try:
            row = conn.execute("SELECT last_id FROM alarm_cursors WHERE name = 'events'").fetchone()
            last = conn.execute("SELECT max(id) FROM events").fetchone()
        finally:
            conn.close()
        return row is not None and row[0] >= last[0]

    wait_until(cursor_caught_up, 20, "the restarted central to read every stored event")
    after = _alarms(deployment, admin)
    assert [(a["id"], a["source"], a["count"]) for a in after] == [
        (a["id"], a["source"], a["count"]) for a in before
    ]
    assert after[0]["acked_by"] == "centre:duty officer"
    # And a new forced door after the restart is one new alarm.
    cabinet_board.send(f"force {closed_slot}")
    wait_until(
        lambda: len(_alarms(deployment, admin, "?kind=door_forced")) == len(SLOTS) + 1,
        20,
        "the alarm of the door forced after the restart",
    )


def test_an_agent_killed_raises_agent_offline_after_the_set_time_and_back_clears_it(
    deployment: Deployment,
) -> None:
    deployment.start_central({"PRECINCT_AGENT_OFFLINE_ALARM": "2"})
    admin = deployment.token(Role.ADMIN)

    def agent_online(online: bool) -> bool:
        status, agents = http_get(f"{deployment.base}/api/v1/agents", admin)
        return status == 200 and [a["online"] for a in agents] == [online]

    agent = deployment.start_agent("gate-1", synthetic=5)
    wait_until(lambda: agent_online(True), 20, "the agent online")
    killed = time.monotonic()
    agent.kill()
    wait_until(lambda: agent_online(False), 30, "the broker's will: the agent offline")
    wait_until(
        lambda: len(_alarms(deployment, admin, "?kind=agent_offline&state=open")) == 1,
        30,
        "the agent_offline alarm",
    )
    # Not before the set time: the agent went offline at most when it was killed.
    assert time.monotonic() - killed >= 2
    [alarm] = _alarms(deployment, admin, "?kind=agent_offline")
    assert (alarm["agent"], alarm["station"], alarm["severity"]) == ("gate-1", "s1", "warning")
    deployment.start_agent("gate-1", synthetic=5)
    wait_until(
        lambda: (
            [a["state"] for a in _alarms(deployment, admin, "?kind=agent_offline")] == ["cleared"]
        ),
        30,
        "the agent_offline alarm cleared by the agent back online",
    )
