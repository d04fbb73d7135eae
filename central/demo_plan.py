"""The demo's rooms and bookings, made through the HTTP API as a centre and a station would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

DEMO_STATION = "station-01"
_TIMEOUT = 5.0
# The walk-in unit is inside from the start, its suspect wearing the demo's first band (whose
# strap the demo opens, so that the alarm names her), heard by the scanner that covers W-302.
WEARER = "S-1"
WORN_BAND = "band-001"
SCANNER_ROOM = "W-302"

ROOMS: list[dict[str, Any]] = [
    *(
        {
            "id": f"I-10{n}",
            "type": "interrogation",
            "capacity": 1,
            "equipment": ["recording", "one_way_glass"] if n == 1 else ["recording"],
        }
        for n in range(1, 5)
    ),
    *(
        {
            "id": f"Q-20{n}",
            "type": "inquiry",
            "capacity": 1,
            "equipment": ["recording", "interpreter"] if n == 1 else [],
        }
        for n in range(1, 4)
    ),
    {"id": "W-301", "type": "waiting", "capacity": 6, "equipment": []},
    {"id": "W-302", "type": "waiting", "capacity": 6, "equipment": []},
    {"id": "M-401", "type": "minors", "capacity": 1, "equipment": ["recording"]},
    {"id": "O-501", "type": "one_stop", "capacity": 1, "equipment": ["recording"]},
]


def _person(
    pid: str, role: str, sex: str, brought_in: datetime, basis: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": pid,
        "role": role,
        "minor": False,
        "sex": sex,
        "brought_in_at": brought_in.isoformat(),
        "legal_basis": basis,
        **extra,
    }


def demo_bookings(now: datetime, van: str | None = None) -> list[dict[str, Any]]:
    soon = now.replace(second=0, microsecond=0) + timedelta(minutes=20)
    return [
        {
            "station": DEMO_STATION,
            "case_id": "XS-2026-0311",
            "case_type": "robbery",
            "officers": 4,
            "expected_arrival": soon.isoformat(),
            "session_minutes": 90,
            **({"van": van} if van else {}),
            "persons": [
                _person(
                    "S-1",
                    "suspect",
                    "male",
                    soon - timedelta(hours=7),
                    "criminal_summons",
                    co_suspect_group="g1",
                ),
                _person(
                    "S-2",
                    "suspect",
                    "male",
                    soon - timedelta(minutes=50),
                    "criminal_summons",
                    co_suspect_group="g1",
                ),
                _person("V-1", "victim", "female", soon - timedelta(minutes=30), "voluntary"),
            ],
        },
        {
            "station": DEMO_STATION,
            "case_id": "XS-2026-0312",
            "case_type": "fraud",
            "officers": 2,
            "expected_arrival": (soon + timedelta(minutes=40)).isoformat(),
            "session_minutes": 60,
            "needs": {"interpreter": True},
            "persons": [_person("W-1", "witness", "male", soon, "voluntary")],
        },
        {
            "station": "station-02",
            "case_id": "XS-2026-0313",
            "case_type": "public_order",
            "officers": 2,
            "walk_in": True,
            "expected_arrival": now.isoformat(),
            "session_minutes": 45,
            "persons": [
                _person("S-1", "suspect", "female", now - timedelta(hours=5), "administrative")
            ],
        },
    ]


def _call(method: str, url: str, token: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the demo's own central service
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def seed_plan(base: str, token: str, van: str | None = None) -> list[str]:
    """Create the rooms and bookings; returns the booking codes (for the fast-lane curl)."""
    for room in ROOMS:
        status, answer = _call("POST", f"{base}/api/v1/rooms", token, room)
        if status not in (201, 409):
            raise RuntimeError(f"demo room {room['id']}: {status} {answer}")
    booked = []
    for booking in demo_bookings(datetime.now(UTC), van):
        status, answer = _call("POST", f"{base}/api/v1/bookings", token, booking)
        if status != 201:
            raise RuntimeError(f"demo booking {booking['case_id']}: {status} {answer}")
        booked.append(f"{answer['id']} (code {answer['code']})")
        if booking.get("walk_in"):
            _admit(base, token, answer["id"])
    return booked


def _admit(base: str, token: str, booking_id: str) -> None:
    """The walk-in unit enters at once and its suspect gets the first band at the door."""
    url = f"{base}/api/v1/bookings/{booking_id}"
    steps: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("entered", f"{url}/entered", {}),
        ("band", f"{url}/persons/{WEARER}/band", {"band": WORN_BAND}),
    )
    for name, step_url, body in steps:
        status, answer = _call("POST", step_url, token, body)
        if status not in (200, 201):
            raise RuntimeError(f"demo booking {booking_id} {name}: {status} {answer}")
