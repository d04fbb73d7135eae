"""Alarms from the plan through a real central: a person's clock turning red becomes one
``custody_red`` alarm naming the booking and the person, shown to the centre and the booking's
station but not to another station or to ops, kept once across a restart that re-reads every
plan event, and ended when the booking is cancelled."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.auth import Role
from central.store import connect
from tests.central.test_bookings_api import ROOMS, at
from tests.conftest import Deployment
from tests.support import http_get, http_post, http_request, wait_until

# The custody job, the check and the alarm deriver run several times a second.
FAST_JOBS = {"PRECINCT_PLAN_INTERVAL": "0.3", "PRECINCT_ALARM_INTERVAL": "0.2"}


def _alarms(deployment: Deployment, token: str, query: str = "") -> list[dict[str, Any]]:
    status, page = http_get(f"{deployment.base}/api/v1/alarms{query}", token)
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


def _caught_up(db: Path) -> bool:
    """The deriver has read every plan event on file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM plan_events").fetchone()
        row = conn.execute(
            "SELECT last_id FROM alarm_cursors WHERE name = 'plan_events'"
        ).fetchone()
    finally:
        conn.close()
    return row is not None and int(row[0]) >= int(newest)


def _held_suspect(arrival: datetime) -> dict[str, Any]:
    return {
        "case_id": "C-2026-301",
        "case_type": "theft",
        "officers": 2,
        "expected_arrival": at(arrival),
        "session_minutes": 60,
        # Too close to the limit to plan a session in it (H5): kept, unplaced, on the waitlist.
        "waitlist": True,
        "persons": [
            {
                "id": "X",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                # 11 h 15 of a 12 h summons gone: less than an hour left, the clock is red.
                "brought_in_at": at(arrival - timedelta(hours=11, minutes=15)),
                "legal_basis": "criminal_summons",
            }
        ],
    }


def test_a_red_clock_is_one_alarm_for_its_station_kept_once_across_a_restart(
    deployment: Deployment,
) -> None:
    deployment.start_central(FAST_JOBS)
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC) + timedelta(minutes=5)
    status, booking = http_request("POST", f"{api}/bookings", s1, _held_suspect(arrival))
    assert status == 201, booking
    assert booking["status"] == "waitlisted"

    wait_until(
        lambda: bool(_alarms(deployment, centre, "?kind=custody_red")), 15, "a custody_red alarm"
    )
    [alarm] = _alarms(deployment, centre)
    assert alarm["kind"] == "custody_red"
    assert (alarm["booking"], alarm["person"], alarm["station"]) == (booking["id"], "X", "s1")
    assert (alarm["severity"], alarm["state"], alarm["count"]) == ("critical", "open", 1)
    assert alarm["body"]["level"] == "red"
    assert alarm["source"].startswith("plan_event:")

    # The booking's station sees it; another station and ops do not, nor may ops answer it.
    assert [a["id"] for a in _alarms(deployment, s1)] == [alarm["id"]]
    assert _alarms(deployment, s2) == []
    assert _alarms(deployment, ops) == []
    assert _alarms(deployment, ops, "?kind=custody_red") == []
    status, _ = http_post(f"{api}/alarms/{alarm['id']}/ack", ops, {"note": "seen"})
    assert status == 404
    status, _ = http_post(f"{api}/alarms/{alarm['id']}/ack", s2, {"note": "seen"})
    assert status == 404

    # Killed, and its plan cursor lost: every plan event is read again on restart, and the
    # clock job finds the level it stored. Still one alarm, raised once.
    assert deployment.central is not None
    deployment.central.kill()
    conn = connect(deployment.db)
    conn.execute("DELETE FROM alarm_cursors WHERE name = 'plan_events'")
    conn.close()
    deployment.start_central(FAST_JOBS)
    wait_until(lambda: _caught_up(deployment.db), 15, "the deriver through the plan events")
    [again] = _alarms(deployment, centre)
    assert (again["id"], again["state"], again["count"]) == (alarm["id"], "open", 1)

    # The station answers it; a red clock stays until its condition ends: here the booking
    # is cancelled, and the centre keeps no clock for it any more.
    status, answered = http_post(f"{api}/alarms/{alarm['id']}/ack", s1, {"note": "on our way"})
    assert status == 200, answered
    assert answered["state"] == "acknowledged"
    assert http_request("DELETE", f"{api}/bookings/{booking['id']}", s1, None)[0] == 200
    wait_until(
        lambda: _alarms(deployment, centre)[0]["state"] == "cleared", 15, "the alarm cleared"
    )
    assert len(_alarms(deployment, centre)) == 1
