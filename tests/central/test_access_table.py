"""The role table in docs/access.md, checked against every route the running central serves.

One walk over the served OpenAPI with a token of every role (and none, and a bad one): each
answer must match the table's cell, every route must have a row, and every row a route. Station
scope is checked with objects of two stations: another station's agent, booking or person is
refused, and no list shows any of them.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central import alarms_store
from central.alarm_rules import Severity
from central.alarms_store import Source
from central.auth import Role
from central.store import connect
from tests.central.test_audit_api import one_suspect_booking
from tests.conftest import Deployment
from tests.support import ROOT, http_get, http_request, wait_until

DOC = ROOT / "docs" / "access.md"
ROLES = ("admin", "centre", "station", "ops")
CELLS = {"open", "allowed", "own station", "health only", "denied"}
METHODS = {"get", "post", "put", "patch", "delete"}
# Endless answers (Server-Sent Events): the walk reads their status and headers, never the body;
# what each role gets on them is checked event by event in test_stream.py.
STREAMS = {"/api/v1/stream"}
NORTH, SOUTH = "s-north", "s-south"
# A refusal before the token is looked at counts as a refusal too: the API may limit the rate of
# failed authentication per client address (429).
UNAUTHENTICATED = {401, 429}
# Lists that carry the other station's objects when an admin reads them: for these the station's
# answer is only meaningful if the admin's holds what the station's must not.
SOUTH_VISIBLE_TO_ADMIN = {
    "/api/v1/agents",
    "/api/v1/events",
    "/api/v1/devices",
    "/api/v1/bookings",
    "/api/v1/schedule",
    "/api/v1/custody",
    "/api/v1/alarms",
}


def role_table(doc: Path = DOC) -> dict[tuple[str, str], dict[str, str]]:
    """(METHOD, path) -> {role: cell}, from the table under "## The role table"."""
    text = doc.read_text()
    section = text.split("## The role table", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["method", "path", *ROLES], header
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in lines[2:]:
        method, path, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        assert set(cells) <= CELLS, (method, path, cells)
        key = (method.upper(), path)
        assert key not in table, f"{key} appears twice in {doc.name}"
        table[key] = dict(zip(ROLES, cells, strict=True))
    return table


def test_the_table_parses() -> None:
    table = role_table()
    assert len(table) >= 30
    assert table[("GET", "/api/v1/devices")]["ops"] == "health only"
    assert table[("GET", "/api/v1/audit")] == {
        "admin": "allowed",
        "centre": "denied",
        "station": "denied",
        "ops": "denied",
    }


def send(method: str, url: str, token: str | None, body: object = None) -> tuple[int, bytes]:
    """Status and raw body: the walk checks statuses, whatever shape an error answer has."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - own server
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            if urllib.parse.urlsplit(url).path in STREAMS:
                assert response.headers["Content-Type"].startswith("text/event-stream"), url
                return int(response.status), b""
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in _keys(item)}
    if isinstance(value, list):
        return {k for item in value for k in _keys(item)}
    return set()


@dataclass
class World:
    """The objects of two stations the walk points at."""

    base: str
    tokens: dict[str, str]
    north: dict[str, Any]
    south: dict[str, Any]
    day: str
    alarms: dict[str, int]

    def path_values(self, station: str) -> dict[str, str]:
        booking = self.north if station == NORTH else self.south
        return {
            "agent_id": "gate-north" if station == NORTH else "gate-south",
            "booking_id": booking["id"],
            "person": "P1",
            "room_id": "I-1",
            "cabinet": "cab-none",
            "slot": "1",
            "alarm_id": str(self.alarms[station]),
        }

    def markers(self) -> list[str]:
        """Strings that only the south station's objects carry."""
        return [SOUTH, "gate-south", self.south["id"], self.south["code"], "CASE-SOUTH"]


