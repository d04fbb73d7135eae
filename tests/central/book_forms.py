"""What the booking page's tests share: rooms, the form's fields as a browser sends them, and
times in the centre's zone (the tests run the central on Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.support import http_request

ZONE_NAME = "Asia/Shanghai"
ZONE = ZoneInfo(ZONE_NAME)
# Fixed plans: no periodic jobs or improver moving a booking while a test looks at it.
CENTRAL_ENV = {
    "PRECINCT_TIMEZONE": ZONE_NAME,
    "PRECINCT_PLAN_INTERVAL": "0",
    "PRECINCT_IMPROVE_INTERVAL": "0",
}

ROOMS = [
    {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
    {"id": "I-2", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
    {"id": "Q-1", "type": "inquiry", "capacity": 1, "equipment": ["recording"]},
    {"id": "W-1", "type": "waiting", "capacity": 4, "equipment": []},
    {"id": "W-2", "type": "waiting", "capacity": 4, "equipment": []},
]
# One interrogation room and a waiting room for one: a man cannot wait with a woman (H2).
TIGHT_ROOMS = [
    {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
    {"id": "W-1", "type": "waiting", "capacity": 1, "equipment": []},
]


def add_rooms(api: str, token: str, rooms: list[dict[str, Any]]) -> None:
    for room in rooms:
        status, body = http_request("POST", f"{api}/rooms", token, room)
        assert status == 201, body


def next_quarter(hours: float = 1) -> datetime:
    """A quarter hour about ``hours`` from now, in the centre's zone."""
    now = datetime.now(ZONE).replace(second=0, microsecond=0)
    return now + timedelta(hours=hours, minutes=(-now.minute) % 15)


def local(moment: datetime) -> str:
    """As a datetime-local input holds it, in the centre's zone."""
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def person_fields(row: int, **values: str) -> dict[str, str]:
    fields = {
        "id": f"S{row + 1}",
        "role": "suspect",
        "sex": "male",
        "age": "adult",
        "legal_basis": "criminal_summons",
        "brought_in_at": "",
        "co_suspect_group": "",
        "guardian_at": "",
    }
    fields.update(values)
    return {f"persons.{row}.{name}": value for name, value in fields.items()}


def booking_form(arrival: datetime, persons: int = 1, **values: str) -> dict[str, str]:
    """The form as a browser sends it: ``persons`` adult male suspects brought in 30 minutes
    before arrival, recording needed."""
    form = {
        "case_id": "C-2026-118",
        "case_type": "盗窃",
        "officers": "4",
        "expected_arrival": local(arrival),
        "session_minutes": "60",
        "van": "",
        "needs.recording": "on",
    }
    for row in range(persons):
        form.update(person_fields(row, brought_in_at=local(arrival - timedelta(minutes=30))))
    form.update(values)
    return form


def api_booking(arrival: datetime, case: str, sex: str, **values: Any) -> dict[str, Any]:
    """A one-suspect booking for the API (the refusal's set-up): two hours, 24 h limit."""
    body: dict[str, Any] = {
        "case_id": case,
        "case_type": "theft",
        "officers": 2,
        "expected_arrival": arrival.astimezone(UTC).isoformat(),
        "session_minutes": 120,
        "persons": [
            {
                "id": "X",
                "role": "suspect",
                "minor": False,
                "sex": sex,
                "brought_in_at": (arrival - timedelta(minutes=30)).astimezone(UTC).isoformat(),
                "legal_basis": "criminal_summons_serious",
            }
        ],
    }
    body.update(values)
    return body
