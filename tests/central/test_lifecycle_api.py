"""The lifecycle through a real central: every illegal step is a 409 problem naming the state,
an exit stops the custody clock and closes a session left open, a minor's session waits for the
guardian, a booking in the past is a 422, and a session started early or late moves the plan."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from central.auth import Role
from tests.central.test_bookings_api import ROOMS, at, booking_body, sessions
from tests.conftest import Deployment
from tests.support import http_get, http_request


def _setup(deployment: Deployment, rooms: list[dict[str, Any]]) -> tuple[str, str, str]:
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE)
    station = deployment.token(Role.STATION, "s1")
    api = f"{deployment.base}/api/v1"
    for room in rooms:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    return api, centre, station


def refused(answer: tuple[int, Any], state: str) -> None:
    status, body = answer
    assert status == 409, body
    assert body["state"] == state, body
    assert state in body["detail"], body


def custody_of(api: str, token: str, booking: str) -> set[str]:
    status, entries = http_get(f"{api}/custody", token)
    assert status == 200, entries
    return {e["person"] for e in entries if e["booking"] == booking}


def test_illegal_steps_are_409_naming_the_state_and_an_exit_ends_the_clock(
    deployment: Deployment,
) -> None:
    api, _centre, s1 = _setup(deployment, ROOMS)
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    status, booking = http_request("POST", f"{api}/bookings", s1, booking_body(arrival))
    assert status == 201, booking
    url = f"{api}/bookings/{booking['id']}"
    person = f"{url}/persons"

    # H8: no session before entry; the answer is a problem that names the state.
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{person}/S1/session-started",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {s1}"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert answer.value.code == 409
    assert answer.value.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(answer.value.read())
    assert problem["state"] == "confirmed"
    assert "confirmed" in problem["detail"]

    assert http_request("POST", f"{url}/verified", s1, {"code": booking["code"]})[0] == 200
    refused(http_request("POST", f"{url}/verified", s1, {"code": booking["code"]}), "verified")
    refused(http_request("POST", f"{url}/no-show", s1, {}), "verified")
    start = arrival + timedelta(minutes=5)
    assert http_request("POST", f"{url}/entered", s1, {"at": at(start)})[0] == 200
    refused(http_request("POST", f"{url}/entered", s1, {}), "in_area")
    refused(http_request("DELETE", url, s1, None), "in_area")
    refused(http_request("POST", f"{person}/S1/session-ended", s1, {}), "waiting")
    assert custody_of(api, s1, booking["id"]) == {"S1", "S2"}  # W1 came of her own accord

    assert http_request("POST", f"{person}/S1/session-started", s1, {"at": at(start)})[0] == 200
    refused(http_request("POST", f"{person}/S1/session-started", s1, {}), "in_session")
    ended = start + timedelta(minutes=40)
    assert http_request("POST", f"{person}/S1/session-ended", s1, {"at": at(ended)})[0] == 200
    refused(http_request("POST", f"{person}/S1/session-ended", s1, {}), "questioned")

    # S2 leaves in the middle of the session: it ends at the exit, and so does the clock.
    assert http_request("POST", f"{person}/S2/session-started", s1, {"at": at(ended)})[0] == 200
    out = ended + timedelta(minutes=20)
    status, after = http_request("POST", f"{person}/S2/exited", s1, {"at": at(out)})
    assert status == 200, after
    progress = {p["id"]: p for p in after["persons"]}
    assert datetime.fromisoformat(progress["S2"]["session_ended_at"]) == out
    assert datetime.fromisoformat(progress["S2"]["exited_at"]) == out
    assert after["status"] == "in_area"
    assert custody_of(api, s1, booking["id"]) == {"S1"}
    refused(http_request("POST", f"{person}/S2/exited", s1, {}), "exited")
    assert http_request("POST", f"{person}/nobody/exited", s1, {})[0] == 404

    # The clock stays stopped across a restart: it is rebuilt from the store.
    assert deployment.central is not None
    deployment.central.kill()
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    assert custody_of(api, s1, booking["id"]) == {"S1"}

    for who in ("S1", "W1"):
        assert http_request("POST", f"{person}/{who}/exited", s1, {"at": at(out)})[0] == 200
    assert http_get(url, s1)[1]["status"] == "exited"
    assert custody_of(api, s1, booking["id"]) == set()
    refused(http_request("POST", f"{url}/entered", s1, {}), "exited")


def minor_booking(arrival: datetime, guardian_at: datetime) -> dict[str, Any]:
    return {
        "case_id": "C-2026-200",
        "case_type": "theft",
        "officers": 2,
        "expected_arrival": at(arrival),
        "session_minutes": 60,
        "walk_in": True,
        "needs": {"recording": True},
        "persons": [
            {
                "id": "M1",
                "role": "witness",
                "minor": True,
                "sex": "male",
                "brought_in_at": at(arrival - timedelta(minutes=20)),
                "legal_basis": "voluntary",
                "guardian_at": at(guardian_at),
            }
        ],
    }


def test_a_minors_session_before_the_guardian_is_refused(deployment: Deployment) -> None:
    rooms = [*ROOMS, {"id": "M-1", "type": "minors", "capacity": 1, "equipment": ["recording"]}]
    api, _centre, s1 = _setup(deployment, rooms)
    now = datetime.now(UTC).replace(microsecond=0)
    guardian = now + timedelta(minutes=45)
    status, booking = http_request("POST", f"{api}/bookings", s1, minor_booking(now, guardian))
    assert status == 201, booking
    url = f"{api}/bookings/{booking['id']}"
    assert http_request("POST", f"{url}/entered", s1, {"at": at(now)})[0] == 200
    early = http_request(
        "POST",
        f"{url}/persons/M1/session-started",
        s1,
        {"at": at(guardian - timedelta(minutes=10))},
    )
    refused(early, "waiting")
    assert "H7" in early[1]["detail"]
    status, started = http_request(
        "POST", f"{url}/persons/M1/session-started", s1, {"at": at(guardian)}
    )
    assert status == 200, started
    assert started["persons"][0]["session_started_at"] is not None


def test_a_booking_in_the_past_is_a_422_saying_so(deployment: Deployment) -> None:
    api, _centre, s1 = _setup(deployment, ROOMS)
    past = datetime.now(UTC) - timedelta(hours=2)
    status, problem = http_request("POST", f"{api}/bookings", s1, booking_body(past))
    assert status == 422, problem
    assert "expected_arrival" in problem["detail"]
    assert "in the past" in problem["detail"]
    soon = datetime.now(UTC) + timedelta(minutes=10)
    status, booking = http_request("POST", f"{api}/bookings", s1, booking_body(soon))
    assert status == 201, booking
    earlier = soon - timedelta(minutes=25)  # still after every person was brought in
    moved = http_request(
        "PATCH", f"{api}/bookings/{booking['id']}", s1, {"expected_arrival": at(earlier)}
    )
    assert moved[0] == 422, moved
    assert "in the past" in moved[1]["detail"]


def one_suspect(arrival: datetime, case: str) -> dict[str, Any]:
    body = booking_body(arrival, case_id=case, officers=2)
    body["persons"] = body["persons"][:1]
    return body


def test_a_session_started_late_or_early_moves_the_plan(deployment: Deployment) -> None:
    rooms = [ROOMS[0], ROOMS[3]]  # one interrogation room, one waiting room
    api, _centre, s1 = _setup(deployment, rooms)
    arrival = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    first = http_request("POST", f"{api}/bookings", s1, one_suspect(arrival, "C-A"))[1]
    second = http_request("POST", f"{api}/bookings", s1, one_suspect(arrival, "C-B"))[1]
    planned = datetime.fromisoformat(sessions(first)["S1"][1])
    planned_next = datetime.fromisoformat(sessions(second)["S1"][1])
    assert planned_next >= planned + timedelta(minutes=60)

    url = f"{api}/bookings/{first['id']}"
    assert http_request("POST", f"{url}/verified", s1, {"code": first["code"]})[0] == 200
    assert http_request("POST", f"{url}/entered", s1, {"at": at(arrival)})[0] == 200
    late = planned + timedelta(minutes=30)
    status, started = http_request(
        "POST", f"{url}/persons/S1/session-started", s1, {"at": at(late)}
    )
    assert status == 200, started
    room, start, end = sessions(started)["S1"]
    assert (room, datetime.fromisoformat(start)) == ("I-1", late)
    assert datetime.fromisoformat(end) == late + timedelta(minutes=60)
    # The next session in the room moved past the late one, and its station was told.
    after = http_get(f"{api}/bookings/{second['id']}", s1)[1]
    assert datetime.fromisoformat(sessions(after)["S1"][1]) >= late + timedelta(minutes=60)
    events = http_get(f"{api}/plan-events", s1)[1]
    assert any(
        e["kind"] == "plan_changed"
        and e["booking"] == second["id"]
        and e["body"]["cause"] == "session_started"
        for e in events
    ), events

    # Ended early: the room is free at once, and the second unit starts early in it.
    ended = late + timedelta(minutes=20)
    assert http_request("POST", f"{url}/persons/S1/session-ended", s1, {"at": at(ended)})[0] == 200
    # The schedule shows the session as recorded beside the plan.
    day = late.astimezone(UTC).date()
    entries = http_get(f"{api}/schedule?date={day}", s1)[1]
    (done,) = [e for e in entries if e["booking"] == first["id"] and e["kind"] == "session"]
    assert datetime.fromisoformat(done["actual_start"]) == late
    assert datetime.fromisoformat(done["actual_end"]) == ended
    assert all(e["actual_start"] is None for e in entries if e["booking"] == second["id"])
    other = f"{api}/bookings/{second['id']}"
    assert http_request("POST", f"{other}/verified", s1, {"code": second["code"]})[0] == 200
    assert http_request("POST", f"{other}/entered", s1, {"at": at(arrival)})[0] == 200
    early = ended + timedelta(minutes=30)
    status, moved = http_request(
        "POST", f"{other}/persons/S1/session-started", s1, {"at": at(early)}
    )
    assert status == 200, moved
    assert datetime.fromisoformat(sessions(moved)["S1"][1]) == early
    # The checker, run after every re-plan, found nothing to report.
    events = http_get(f"{api}/plan-events", s1)[1]
    assert not [e for e in events if e["kind"] == "plan_violation"], events
