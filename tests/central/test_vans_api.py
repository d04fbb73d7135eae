"""GET /api/v1/vans through a real central: each van's fix, its track from the stream's
positions, the unit it carries with its ETA and lateness, scoped by station."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from central.auth import Role
from central.store import connect
from edge_agent.wire import format_time
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.conftest import Deployment
from tests.support import http_get, http_request

CENTRE = (31.2196, 121.4598)


def _van(deployment: Deployment, agent: str, station: str, lat: float, at: datetime) -> None:
    """A van agent of ``station`` whose GPS reported a fix at ``lat`` north of the centre, and
    the three positions the stream carried before it."""
    conn = connect(deployment.db)
    try:
        conn.execute(
            "INSERT OR REPLACE INTO agents (agent, station, online, status_time, epoch) "
            "VALUES (?, ?, 1, ?, 'e1')",
            (agent, station, format_time(at)),
        )
        state = {
            "fix": {
                "seq": 9,
                "time": format_time(at),
                "body": {"lat": lat, "lon": CENTRE[1], "speed_mps": 10.0, "course": 180.0},
            }
        }
        conn.execute(
            "INSERT OR REPLACE INTO devices (agent, device, class, online, last_seen, state, "
            "updated_at) VALUES (?, ?, 'gps', 1, ?, ?, ?)",
            (agent, f"{agent}-gps", format_time(at), json.dumps(state), format_time(at)),
        )
        for back in (3, 2, 1):
            moment = at - timedelta(seconds=back)
            conn.execute(
                "INSERT INTO feed (at, kind, station, audience, body) VALUES "
                "(?, 'van_position', ?, 'centre', ?)",
                (
                    format_time(moment),
                    station,
                    json.dumps(
                        {
                            "agent": agent,
                            "device": f"{agent}-gps",
                            "time": format_time(moment),
                            "lat": lat + back * 0.001,
                            "lon": CENTRE[1],
                            "speed_mps": 10.0,
                            "course": 180.0,
                        }
                    ),
                ),
            )
    finally:
        conn.close()


def test_vans_show_fix_track_and_the_late_unit_they_carry(deployment: Deployment) -> None:
    deployment.start_central(
        {
            "PRECINCT_PLAN_INTERVAL": "0",
            "PRECINCT_CENTRE_LAT": str(CENTRE[0]),
            "PRECINCT_CENTRE_LON": str(CENTRE[1]),
        }
    )
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    now = datetime.now(UTC).replace(microsecond=0)
    # Booked to arrive in 10 minutes; its van is about 20 km out at 10 m/s: some 40 min away.
    arrival = now + timedelta(minutes=10)
    status, booking = http_request(
        "POST", f"{api}/bookings", s1, booking_body(arrival, van="van-07-gps")
    )
    assert status == 201, booking
    _van(deployment, "van-07", "s1", CENTRE[0] + 0.18, now)
    _van(deployment, "van-09", "s2", CENTRE[0] + 0.01, now)

    status, found = http_get(f"{api}/vans", centre)
    assert status == 200, found
    by_device = {v["device"]: v for v in found}
    assert set(by_device) == {"van-07-gps", "van-09-gps"}
    carrying = by_device["van-07-gps"]
    assert carrying["station"] == "s1"
    assert carrying["fix"]["lat"] == CENTRE[0] + 0.18
    assert [p["lat"] for p in carrying["track"]] == sorted(
        (p["lat"] for p in carrying["track"]), reverse=True
    )
    assert len(carrying["track"]) == 3
    carried = carrying["booking"]
    assert carried["booking"] == booking["id"]
    assert carried["late"] is True
    assert datetime.fromisoformat(carried["eta"]) > arrival + timedelta(minutes=15)
    assert 19_000 < carried["distance_m"] < 21_000
    assert by_device["van-09-gps"]["booking"] is None

    # A station sees its own vans; operations none.
    assert [v["device"] for v in http_get(f"{api}/vans", s1)[1]] == ["van-07-gps"]
    assert [v["device"] for v in http_get(f"{api}/vans", s2)[1]] == ["van-09-gps"]
    assert http_get(f"{api}/vans", ops)[0] == 403
    # The track's length is asked for.
    assert http_get(f"{api}/vans?minutes=0", centre)[0] == 422
    status, short = http_get(f"{api}/vans?minutes=1", centre)
    assert status == 200
    assert all(len(v["track"]) == 3 for v in short)