def _build_world(deployment: Deployment) -> World:
    # The walk sends a hundred bad credentials from one address on purpose; the failed-auth
    # limit (tested on its own) would answer every later request 429 instead of its decision.
    deployment.start_central({"PRECINCT_RATE_LIMIT_AUTH_FAILURE_RATE": "0"})
    deployment.start_agent("gate-north", station=NORTH, synthetic=5)
    deployment.start_agent("gate-south", station=SOUTH, synthetic=5)
    tokens = {
        "admin": deployment.token(Role.ADMIN, name="walk admin"),
        "centre": deployment.token(Role.CENTRE, name="walk centre"),
        "station": deployment.token(Role.STATION, NORTH, name="walk station"),
        "ops": deployment.token(Role.OPS, name="walk ops"),
    }
    base = deployment.base
    admin = tokens["admin"]

    def both_report() -> bool:
        status, devices = http_get(f"{base}/api/v1/devices", admin)
        return status == 200 and {d["agent"] for d in devices} == {"gate-north", "gate-south"}

    wait_until(both_report, 30, "both agents' devices to be stored")
    for room in (
        {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
        {"id": "I-2", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
        {"id": "W-1", "type": "waiting", "capacity": 4, "equipment": []},
    ):
        status, answer = http_request("POST", f"{base}/api/v1/rooms", admin, room)
        assert status == 201, answer
    arrival = datetime.now(UTC) + timedelta(hours=1)
    bookings = {}
    for station, case in ((NORTH, "CASE-NORTH"), (SOUTH, "CASE-SOUTH")):
        status, booking = http_request(
            "POST",
            f"{base}/api/v1/bookings",
            tokens["centre"],
            one_suspect_booking(arrival, case, station),
        )
        assert status == 201, booking
        bookings[station] = booking
    day = bookings[SOUTH]["assignments"][0]["start"][:10]
    return World(base, tokens, bookings[NORTH], bookings[SOUTH], day, _raise_alarms(deployment))


def _raise_alarms(deployment: Deployment) -> dict[str, int]:
    """One forced-door alarm per station, written as the deriver writes them."""
    ids = {}
    conn = connect(deployment.db)
    try:
        for station, agent in ((NORTH, "gate-north"), (SOUTH, "gate-south")):
            now = datetime.now(UTC)
            source = Source(f"walk:{agent}", agent, "e", "cab-1", None, station, now, {"slot": 1})
            conn.execute("BEGIN IMMEDIATE")
            change = alarms_store.raise_or_count(
                conn,
                kind="door_forced",
                severity=Severity.CRITICAL,
                subject=f"{agent}/cab-1#1",
                source=source,
                now=now,
            )
            conn.execute("COMMIT")
            assert change is not None
            ids[station] = change.alarm
    finally:
        conn.close()
    return ids


_room_ids = itertools.count(100)


def _body(world: World, method: str, path: str, station: str) -> object:
    """A valid body for a route, for the objects of ``station``; None for routes without one."""
    booking = world.north if station == NORTH else world.south
    arrival = datetime.now(UTC) + timedelta(hours=2)
    bodies: dict[tuple[str, str], Callable[[], object]] = {
        ("POST", "/api/v1/rooms"): lambda: {
            "id": f"W-{next(_room_ids)}",
            "type": "waiting",
            "capacity": 2,
            "equipment": [],
        },
        ("PATCH", "/api/v1/rooms/{room_id}"): dict,
        ("POST", "/api/v1/bookings"): lambda: one_suspect_booking(arrival, "CASE-WALK", None),
        ("POST", "/api/v1/bookings/verify"): lambda: {"code": booking["code"]},
        ("PATCH", "/api/v1/bookings/{booking_id}"): dict,
        ("POST", "/api/v1/bookings/{booking_id}/verified"): lambda: {"code": booking["code"]},
        ("POST", "/api/v1/alarms/{alarm_id}/ack"): lambda: {"note": "seen on camera"},
        ("POST", "/api/v1/bookings/{booking_id}/persons/{person}/band"): lambda: {
            "band": f"band-{next(_room_ids)}"
        },
    }
    make = bodies.get((method, path))
    return None if make is None else make()


def _url(world: World, path: str, operation: dict[str, Any], station: str) -> str:
    values = world.path_values(station)
    query_values = {"date": world.day}
    url = path
    query = []
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            assert name in values, f"{path}: no value for the path parameter {name!r}"
            url = url.replace(f"{{{name}}}", values[name])
        elif parameter["in"] == "query" and parameter.get("required"):
            assert name in query_values, f"{path}: no value for the query parameter {name!r}"
            query.append(f"{name}={query_values[name]}")
    return world.base + url + (f"?{'&'.join(query)}" if query else "")


def _has_path_scope(path: str) -> bool:
    return any(f"{{{name}}}" in path for name in ("agent_id", "booking_id", "person", "alarm_id"))


@dataclass
class Walk:
    checked: int = 0
    refused_other: int = 0
    lists_clean: int = 0


def _other_station(
    world: World, walk: Walk, method: str, path: str, operation: dict[str, Any]
) -> None:
    """A station token against the south station's objects: refused, or never shown."""
    token = world.tokens["station"]
    where = f"{method} {path} (station, the other station's object)"
    if _has_path_scope(path):
        body = _body(world, method, path, SOUTH)
        status, answer = send(method, _url(world, path, operation, SOUTH), token, body)
        assert status in (403, 404), (where, status, answer[:300])
        walk.refused_other += 1
    elif (method, path) == ("POST", "/api/v1/bookings"):
        body = one_suspect_booking(datetime.now(UTC) + timedelta(hours=2), "CASE-X", SOUTH)
        status, answer = send(method, world.base + path, token, body)
        assert status in (403, 404), (where, status, answer[:300])
        walk.refused_other += 1
    elif (method, path) == ("POST", "/api/v1/bookings/verify"):
        status, answer = send(method, world.base + path, token, {"code": world.south["code"]})
        assert status in (403, 404), (where, status, answer[:300])
        walk.refused_other += 1
    elif method == "GET":
        url = _url(world, path, operation, NORTH)
        status, answer = send(method, url, token)
        assert status == 200, (where, status, answer[:300])
        text = answer.decode()
        leaked = [marker for marker in world.markers() if marker in text]
        assert not leaked, (where, leaked)
        if path in SOUTH_VISIBLE_TO_ADMIN:
            _, seen = send(method, url, world.tokens["admin"])
            assert any(m in seen.decode() for m in world.markers()), (path, "admin sees no south")
        walk.lists_clean += 1
    else:
        raise AssertionError(f"{where}: no station-scope check for this route; add one here")


def _check(
    world: World,
    walk: Walk,
    method: str,
    path: str,
    operation: dict[str, Any],
    role: str,
    cell: str,
) -> None:
    where = f"{method} {path} as {role} ({cell})"
    body = _body(world, method, path, NORTH)
    status, answer = send(method, _url(world, path, operation, NORTH), world.tokens[role], body)
    walk.checked += 1
    if cell == "denied":
        assert status == 403, (where, status, answer[:300])
        return
    assert status not in (401, 403), (where, status, answer[:300])
    assert status < 500, (where, status, answer[:300])
    if method == "GET":
        assert status == 200, (where, status, answer[:300])
    if path in STREAMS:
        return
    if cell == "health only":
        found = _keys(json.loads(answer))
        assert "body" not in found, (where, "a message body in the answer")
        _, full = send(method, _url(world, path, operation, NORTH), world.tokens["admin"])
        assert "body" in _keys(json.loads(full)), (path, "the admin's answer has no body")
    if cell == "own station":
        _other_station(world, walk, method, path, operation)
    elif role == "station" and cell == "allowed":
        _station_sees_all(world, method, path, operation)


def _station_sees_all(world: World, method: str, path: str, operation: dict[str, Any]) -> None:
    """``allowed`` for a station token means every station's objects, not only its own."""
    token = world.tokens["station"]
    where = f"{method} {path} (station, allowed: the other station's object)"
    if _has_path_scope(path):
        body = _body(world, method, path, SOUTH)
        status, answer = send(method, _url(world, path, operation, SOUTH), token, body)
        assert status not in (401, 403, 404), (where, status, answer[:300])
    elif method == "GET" and path in SOUTH_VISIBLE_TO_ADMIN:
        _, answer = send(method, _url(world, path, operation, NORTH), token)
        assert any(m in answer.decode() for m in world.markers()), (where, "not shown")


def test_every_route_answers_every_role_as_the_table_says(deployment: Deployment) -> None:
    world = _build_world(deployment)
    table = role_table()
    status, spec = http_get(f"{world.base}/openapi.json")
    assert status == 200
    served = {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in METHODS
    }
    assert sorted(set(served) - set(table)) == [], f"routes without a decision in {DOC.name}"
    assert sorted(set(table) - set(served)) == [], f"rows in {DOC.name} that name no route"
    walk = Walk()
    for (method, path), operation in served.items():
        cells = table[(method, path)]
        url = _url(world, path, operation, NORTH)
        body = _body(world, method, path, NORTH)
        if set(cells.values()) == {"open"}:
            assert send(method, url, None)[0] == 200, (method, path)
        else:
            assert "open" not in cells.values(), (method, path, "open for some roles only")
            for token in (None, "pct_not-a-real-token", "not even the prefix"):
                status, answer = send(method, url, token, body)
                assert status in UNAUTHENTICATED, (method, path, token, status, answer[:300])
        for role in ROLES:
            _check(world, walk, method, path, operation, role, cells[role])
    assert walk.checked == len(served) * len(ROLES)
    print(
        f"role table: {len(served)} routes x {len(ROLES)} roles = {walk.checked} answers; "
        f"{walk.refused_other} refusals of the other station's objects; "
        f"{walk.lists_clean} lists free of the other station's objects"
    )
    # The walk is audited: every change it made carries who made it and from where.
    status, page = http_get(f"{world.base}/api/v1/audit?limit=1000", world.tokens["admin"])
    assert status == 200
    assert {(e["actor"], e["source"]) for e in page["items"] if e["role"] == "station"} == {
        ("walk station", "127.0.0.1")
    }


def test_ops_sees_device_health_but_no_reading_bodies(deployment: Deployment) -> None:
    deployment.start_central()
    deployment.start_agent("gate-1", station="s1", synthetic=20)
    admin = deployment.token(Role.ADMIN)
    ops = deployment.token(Role.OPS)
    base = deployment.base

    def reported() -> bool:
        status, devices = http_get(f"{base}/api/v1/devices", admin)
        return status == 200 and bool(devices) and bool(devices[0]["state"])

    wait_until(reported, 20, "a device reading stored")
    status, full = http_get(f"{base}/api/v1/devices", admin)
    assert status == 200
    status, health = http_get(f"{base}/api/v1/devices", ops)
    assert status == 200
    assert [d["id"] for d in health] == [d["id"] for d in full]
    for seen, known in zip(health, full, strict=True):
        assert {k: seen[k] for k in ("agent", "id", "class", "online")} == {
            k: known[k] for k in ("agent", "id", "class", "online")
        }
        assert seen["last_seen"] is not None
        assert set(seen["state"]) == set(known["state"])
        for kind, entry in seen["state"].items():
            assert "body" in known["state"][kind]
            assert set(entry) == set(known["state"][kind]) - {"body"}, (kind, entry)
            assert {"seq", "time"} <= set(entry)
    assert re.search(r'"body"', json.dumps(health)) is None
