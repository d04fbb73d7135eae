"""Rooms through the real central service: create, read, change, history, roles."""

from __future__ import annotations

from typing import Any

from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, http_request


def test_rooms_create_change_and_history(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE, name="li")
    station = deployment.token(Role.STATION, "s1")
    base = f"{deployment.base}/api/v1/rooms"
    room: dict[str, Any] = {
        "id": "I-101",
        "type": "interrogation",
        "capacity": 3,
        "equipment": ["recording", "one_way_glass"],
    }
    assert http_request("POST", base, None, room)[0] == 401
    assert http_request("POST", base, station, room)[0] == 403
    status, created = http_request("POST", base, centre, room)
    assert status == 201, created
    assert created["state"] == "in_service"
    assert http_request("POST", base, centre, room)[0] == 409
    assert http_request("POST", base, centre, {**room, "id": "I-102", "equipment": []})[0] == 422
    assert http_request("POST", base, centre, {**room, "id": "I-103", "capacity": 0})[0] == 422
    assert http_request("POST", base, centre, {**room, "id": "I-104", "admin": True})[0] == 422

    status, changed = http_request(
        "PATCH", f"{base}/I-101", centre, {"state": "out_of_order", "reason": "recorder fault"}
    )
    assert status == 200, changed
    assert changed["state"] == "out_of_order"
    assert http_request("PATCH", f"{base}/I-101", centre, {"state": "cleaning"})[0] == 200
    assert http_request("PATCH", f"{base}/I-101", centre, {"type": "waiting"})[0] == 422
    assert http_request("PATCH", f"{base}/I-101", station, {"state": "in_service"})[0] == 403
    assert http_request("PATCH", f"{base}/nope", centre, {"capacity": 2})[0] == 404

    status, detail = http_get(f"{base}/I-101", station)
    assert status == 200
    assert [(h["before"], h["after"], h["by"], h["reason"]) for h in detail["history"]] == [
        (None, "in_service", "centre:li", "created"),
        ("in_service", "out_of_order", "centre:li", "recorder fault"),
        ("out_of_order", "cleaning", "centre:li", None),
    ]
    status, rooms = http_get(base, station)
    assert status == 200
    assert [(r["id"], r["state"]) for r in rooms] == [("I-101", "cleaning")]


def test_rooms_name_their_adjacent_rooms(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE, name="li")
    base = f"{deployment.base}/api/v1/rooms"
    room: dict[str, Any] = {"id": "Q-1", "type": "inquiry", "capacity": 1}
    status, plain = http_request("POST", base, centre, room)
    assert status == 201, plain
    assert plain["adjacent_to"] == []
    status, created = http_request(
        "POST", base, centre, {**room, "id": "Q-2", "adjacent_to": ["Q-1", "Q-3"]}
    )
    assert status == 201, created
    assert created["adjacent_to"] == ["Q-1", "Q-3"]
    assert http_get(f"{base}/Q-2", centre)[1]["adjacent_to"] == ["Q-1", "Q-3"]
    status, changed = http_request("PATCH", f"{base}/Q-2", centre, {"adjacent_to": ["Q-3"]})
    assert status == 200, changed
    assert changed["adjacent_to"] == ["Q-3"]
    assert changed["capacity"] == 1
    status, kept = http_request("PATCH", f"{base}/Q-2", centre, {"capacity": 2})
    assert kept["adjacent_to"] == ["Q-3"]
    # A room next to itself, a name no room could have, too many neighbours: each refused.
    assert http_request("PATCH", f"{base}/Q-2", centre, {"adjacent_to": ["Q-2"]})[0] == 422
    assert http_request("PATCH", f"{base}/Q-2", centre, {"adjacent_to": ["../x"]})[0] == 422
    many = [f"Q-{n}" for n in range(10, 40)]
    assert http_request("PATCH", f"{base}/Q-2", centre, {"adjacent_to": many})[0] == 422
    assert http_request("PATCH", f"{base}/Q-2", centre, {"adjacent_to": "Q-1"})[0] == 422
    assert http_get(f"{base}/Q-2", centre)[1]["adjacent_to"] == ["Q-3"]
