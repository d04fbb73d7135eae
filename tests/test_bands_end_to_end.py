"""The person behind a band through the whole system: emulated bands -> agent (whose scanner
covers a room) -> broker -> central. A band bound at entry places its wearer in a room, its
opened strap is an alarm naming the person for their own station, the strap closed clears it,
a session in another room is a wrong_room alarm, and the exit takes the band off."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.auth import Role
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.conftest import Deployment
from tests.emulated_bands import start_bands
from tests.support import http_get, http_request, wait_until

AGENT = "centre-floor-2"


def _alarms(deployment: Deployment, token: str, kind: str) -> list[dict[str, Any]]:
    status, page = http_get(f"{deployment.base}/api/v1/alarms?kind={kind}", token)
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


def _person(deployment: Deployment, token: str, person: str) -> dict[str, Any] | None:
    status, found = http_get(f"{deployment.base}/api/v1/persons?in_area=true", token)
    assert status == 200, found
    return next((p for p in found if p["person"] == person), None)


def test_a_bound_band_places_its_wearer_and_its_alarms_name_them(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.start_central(
        {
            "PRECINCT_PLAN_INTERVAL": "0",
            "PRECINCT_ALARM_INTERVAL": "0.2",
            "PRECINCT_PRESENCE_INTERVAL": "0.5",
            "PRECINCT_PRESENCE_MISSED": "6",
        }
    )
    centre = deployment.token(Role.CENTRE, name="desk")
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    status, booking = http_request("POST", f"{api}/bookings", s1, booking_body(arrival))
    assert status == 201, booking
    url = f"{api}/bookings/{booking['id']}"
    assert http_request("POST", f"{url}/verified", s1, {"code": booking["code"]})[0] == 200
    assert http_request("POST", f"{url}/entered", s1, {})[0] == 200
    planned = next(
        a["room"] for a in booking["assignments"] if a["person"] == "S1" and a["kind"] == "session"
    )
    # The floor's scanner covers the other interrogation room: S1's session will be elsewhere.
    scanner_room = "I-2" if planned == "I-1" else "I-1"

    bands = start_bands(tmp_path, 2, reclose_after=2)
    try:
        config = bands.agent_config(tmp_path / "agent.toml", "wristbands-floor2", scanner_room)
        deployment.start_agent(AGENT, station="centre", extra=["--config", str(config)])
        status, bound = http_request("POST", f"{url}/persons/S1/band", centre, {"band": "band-001"})
        assert status == 201, bound

        def placed() -> bool:
            view = _person(deployment, centre, "S1")
            band = None if view is None else view["band"]
            return band is not None and band["room"] == scanner_room and bool(band["heart_rate"])

        wait_until(placed, 30, "S1 placed by the floor's scanner, with a heart rate")
        view = _person(deployment, s1, "S1")
        assert view is not None
        assert view["band"]["heard_by"] == AGENT
        assert view["band"]["last_heard"] is not None

        # SIGUSR1: the simulator opens band 1's strap; the alarm names S1 for station s1.
        bands.open_next_strap()
        wait_until(lambda: bool(_alarms(deployment, s1, "strap_opened")), 20, "strap_opened")
        (alarm,) = _alarms(deployment, s1, "strap_opened")
        assert (alarm["person"], alarm["booking"], alarm["band"], alarm["station"]) == (
            "S1",
            booking["id"],
            "band-001",
            "s1",
        )
        assert _alarms(deployment, s2, "strap_opened") == []
        conn = sqlite3.connect(deployment.db)
        try:
            raised, derived = conn.execute(
                "SELECT raised_at, derived_at FROM alarms WHERE kind = 'strap_opened'"
            ).fetchone()
        finally:
            conn.close()
        latency = datetime.fromisoformat(derived) - datetime.fromisoformat(raised)
        print(f"strap_opened: reading to alarm {latency.total_seconds() * 1000:.0f} ms")
        assert latency < timedelta(seconds=10)
        view = _person(deployment, centre, "S1")
        assert view is not None
        assert "strap_opened" in {a["kind"] for a in view["alarms"]}
        # The strap closes again after two seconds: the alarm clears itself.
        wait_until(
            lambda: _alarms(deployment, s1, "strap_opened")[0]["state"] == "cleared",
            20,
            "strap_opened cleared",
        )

        # S1's session starts in the planned room, but the band is heard in the other one.
        assert http_request("POST", f"{url}/persons/S1/session-started", s1, {})[0] == 200
        wait_until(lambda: bool(_alarms(deployment, s1, "wrong_room")), 20, "wrong_room")
        (wrong,) = _alarms(deployment, s1, "wrong_room")
        assert (wrong["person"], wrong["state"], wrong["body"]["heard_room"]) == (
            "S1",
            "open",
            scanner_room,
        )
        assert wrong["body"]["planned_room"] == planned
        # About a person: not for operations, nor for another station.
        assert _alarms(deployment, ops, "wrong_room") == []
        assert _alarms(deployment, s2, "wrong_room") == []

        # The exit takes the band off: the person leaves the wall, the alarm ends with it.
        assert http_request("POST", f"{url}/persons/S1/exited", s1, {})[0] == 200
        assert _person(deployment, centre, "S1") is None
        wait_until(
            lambda: _alarms(deployment, s1, "wrong_room")[0]["state"] == "cleared",
            20,
            "wrong_room cleared at the exit",
        )
        status, again = http_request("POST", f"{url}/persons/S2/band", centre, {"band": "band-001"})
        assert status == 201, again
    finally:
        bands.stop()
