"""Bands on people through a real central: one band per person and one person per band (409
naming the holder), unbound by hand and at exit, audited, and the persons resource."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from central.auth import Role
from tests.central.test_bookings_api import ROOMS, at, booking_body
from tests.conftest import Deployment
from tests.support import http_get, http_request


def _booking(deployment: Deployment, token: str, api: str, **overrides: Any) -> dict[str, Any]:
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    status, booking = http_request(
        "POST", f"{api}/bookings", token, booking_body(arrival, **overrides)
    )
    assert status == 201, booking
    assert isinstance(booking, dict)
    return booking


def _enter(api: str, token: str, booking: dict[str, Any]) -> None:
    url = f"{api}/bookings/{booking['id']}"
    assert http_request("POST", f"{url}/verified", token, {"code": booking["code"]})[0] == 200
    assert http_request("POST", f"{url}/entered", token, {})[0] == 200


def test_one_band_per_person_and_one_person_per_band_and_exit_frees_it(
    deployment: Deployment,
) -> None:
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE, name="desk")
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    first = _booking(deployment, s1, api)
    persons = f"{api}/bookings/{first['id']}/persons"

    # Nobody is at the door before the unit arrives.
    status, refusal = http_request("POST", f"{persons}/S1/band", centre, {"band": "band-001"})
    assert status == 409, refusal
    assert "arrived" in refusal["detail"]

    _enter(api, s1, first)
    status, bound = http_request("POST", f"{persons}/S1/band", centre, {"band": "band-001"})
    assert status == 201, bound
    assert (bound["band"], bound["person"], bound["station"]) == ("band-001", "S1", "s1")
    assert bound["bound_by"] == "centre:desk"
    assert bound["unbound_at"] is None
    # The same band on the same person again changes nothing.
    assert http_request("POST", f"{persons}/S1/band", centre, {"band": "band-001"})[0] == 200

    # One band per person: the answer names the band the person wears.
    status, refusal = http_request("POST", f"{persons}/S1/band", centre, {"band": "band-002"})
    assert status == 409, refusal
    assert refusal["holder"] == {"band": "band-001", "booking": first["id"], "person": "S1"}
    # One person per band: the answer names the holder.
    status, refusal = http_request("POST", f"{persons}/S2/band", s1, {"band": "band-001"})
    assert status == 409, refusal
    assert refusal["holder"] == {"band": "band-001", "booking": first["id"], "person": "S1"}
    assert "S1" in refusal["detail"]

    # Scope: another station's booking, operations, an unknown person, a hostile band id.
    assert http_request("POST", f"{persons}/S2/band", s2, {"band": "band-009"})[0] == 403
    assert http_request("POST", f"{persons}/S2/band", ops, {"band": "band-009"})[0] == 403
    assert http_request("POST", f"{persons}/X9/band", centre, {"band": "band-009"})[0] == 404
    for bad in ({"band": ""}, {"band": "a b"}, {"band": 7}, {}, {"band": "b", "x": 1}):
        assert http_request("POST", f"{persons}/S2/band", centre, bad)[0] == 422, bad

    assert http_request("POST", f"{persons}/S2/band", centre, {"band": "band-002"})[0] == 201
    status, taken_off = http_request("DELETE", f"{persons}/S2/band", centre, None)
    assert status == 200, taken_off
    assert (taken_off["unbound_reason"], taken_off["unbound_by"]) == ("removed", "centre:desk")
    assert http_request("DELETE", f"{persons}/S2/band", centre, None)[0] == 404

    # The exit takes the band off: it is free for the next person at once.
    status, after = http_request("POST", f"{persons}/S1/exited", s1, {})
    assert status == 200, after
    assert http_request("POST", f"{persons}/S2/band", centre, {"band": "band-001"})[0] == 201

    conn = sqlite3.connect(deployment.db)
    try:
        history = conn.execute(
            "SELECT band, person, unbound_reason FROM band_bindings ORDER BY id"
        ).fetchall()
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit WHERE action LIKE 'band.%' ORDER BY id"
            ).fetchall()
        ]
        unbound = conn.execute(
            "SELECT json_extract(body, '$.reason') FROM feed WHERE kind = 'band_unbound' "
            "ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert history == [
        ("band-001", "S1", "exited"),
        ("band-002", "S2", "removed"),
        ("band-001", "S2", None),
    ]
    assert actions == ["band.bound", "band.bound", "band.unbound", "band.bound"]
    assert [r[0] for r in unbound] == ["removed", "exited"]


def test_the_persons_resource_shows_who_is_inside_with_plan_clock_and_band(
    deployment: Deployment,
) -> None:
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    ops = deployment.token(Role.OPS)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    inside = _booking(deployment, s1, api)
    _enter(api, s1, inside)
    coming = _booking(deployment, s2, api, case_id="C-2026-777")
    persons = f"{api}/bookings/{inside['id']}/persons"
    assert http_request("POST", f"{persons}/S1/band", centre, {"band": "band-001"})[0] == 201

    status, found = http_get(f"{api}/persons?in_area=true", centre)
    assert status == 200, found
    assert {(p["booking"], p["person"]) for p in found} == {
        (inside["id"], "S1"),
        (inside["id"], "S2"),
        (inside["id"], "W1"),
    }
    by_id = {p["person"]: p for p in found}
    s1_view = by_id["S1"]
    assert s1_view["in_area"] is True
    assert s1_view["station"] == "s1"
    assert s1_view["planned_session"]["room"] in {"I-1", "I-2"}
    assert s1_view["custody"]["level"] in {"green", "yellow", "orange", "red", "black"}
    assert s1_view["custody"]["legal_basis"] == "criminal_summons"
    assert s1_view["band"]["band"] == "band-001"
    # No scanner has heard it: not placed, nothing heard.
    assert s1_view["band"]["room"] is None
    assert s1_view["band"]["last_heard"] is None
    assert by_id["W1"]["custody"] is None  # a voluntary witness has no clock
    assert by_id["S2"]["band"] is None
    # The nearest legal limit first.
    remaining = [p["custody"]["remaining_minutes"] for p in found if p["custody"]]
    assert remaining == sorted(remaining)

    status, outside = http_get(f"{api}/persons?in_area=false", centre)
    assert status == 200
    assert {p["booking"] for p in outside} == {coming["id"]}
    status, everyone = http_get(f"{api}/persons", centre)
    assert {p["booking"] for p in everyone} == {inside["id"], coming["id"]}

    # A station sees its own people only; operations see none.
    assert {p["booking"] for p in http_get(f"{api}/persons", s2)[1]} == {coming["id"]}
    assert {p["booking"] for p in http_get(f"{api}/persons", s1)[1]} == {inside["id"]}
    assert http_get(f"{api}/persons", ops)[0] == 403
    assert http_get(f"{api}/persons?in_area=maybe", centre)[0] == 422

    # An exited person leaves the list.
    assert http_request("POST", f"{persons}/S2/exited", s1, {"at": at(datetime.now(UTC))})[0] == 200
    status, found = http_get(f"{api}/persons?in_area=true", centre)
    assert {p["person"] for p in found} == {"S1", "W1"}
