"""The planning service's booking record: round trips, the request answered back as sent, the
previous release's stored bodies read as version 0, and clear refusals of anything else."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.api.booking_models import BookingIn
from central.auth import Role
from central.booking_record import (
    VERSION,
    BookingChange,
    BookingRecord,
    Needs,
    RecordError,
    upgrade,
)
from scheduling.model import from_minute
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.conftest import Deployment
from tests.scheduling.strategies import bookings
from tests.support import http_get, http_request

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)

# A body as the release before the record stored it: the request model's JSON, no version.
LEGACY = (
    '{"station":null,"case_id":"C-1","case_type":"theft","officers":4,'
    '"expected_arrival":"2026-03-02T09:00:00+08:00","session_minutes":60,'
    '"needs":{"recording":true,"interpreter":false,"guardian":true},"female_staff":false,'
    '"walk_in":false,"waitlist":true,"van":"van-07-gps","persons":[{"id":"S1","role":"suspect",'
    '"minor":true,"sex":"male","brought_in_at":"2026-03-02T08:10:00+08:00",'
    '"legal_basis":"criminal_summons","co_suspect_group":"g1","sexual_abuse_victim":false,'
    '"intoxicated":false,"guardian_at":null,"session_minutes":null}]}'
)


def request(**overrides: Any) -> BookingIn:
    body = {
        "case_id": "C-1",
        "case_type": "theft",
        "officers": 4,
        "expected_arrival": T0.isoformat(),
        "session_minutes": 60,
        "persons": [
            {
                "id": "S1",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                "brought_in_at": (T0 - timedelta(minutes=50)).isoformat(),
                "legal_basis": "criminal_summons",
            }
        ],
    }
    body.update(overrides)
    return BookingIn.model_validate(body)


@st.composite
def requests(draw: st.DrawFn) -> BookingIn:
    """Generated bookings as stations would send them, in time zones from -12 h to +14 h."""
    booking = draw(bookings(count_max=1))[0]
    zone = timezone(timedelta(minutes=15 * draw(st.integers(-48, 56))))

    def sent(minute: int | None) -> str | None:
        return None if minute is None else from_minute(minute).astimezone(zone).isoformat()

    return BookingIn.model_validate(
        {
            "station": draw(st.none() | st.just(booking.station)),
            "case_id": booking.case_id,
            "case_type": booking.case_type,
            "officers": max(1, booking.officers),
            "expected_arrival": sent(booking.expected_arrival),
            "session_minutes": booking.session_minutes,
            "needs": {
                "recording": booking.recording,
                "interpreter": booking.interpreter,
                "guardian": draw(st.booleans()),
            },
            "female_staff": booking.female_staff,
            "walk_in": booking.walk_in,
            "waitlist": draw(st.booleans()),
            "van": draw(st.none() | st.just("van-07-gps")),
            "persons": [
                {
                    "id": p.id,
                    "role": p.role.value,
                    "minor": p.minor,
                    "sex": p.sex.value,
                    "brought_in_at": sent(p.brought_in_at),
                    "legal_basis": p.legal_basis.value,
                    # Only suspects are co-suspects (the request model refuses the rest).
                    "co_suspect_group": p.co_suspect_group if p.role == "suspect" else None,
                    "sexual_abuse_victim": p.sexual_abuse_victim,
                    "intoxicated": p.intoxicated,
                    "guardian_at": sent(p.guardian_at),
                    "session_minutes": p.session_minutes,
                }
                for p in booking.persons
            ],
        }
    )


@settings(max_examples=300, deadline=None)
@given(requests())
def test_a_record_round_trips_and_answers_the_request_back_as_sent(sent: BookingIn) -> None:
    record = sent.to_record()
    stored = record.to_json()
    assert json.loads(stored)["version"] == VERSION
    again = BookingRecord.from_json(stored)
    assert again == record
    # GET /bookings/{id} answers ``request`` from the record: byte for byte what was sent.
    assert BookingIn.from_record(again).model_dump_json() == sent.model_dump_json()
    assert again.to_booking("bk-1", "s1") == record.to_booking("bk-1", "s1")


@settings(max_examples=300, deadline=None)
@given(requests())
def test_the_previous_release_bodies_read_as_version_0(sent: BookingIn) -> None:
    legacy = sent.model_dump_json()
    record = BookingRecord.from_json(legacy)
    assert record == sent.to_record()
    assert BookingIn.from_record(record).model_dump_json() == legacy


def test_a_stored_legacy_body_reads_whole() -> None:
    record = BookingRecord.from_json(LEGACY)
    assert record.van == "van-07-gps"
    assert record.waitlist
    assert record.needs == Needs(recording=True, interpreter=False, guardian=True)
    assert record.expected_arrival == T0
    assert record.expected_arrival.utcoffset() == timedelta(hours=8)
    assert record.persons[0].co_suspect_group == "g1"
    booking = record.to_booking("bk-1", "s1")
    # A minor with a guardian coming is ready when the unit arrives (H7).
    assert booking.persons[0].guardian_at == booking.expected_arrival
    assert BookingIn.from_record(record).model_dump_json() == LEGACY


def test_upgrade_fills_what_older_requests_left_out() -> None:
    older = json.loads(LEGACY)
    for key in ("waitlist", "van", "female_staff", "walk_in", "station"):
        del older[key]
    older["needs"] = {"recording": True}
    del older["persons"][0]["co_suspect_group"]
    del older["persons"][0]["guardian_at"]
    upgraded = upgrade(older)
    assert upgraded["version"] == VERSION
    assert upgraded["needs"] == {"recording": True, "interpreter": False, "guardian": False}
    assert (upgraded["waitlist"], upgraded["van"], upgraded["station"]) == (False, None, None)
    assert upgraded["persons"][0]["co_suspect_group"] is None
    record = BookingRecord.from_json(json.dumps(older))
    assert not record.waitlist
    assert record.van is None
    assert record.persons[0].guardian_at is None
    # Upgrading is for version 0 only; a version 1 record is read as it is.
    assert BookingRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "not json", "not JSON"),
        (lambda d: "[]", "not a JSON object"),
        (lambda d: {**d, "version": 2}, "version 2"),
        (lambda d: {**d, "version": "1"}, "version '1'"),
        (lambda d: {**d, "colour": "red"}, "unknown keys ['colour']"),
        (lambda d: {k: v for k, v in d.items() if k != "van"}, "van: missing"),
        (lambda d: {**d, "officers": True}, "officers: int expected"),
        (lambda d: {**d, "officers": 0}, "officers: 0 is not a positive number"),
        (lambda d: {**d, "case_id": None}, "case_id: str expected, got null"),
        (lambda d: {**d, "expected_arrival": "2026-03-02T09:00:00"}, "without a time zone"),
        (lambda d: {**d, "expected_arrival": "tomorrow"}, "not an ISO 8601 time"),
        (lambda d: {**d, "needs": {"recording": 1}}, "needs.recording: bool expected"),
        (lambda d: {**d, "persons": []}, "persons: at least one person"),
        (
            lambda d: {**d, "persons": [{**d["persons"][0], "sex": "x"}]},
            "persons[0].sex: 'x' is not a known value",
        ),
        (
            lambda d: {**d, "persons": [d["persons"][0], d["persons"][0]]},
            "each person id must appear once",
        ),
        (
            lambda d: {**d, "expected_arrival": "2026-03-02T07:00:00+08:00"},
            "persons[0].brought_in_at: after expected_arrival",
        ),
    ],
)
def test_anything_else_is_refused_naming_the_field(change: Any, message: str) -> None:
    base = json.loads(request().to_record().to_json())
    changed = change(base)
    text = changed if isinstance(changed, str) else json.dumps(changed)
    with pytest.raises(RecordError) as refused:
        BookingRecord.from_json(text)
    assert message in str(refused.value)


def test_a_change_keeps_the_record_consistent() -> None:
    record = request().to_record()
    later = record.changed(BookingChange(expected_arrival=T0 + timedelta(hours=1), officers=2))
    assert (later.officers, later.expected_arrival) == (2, T0 + timedelta(hours=1))
    assert later.persons == record.persons
    assert BookingChange(officers=2, needs=Needs()).names() == ["needs", "officers"]
    with pytest.raises(RecordError, match="brought_in_at: after expected_arrival"):
        record.changed(BookingChange(expected_arrival=T0 - timedelta(hours=1)))


def test_a_booking_stored_by_the_previous_release_is_served_and_planned_as_before(
    deployment: Deployment,
) -> None:
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).astimezone(SHANGHAI).replace(microsecond=0) + timedelta(hours=1)
    status, created = http_request("POST", f"{api}/bookings", s1, booking_body(arrival))
    assert status == 201, created
    url = f"{api}/bookings/{created['id']}"
    status, before = http_get(url, s1)
    assert status == 200, before
    assert before["request"]["expected_arrival"] == arrival.isoformat()
    assert deployment.central is not None
    deployment.central.kill()

    # What the previous release wrote for this request.
    legacy = BookingIn.model_validate(before["request"]).model_dump_json()
    assert "version" not in json.loads(legacy)
    conn = sqlite3.connect(deployment.db)
    with conn:
        conn.execute("UPDATE bookings SET body = ? WHERE id = ?", (legacy, created["id"]))
    conn.close()

    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    status, after = http_get(url, s1)
    assert status == 200, after
    assert after == before
    status, changed = http_request("PATCH", url, s1, {"officers": 6})
    assert status == 200, changed
    assert changed["request"] == {**before["request"], "officers": 6}
    conn = sqlite3.connect(deployment.db)
    body = conn.execute("SELECT body FROM bookings WHERE id = ?", (created["id"],)).fetchone()[0]
    conn.close()
    assert json.loads(body)["version"] == VERSION
    status, arrived = http_request("POST", f"{url}/arrived", s1, {"at": arrival.isoformat()})
    assert status == 200, arrived
    assert arrived["status"] == "arrived"
