"""A van's arrival and ETA from its latest fix (pure), and the booking re-planned from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from central import plan_upkeep as upkeep
from central.alarm_deriver import derive
from central.alarm_rules import DEFAULT_SEVERITY
from central.api.booking_models import BookingIn
from central.planning import PlanningService
from central.store import connect
from central.van_eta import VanRules, van_position
from devices.gps.fix import great_circle_m
from monitoring.planning_metrics import PlanningMetrics
from scheduling.model import PlanRoom
from scheduling.rooms import Equipment, RoomType
from tests.central.test_planning_service import service_with_rooms

CENTRE = (31.2196, 121.4598)
RULES = VanRules(CENTRE)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_inside_the_geofence_is_arrival() -> None:
    position = van_position(
        {"lat": 31.2200, "lon": 121.4600, "speed_mps": 0.0}, NOW - timedelta(seconds=5), NOW, RULES
    )
    assert position is not None
    assert position.arrived
    assert position.distance_m < RULES.arrival_radius_m


def test_eta_is_road_distance_over_speed_with_a_floor() -> None:
    north = (CENTRE[0] + 0.09, CENTRE[1])  # about 10 km
    distance = great_circle_m(north, CENTRE)
    moving = van_position({"lat": north[0], "lon": north[1], "speed_mps": 10.0}, NOW, NOW, RULES)
    assert moving is not None
    assert not moving.arrived
    assert moving.eta == NOW + timedelta(seconds=distance * 1.3 / 10.0)
    stopped = van_position({"lat": north[0], "lon": north[1], "speed_mps": 0.0}, NOW, NOW, RULES)
    assert stopped is not None
    assert stopped.eta == NOW + timedelta(seconds=distance * 1.3 / RULES.speed_floor_mps)


@pytest.mark.parametrize(
    "fix",
    [
        {"lat": "31.2", "lon": 121.4, "speed_mps": 1.0},
        {"lat": float("nan"), "lon": 1.0},
        {"lat": True, "lon": 121.4},
        {"lat": 95.0, "lon": 121.4},
        {"lon": 121.4},
        None,
        [1, 2],
    ],
)
def test_unusable_fixes_give_no_position(fix: Any) -> None:
    assert van_position(fix, NOW, NOW, RULES) is None


def test_a_stale_fix_gives_no_position() -> None:
    assert van_position({"lat": 31.0, "lon": 121.0}, NOW - timedelta(minutes=6), NOW, RULES) is None


# No deadline: a pure function, whose first examples can be slow on a loaded machine.
@settings(deadline=None, max_examples=100)
@given(
    st.dictionaries(
        st.sampled_from(["lat", "lon", "speed_mps", "x"]),
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    )
)
def test_any_body_gives_a_position_or_none(fix: dict[str, Any]) -> None:
    position = van_position(fix, NOW, NOW, RULES)
    assert position is None or position.eta >= NOW


def put_fix(db: Path, device: str, lat: float, lon: float, speed: float, at: datetime) -> None:
    state = {
        "fix": {
            "seq": 1,
            "time": at.isoformat(),
            "body": {"lat": lat, "lon": lon, "speed_mps": speed},
        }
    }
    conn = connect(db)
    conn.execute(
        "INSERT OR REPLACE INTO devices (agent, device, class, online, last_seen, "
        "state, updated_at) VALUES ('van-07', ?, 'gps', 1, ?, ?, ?)",
        (device, at.isoformat(), json.dumps(state), at.isoformat()),
    )
    conn.close()


def test_a_late_van_is_planned_from_its_eta_and_arrives_by_geofence(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(
        db, [PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING}))]
    )
    request = BookingIn.model_validate(
        {
            "station": "s1",
            "case_id": "C1",
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": (NOW + timedelta(minutes=10)).isoformat(),
            "session_minutes": 60,
            "van": "van-07-gps",
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": (NOW - timedelta(minutes=30)).isoformat(),
                    "legal_basis": "criminal_summons",
                }
            ],
        }
    )
    booking = service.create(request.to_record(), "s1", "test", NOW)
    first = service.planner.session_of((booking, "X"))
    assert first is not None

    # 20 km out at 10 m/s: about 43 minutes, 33 later than booked.
    far = (CENTRE[0] + 0.18, CENTRE[1])
    put_fix(db, "van-07-gps", far[0], far[1], 10.0, NOW)
    done = upkeep.track_vans(service, RULES, 15, NOW)
    assert len(done) == 1
    assert "late" in done[0]
    later = service.planner.session_of((booking, "X"))
    assert later is not None
    assert later.start >= first.start + 30
    # Running again with the same fix changes nothing.
    assert upkeep.track_vans(service, RULES, 15, NOW) == []
    conn = connect(db)
    eta = conn.execute("SELECT eta FROM bookings WHERE id = ?", (booking,)).fetchone()[0]
    causes = [
        json.loads(r[0])["cause"]
        for r in conn.execute(
            "SELECT body FROM plan_events WHERE booking = ? AND kind = 'plan_changed'", (booking,)
        )
    ]
    [(station, late)] = conn.execute(
        "SELECT station, body FROM plan_events WHERE booking = ? AND kind = 'van_late'", (booking,)
    ).fetchall()
    conn.close()
    assert eta is not None
    assert "late_van" in causes
    # The late van is a fact of its own (an alarm until the booking arrives).
    late_body = json.loads(late)
    assert station == "s1"
    assert late_body["van"] == "van-07-gps"
    assert late_body["eta"] == eta
    assert 30 <= late_body["minutes_late"] <= 35
    derive(db, DEFAULT_SEVERITY, 60.0, now=NOW)
    assert van_alarms(db) == [("open", 1, "s1", booking)]

    # Restarted, the plan still arrives from the ETA.
    again = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    again.load()
    assert again.planner.session_of((booking, "X")) == later

    # Further behind still: planned again from the later ETA, and the same alarm counted again.
    moved_on = NOW + timedelta(minutes=1)
    put_fix(db, "van-07-gps", CENTRE[0] + 0.36, CENTRE[1], 10.0, moved_on)  # about 40 km
    assert len(upkeep.track_vans(service, RULES, 15, moved_on)) == 1
    derive(db, DEFAULT_SEVERITY, 60.0, now=moved_on)
    assert van_alarms(db) == [("open", 2, "s1", booking)]

    # At the gate: arrived, by the geofence.
    at_gate = NOW + timedelta(minutes=44)
    put_fix(db, "van-07-gps", CENTRE[0] + 0.0005, CENTRE[1], 2.0, at_gate)
    assert upkeep.track_vans(service, RULES, 15, at_gate) == [f"{booking} arrived"]
    conn = connect(db)
    status, arrived_at = conn.execute(
        "SELECT status, arrived_at FROM bookings WHERE id = ?", (booking,)
    ).fetchone()
    conn.close()
    assert status == "arrived"
    assert datetime.fromisoformat(arrived_at) == at_gate
    # The arrival ends the alarm.
    derive(db, DEFAULT_SEVERITY, 60.0, now=at_gate)
    assert van_alarms(db) == [("cleared", 2, "s1", booking)]


def van_alarms(db: Path) -> list[tuple[str, int, str, str]]:
    conn = connect(db)
    try:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT state, count, station, booking FROM alarms WHERE kind = 'van_late' "
                "ORDER BY id"
            )
        ]
    finally:
        conn.close()
