"""Devices through the whole system: a simulated board on a pty -> agent -> broker -> central."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.auth import Role
from tests.conftest import Deployment
from tests.support import ROOT, http_get, http_post, metric_value, wait_until


class CabinetSimulator:
    """``precinct cabinet simulate`` as a real child, driven through its stdin."""

    def __init__(self, slots: int = 4) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_agent.command_line",
                "cabinet",
                "simulate",
                "--slots",
                str(slots),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.port = self.process.stdout.readline().strip()
        assert self.port.startswith("/dev/"), self.port

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)


@pytest.fixture
def cabinet_board() -> Iterator[CabinetSimulator]:
    board = CabinetSimulator()
    yield board
    board.close()


def _agent_config(path: Path, state_dir: Path, port: str) -> Path:
    path.write_text(
        'id = "station-1-files"\nstation = "s1"\n'
        '[[devices]]\nkind = "cabinet"\nid = "cab-1"\n'
        f'transport = "{port}"\nstate_dir = "{state_dir}"\npoll_interval = 0.2\n'
    )
    return path


def _device(deployment: Deployment, token: str, device: str) -> dict[str, Any] | None:
    status, devices = http_get(f"{deployment.base}/api/v1/devices", token)
    if status != 200:
        return None
    return next((d for d in devices if d["id"] == device), None)


def test_cabinet_state_events_and_unlock_through_the_centre(
    deployment: Deployment, cabinet_board: CabinetSimulator, tmp_path: Path
) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN)
    centre = deployment.token(Role.CENTRE, name="duty officer")
    station = deployment.token(Role.STATION, "s1")
    config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", cabinet_board.port)
    deployment.start_agent("station-1-files", extra=["--config", str(config)])

    def cabinet_known() -> bool:
        device = _device(deployment, admin, "cab-1")
        return bool(device and device["online"] and "slot_status" in device["state"])

    wait_until(cabinet_known, 20, "the cabinet's state at the centre")
    device = _device(deployment, admin, "cab-1")
    assert device is not None
    assert device["class"] == "cabinet"
    # The agent's own view of the device.
    _, metrics = http_get(f"http://127.0.0.1:{deployment.metrics_ports['station-1-files']}/metrics")
    assert metric_value(metrics, "precinct_agent_device_frames_total", 'device="cab-1"') > 0
    assert metric_value(metrics, "precinct_agent_device_online", 'device="cab-1"') == 1
    assert (
        metric_value(metrics, "precinct_agent_device_last_seen_timestamp_seconds", 'device="cab-1"')
        > time.time() - 60
    )

    cabinet_board.send("force 2")

    def forced_arrived() -> bool:
        status, page = http_get(f"{deployment.base}/api/v1/events?kind=door_forced", admin)
        return status == 200 and len(page["items"]) == 1

    wait_until(forced_arrived, 15, "the forced-door event at the centre")
    _, page = http_get(f"{deployment.base}/api/v1/events?kind=door_forced", admin)
    assert page["items"][0]["class"] == "event"
    assert page["items"][0]["device"] == "cab-1"

    url = f"{deployment.base}/api/v1/cabinets/cab-1/slots/3/unlock"
    assert http_post(url, None, {})[0] == 401
    assert http_post(url, station, {})[0] == 403
    status, outcome = http_post(url, centre, {"pulse_ms": 300})
    assert status == 200, outcome
    assert outcome["result"] == {"slot": 3, "unlocked": True}
    assert outcome["requested_by"] == "duty officer"
    status, refused = http_post(
        f"{deployment.base}/api/v1/cabinets/cab-1/slots/99/unlock", centre, {}
    )
    assert status == 409, refused
    assert http_post(f"{deployment.base}/api/v1/cabinets/nope/slots/1/unlock", centre, {})[0] == 404
    # A board that stops answering is reported missing at the centre, then back.
    cabinet_board.send("silent")
    wait_until(
        lambda: (_device(deployment, admin, "cab-1") or {}).get("online") is False,
        20,
        "the silent cabinet to be offline at the centre",
    )
    cabinet_board.send("answer")
    wait_until(
        lambda: (_device(deployment, admin, "cab-1") or {}).get("online") is True,
        20,
        "the cabinet to be back",
    )
    # Every unlock is on record with who asked.
    conn = sqlite3.connect(deployment.db)
    try:
        rows = conn.execute(
            "SELECT name, requested_by, status, args FROM commands "
            "WHERE name = 'unlock' ORDER BY created_at"
        ).fetchall()
    finally:
        conn.close()
    assert [(r[1], r[2]) for r in rows] == [
        ("centre:duty officer", "ok"),
        ("centre:duty officer", "error"),
    ]
    assert json.loads(rows[0][3])["slot"] == 3
    # And in the audit log: who asked, from where, and what the board answered.
    status, page = http_get(f"{deployment.base}/api/v1/audit?action=cabinet.unlock", admin)
    assert status == 200
    assert [(e["actor"], e["source"], e["target"], e["detail"]["slot"]) for e in page["items"]] == [
        ("duty officer", "127.0.0.1", "cab-1", 3),
        ("duty officer", "127.0.0.1", "cab-1", 99),
    ]
    status, page = http_get(f"{deployment.base}/api/v1/audit?action=cabinet.unlock_result", admin)
    assert status == 200
    assert [e["detail"]["status"] for e in page["items"]] == ["ok", "error"]


def test_unlock_answers_504_when_the_agent_does_not_answer(
    deployment: Deployment, cabinet_board: CabinetSimulator, tmp_path: Path
) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN)
    config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", cabinet_board.port)
    agent = deployment.start_agent("station-1-files", extra=["--config", str(config)])
    wait_until(lambda: bool(_device(deployment, admin, "cab-1")), 20, "the cabinet")
    agent.kill()
    started = time.monotonic()
    status, body = http_post(f"{deployment.base}/api/v1/cabinets/cab-1/slots/1/unlock", admin, {})
    assert status == 504, body
    assert time.monotonic() - started < 15
    status, page = http_get(f"{deployment.base}/api/v1/audit?action=cabinet.unlock_result", admin)
    assert status == 200
    assert [e["detail"]["status"] for e in page["items"]] == ["no_answer"]
    # Restarted after the expiry, the agent answers the stale command without unlocking.
    deployment.start_agent("station-1-files", extra=["--config", str(config)])

    def answered_expired() -> bool:
        conn = sqlite3.connect(deployment.db)
        try:
            row = conn.execute(
                "SELECT status, error FROM commands WHERE name = 'unlock'"
            ).fetchone()
        finally:
            conn.close()
        return tuple(row) == ("error", "expired")

    wait_until(answered_expired, 20, "the stale unlock to be answered 'expired'")
