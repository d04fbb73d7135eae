"""Every booking step and room change through the real central is in the audit log: who, what,
when and from where, read back through GET /api/v1/audit in pages."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from central import audit
from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, http_request


def one_suspect_booking(arrival: datetime, case: str, station: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_id": case,
        "case_type": "theft",
        "officers": 2,
        "expected_arrival": arrival.isoformat(),
        "session_minutes": 30,
        "needs": {"recording": True},
        "persons": [
            {
                "id": "P1",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                "brought_in_at": (arrival - timedelta(minutes=20)).isoformat(),
                "legal_basis": "criminal_summons",
            }
        ],
    }
    if station is not None:
        body["station"] = station
    return body


def _all(base: str, token: str, query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, page = http_get(f"{base}/api/v1/audit?limit=3{query}{cursor}", token)
        assert status == 200, page
        assert len(page["items"]) <= 3
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def test_booking_steps_and_room_changes_are_audited(deployment: Deployment) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN, name="root")
    centre = deployment.token(Role.CENTRE, name="duty li")
    station = deployment.token(Role.STATION, "s1", name="officer wang")
    base = deployment.base
    started = datetime.now(UTC)
    for room in (
        {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
        {"id": "W-1", "type": "waiting", "capacity": 4, "equipment": []},
    ):
        assert http_request("POST", f"{base}/api/v1/rooms", centre, room)[0] == 201
    status, _ = http_request(
        "PATCH", f"{base}/api/v1/rooms/W-1", centre, {"capacity": 3, "reason": "a bench broke"}
    )
    assert status == 200

    arrival = datetime.now(UTC) + timedelta(minutes=30)
    status, booking = http_request(
        "POST", f"{base}/api/v1/bookings", station, one_suspect_booking(arrival, "C-1", None)
    )
    assert status == 201, booking
    url = f"{base}/api/v1/bookings/{booking['id']}"
    steps: list[tuple[str, str, object]] = [
        ("PATCH", url, {"officers": 3}),
        ("POST", f"{url}/arrived", {}),
        ("POST", f"{url}/verified", {"code": booking["code"]}),
        ("POST", f"{url}/entered", {}),
        ("POST", f"{url}/persons/P1/session-started", {}),
        ("POST", f"{url}/persons/P1/session-ended", {}),
        ("POST", f"{url}/persons/P1/exited", {}),
    ]
    for method, target, body in steps:
        status, answer = http_request(method, target, station, body)
        assert status == 200, (target, answer)
    for close in ("DELETE", "no-show"):
        status, other = http_request(
            "POST",
            f"{base}/api/v1/bookings",
            centre,
            one_suspect_booking(arrival, f"C-{close}", "s1"),
        )
        assert status == 201, other
        if close == "DELETE":
            status, _ = http_request("DELETE", f"{base}/api/v1/bookings/{other['id']}", centre, {})
        else:
            status, _ = http_request(
                "POST", f"{base}/api/v1/bookings/{other['id']}/no-show", centre, {}
            )
        assert status == 200
    # Refused steps change nothing and leave no row.
    assert http_request("POST", f"{url}/arrived", station, {})[0] == 409
    assert http_request("PATCH", f"{base}/api/v1/rooms/W-1", station, {"capacity": 2})[0] == 403

    entries = _all(base, admin)
    assert [e["id"] for e in entries] == list(range(1, len(entries) + 1))
    assert [(e["action"], e["actor"], e["role"]) for e in entries] == [
        ("room.created", "duty li", "centre"),
        ("room.created", "duty li", "centre"),
        ("room.changed", "duty li", "centre"),
        ("booking.created", "officer wang", "station"),
        ("booking.changed", "officer wang", "station"),
        ("booking.arrived", "officer wang", "station"),
        ("booking.verified", "officer wang", "station"),
        ("booking.entered", "officer wang", "station"),
        ("person.session_started", "officer wang", "station"),
        ("person.session_ended", "officer wang", "station"),
        ("person.exited", "officer wang", "station"),
        ("booking.created", "duty li", "centre"),
        ("booking.cancelled", "duty li", "centre"),
        ("booking.created", "duty li", "centre"),
        ("booking.no_show", "duty li", "centre"),
    ]
    assert {e["source"] for e in entries} == {"127.0.0.1"}
    assert all(e["at"] >= started.strftime("%Y-%m-%dT%H:%M:%S") for e in entries)
    assert entries[2]["detail"] == {"state": ["in_service", "in_service"], "capacity": [4, 3]}
    assert entries[3]["target"] == booking["id"]
    assert entries[3]["detail"] == {
        "station": "s1",
        "status": "confirmed",
        "persons": 1,
        "walk_in": False,
    }
    assert entries[4]["detail"] == {"fields": ["officers"], "status": "confirmed"}
    assert entries[10]["detail"]["person"] == "P1"
    assert entries[10]["detail"]["booking_closed"] is True
    # Nothing of the request body or the persons beyond their booking's own ids.
    text = repr(entries)
    for personal in ("criminal_summons", "male", "suspect", "a bench broke", "theft", "C-1"):
        assert personal not in text
    # The chain the API shows is the chain the store holds, and it is whole.
    assert entries[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    conn = sqlite3.connect(f"file:{deployment.db}?mode=ro", uri=True)
    try:
        assert audit.verify(audit.rows(conn)).broken is None
    finally:
        conn.close()

    # Filters and bounds.
    cancelled = _all(base, admin, "&action=booking.cancelled")
    assert [e["action"] for e in cancelled] == ["booking.cancelled"]
    assert [e["action"] for e in _all(base, admin, "&actor=duty%20li&target=W-1")] == [
        "room.created",
        "room.changed",
    ]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _all(base, admin, f"&since={later}") == []
    # Seconds since 1970 are not a date-time; the ends of the calendar, where a UTC time
    # overflows, are outside the times any centre means.
    for bad in (
        "cursor=99999999999999999999",
        "limit=0",
        "limit=1001",
        "since=yesterday",
        "since=0.5",
        "since=1767225600",
        "since=0001-01-01T00:00:00%2B05:00",
        "since=9999-12-31T23:59:59-05:00",
    ):
        assert http_get(f"{base}/api/v1/audit?{bad}", admin)[0] == 422, bad
    assert http_get(f"{base}/api/v1/audit?action=x;drop", admin)[0] == 422
    assert len(_all(base, admin, "&since=2000-01-02T00:00:00%2B05:00")) == len(entries)
