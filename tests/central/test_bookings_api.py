"""Bookings through the real central service: placed at once, refused with the rule, re-planned
when a room breaks, walked through the fast lane, and rebuilt after the central is killed."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from central.auth import Role
from scheduling.rooms import Equipment, RoomType
from tests.conftest import Deployment
from tests.support import http_get, http_request, metric_value, wait_until

ROOMS = [
    {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
    {"id": "I-2", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
    {"id": "Q-1", "type": "inquiry", "capacity": 1, "equipment": ["recording"]},
    {"id": "W-1", "type": "waiting", "capacity": 4, "equipment": []},
    {"id": "W-2", "type": "waiting", "capacity": 4, "equipment": []},
]


def at(moment: datetime) -> str:
    return moment.isoformat()


def booking_body(arrival: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_id": "C-2026-118",
        "case_type": "theft",
        "officers": 4,
        "expected_arrival": at(arrival),
        "session_minutes": 60,
        "needs": {"recording": True},
        "persons": [
            {
                "id": "S1",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                "brought_in_at": at(arrival - timedelta(minutes=50)),
                "legal_basis": "criminal_summons",
                "co_suspect_group": "g1",
            },
            {
                "id": "S2",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                "brought_in_at": at(arrival - timedelta(minutes=50)),
                "legal_basis": "criminal_summons",
                "co_suspect_group": "g1",
            },
            {
                "id": "W1",
                "role": "witness",
                "minor": False,
                "sex": "female",
                "brought_in_at": at(arrival - timedelta(minutes=30)),
                "legal_basis": "voluntary",
            },
        ],
    }
    body.update(overrides)
    return body


def sessions(booking: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        a["person"]: (a["room"], a["start"], a["end"])
        for a in booking["assignments"]
        if a["kind"] == "session"
    }


def no_room_double_booked(entries: list[dict[str, Any]]) -> None:
    by_room: dict[str, list[tuple[str, str]]] = {}
    for entry in entries:
        if entry["kind"] == "session":
            by_room.setdefault(entry["room"], []).append((entry["start"], entry["end"]))
    for room, spans in by_room.items():
        spans.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            assert e1 <= s2, (room, spans)


def test_booking_lifecycle_replan_and_restart(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE, name="duty")
    s1 = deployment.token(Role.STATION, "s1", name="officer wang")
    s2 = deployment.token(Role.STATION, "s2")
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    # Placed at once: every person a session, the co-suspects in different rooms or times.
    status, booking = http_request("POST", f"{api}/bookings", s1, booking_body(arrival))
    assert status == 201, booking
    assert booking["status"] == "confirmed"
    assert booking["station"] == "s1"
    assert len(booking["code"]) == 8
    placed = sessions(booking)
    assert set(placed) == {"S1", "S2", "W1"}
    assert placed["W1"][0] == "Q-1"
    assert {placed["S1"][0], placed["S2"][0]} <= {"I-1", "I-2"}
    assert booking["unassigned"] == []
    booking_id = booking["id"]

    # Operations watch figures, not persons.
    ops = deployment.token(Role.OPS)
    for path in (
        f"bookings/{booking_id}",
        "bookings",
        f"schedule?date={arrival.date()}",
        "custody",
        "plan-events",
    ):
        assert http_get(f"{api}/{path}", ops)[0] == 403, path
    assert http_get(f"{api}/reports/fast-lane", ops)[0] == 200

    # Scope: another station neither sees nor books for s1.
    assert http_get(f"{api}/bookings/{booking_id}", s2)[0] == 403
    assert (
        http_request("POST", f"{api}/bookings", s2, booking_body(arrival, station="s1"))[0] == 403
    )
    assert [b["id"] for b in http_get(f"{api}/bookings", s2)[1]] == []

    # Bad input: a clear 422, nothing stored.
    late_clock = booking_body(arrival)
    late_clock["persons"][0]["brought_in_at"] = at(arrival + timedelta(minutes=5))
    status, error = http_request("POST", f"{api}/bookings", s1, late_clock)
    assert status == 422
    assert "brought_in_at" in str(error)
    assert (
        http_request("POST", f"{api}/bookings", s1, {**booking_body(arrival), "persons": []})[0]
        == 422
    )
    assert (
        http_request("POST", f"{api}/bookings", s1, {**booking_body(arrival), "priority": 1})[0]
        == 422
    )

    # A rule that cannot be met: 409 naming it; nothing stored.
    minor = booking_body(
        arrival,
        case_id="C-2026-200",
        persons=[
            {
                "id": "M1",
                "role": "witness",
                "minor": True,
                "sex": "female",
                "brought_in_at": at(arrival - timedelta(minutes=20)),
                "legal_basis": "voluntary",
            }
        ],
    )
    status, refused = http_request("POST", f"{api}/bookings", s1, minor)
    assert status == 409
    assert refused["persons"][0]["rule"] in ("H3", "H7")
    assert len(http_get(f"{api}/bookings", s1)[1]) == 1

    # The days' schedules list the plan (sessions can start after midnight when the test runs
    # late in the day: the centre's zone here is UTC); no room is double-booked.
    day = arrival.date().isoformat()
    schedule: list[dict[str, Any]] = []
    for session_day in sorted({start[:10] for _room, start, _end in placed.values()}):
        status, entries = http_get(f"{api}/schedule?date={session_day}", s1)
        assert status == 200
        schedule += entries
    assert {(e["person"], e["room"]) for e in schedule if e["kind"] == "session"} == {
        (p, r[0]) for p, r in placed.items()
    }

    # The room of S1's session breaks: S1 moves, the others stay (S5); s1 is told.
    broken = placed["S1"][0]
    status, _ = http_request(
        "PATCH",
        f"{api}/rooms/{broken}",
        centre,
        {"state": "out_of_order", "reason": "recorder fault"},
    )
    assert status == 200
    status, moved = http_get(f"{api}/bookings/{booking_id}", s1)
    after = sessions(moved)
    assert after["S1"][0] != broken
    assert after["W1"] == placed["W1"]
    status, events = http_get(f"{api}/plan-events", s1)
    assert status == 200
    changed = [e for e in events if e["kind"] == "plan_changed"]
    assert changed
    assert changed[-1]["booking"] == booking_id
    assert changed[-1]["body"]["cause"] == "room_changed"
    assert http_get(f"{api}/plan-events", s2)[1] == []
    http_request("PATCH", f"{api}/rooms/{broken}", centre, {"state": "in_service"})

    # Custody clocks: suspects under a criminal summons, the witness has none.
    status, clocks = http_get(f"{api}/custody", centre)
    assert status == 200
    mine = {c["person"]: c for c in clocks if c["booking"] == booking_id}
    assert set(mine) == {"S1", "S2"}
    assert mine["S1"]["level"] == "green"
    assert mine["S1"]["remaining_minutes"] > 10 * 60
    assert http_get(f"{api}/custody", s2)[1] == []

    # The central is killed: the plan comes back from the store and is not double-booked.
    assert deployment.central is not None
    deployment.central.kill()
    deployment.start_central()
    status, again = http_get(f"{api}/bookings/{booking_id}", s1)
    assert status == 200
    assert sessions(again) == after
    second = booking_body(arrival, case_id="C-2026-119")
    status, other = http_request("POST", f"{api}/bookings", s1, second)
    assert status == 201, other
    no_room_double_booked(http_get(f"{api}/schedule?date={day}", centre)[1])

    # The fast lane: arrival, a wrong code, the right one, entry.
    now = datetime.now(UTC)
    assert (
        http_request("POST", f"{api}/bookings/{booking_id}/arrived", s1, {"at": at(now)})[0] == 200
    )
    assert http_request("POST", f"{api}/bookings/{booking_id}/entered", s1, {})[0] == 409
    assert (
        http_request("POST", f"{api}/bookings/{booking_id}/verified", s1, {"code": "WRONG123"})[0]
        == 409
    )
    assert http_request("POST", f"{api}/bookings/verify", centre, {"code": "ZZZZ9999"})[0] == 404
    assert http_request("POST", f"{api}/bookings/verify", s2, {"code": booking["code"]})[0] == 403
    status, verified = http_request(
        "POST", f"{api}/bookings/verify", centre, {"code": booking["code"].lower()}
    )
    assert status == 200, verified
    assert verified["status"] == "verified"
    status, entry = http_request(
        "POST", f"{api}/bookings/{booking_id}/entered", s1, {"at": at(now + timedelta(minutes=4))}
    )
    assert status == 200
    assert entry["arrival_to_entry_seconds"] == 240

    # Inside the area a booking is not cancelled: its rooms are in use.
    assert http_request("DELETE", f"{api}/bookings/{booking_id}", s1, None)[0] == 409

    # Sessions and exit; the booking closes when everyone is out.
    base = f"{api}/bookings/{booking_id}/persons"
    for person in ("S1", "S2", "W1"):
        assert http_request("POST", f"{base}/{person}/session-started", s1, {})[0] == 200
        assert http_request("POST", f"{base}/{person}/session-started", s1, {})[0] == 409
        assert http_request("POST", f"{base}/{person}/session-ended", s1, {})[0] == 200
    assert http_request("POST", f"{base}/nobody/exited", s1, {})[0] == 404
    for person in ("S1", "S2", "W1"):
        status, last = http_request("POST", f"{base}/{person}/exited", s1, {})
        assert status == 200
    assert last["status"] == "exited"
    assert http_request("POST", f"{api}/bookings/{booking_id}/arrived", s1, {})[0] == 409

    status, report = http_get(f"{api}/reports/fast-lane", centre)
    assert status == 200
    assert report["booked"]["count"] == 1
    assert report["booked"]["median_seconds"] == 240
    assert report["walk_in"]["count"] == 0
    _status, text = http_get(f"{deployment.base}/metrics")
    assert (
        metric_value(text, "precinct_fast_lane_arrival_to_entry_seconds_count", 'lane="booked"')
        == 1
    )
    assert metric_value(text, "precinct_plan_violations_total") == 0


def test_cancelled_booking_frees_the_room_for_the_waitlist(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    api = f"{deployment.base}/api/v1"
    assert (
        http_request(
            "POST",
            f"{api}/rooms",
            centre,
            {
                "id": "I-1",
                "type": RoomType.INTERROGATION,
                "capacity": 1,
                "equipment": [Equipment.RECORDING],
            },
        )[0]
        == 201
    )
    arrival = datetime.now(UTC) + timedelta(hours=1)

    def one_suspect(case: str, hours: float) -> dict[str, Any]:
        return {
            "station": "s1",
            "case_id": case,
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": at(arrival),
            "session_minutes": 120,
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": at(arrival - timedelta(hours=hours)),
                    "legal_basis": "administrative",
                }
            ],
        }

    status, first = http_request("POST", f"{api}/bookings", centre, one_suspect("A", 5))
    assert status == 201, first
    # 8 h limit, brought in 5 h before arrival: only the first slot would have done.
    status, refused = http_request("POST", f"{api}/bookings", centre, one_suspect("B", 5))
    assert status == 409
    assert refused["persons"][0]["rule"] == "H5"
    status, waiting = http_request(
        "POST", f"{api}/bookings", centre, {**one_suspect("B", 5), "waitlist": True}
    )
    assert status == 201
    assert waiting["status"] == "waitlisted"
    assert waiting["unassigned"][0]["rule"] == "H5"
    status, cancelled = http_request("DELETE", f"{api}/bookings/{first['id']}", centre, None)
    assert status == 200
    assert cancelled["status"] == "cancelled"
    status, promoted = http_get(f"{api}/bookings/{waiting['id']}", centre)
    assert promoted["status"] == "confirmed"
    assert [a["room"] for a in promoted["assignments"]] == ["I-1"]


def test_planning_jobs_release_no_shows_and_escalate_clocks(deployment: Deployment) -> None:
    """The bookings are made while the jobs are off; the central is killed and started with
    them on: what they act on comes from the store, so nothing is lost across the restart."""
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    now = datetime.now(UTC)

    def suspect_booking(case: str, arrival: datetime, held: timedelta) -> dict[str, Any]:
        return {
            "case_id": case,
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": at(arrival),
            "session_minutes": 60,
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": at(arrival - held),
                    "legal_basis": "criminal_summons",
                }
            ],
        }

    status, missing = http_request(
        "POST",
        f"{api}/bookings",
        s1,
        # Minutes late already (a booking further in the past is refused as a mistake).
        suspect_booking("late", now - timedelta(minutes=3), timedelta(minutes=30)),
    )
    assert status == 201, missing
    status, long_held = http_request(
        "POST",
        f"{api}/bookings",
        s1,
        suspect_booking("held", now + timedelta(minutes=5), timedelta(hours=7)),
    )
    assert status == 201, long_held
    assert deployment.central is not None
    time.sleep(1.5)
    assert http_get(f"{api}/plan-events", s1)[1] == []
    deployment.central.kill()
    deployment.start_central({"PRECINCT_PLAN_INTERVAL": "0.3", "PRECINCT_NO_SHOW_GRACE": "1"})

    def events() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = http_get(f"{api}/plan-events", s1)[1]
        return found

    wait_until(lambda: any(e["kind"] == "no_show" for e in events()), 10, "a no-show release")
    assert http_get(f"{api}/bookings/{missing['id']}", s1)[1]["status"] == "no_show"
    wait_until(
        lambda: any(
            e["kind"] == "custody_level" and e["booking"] == long_held["id"] for e in events()
        ),
        10,
        "a custody level event",
    )
    level = next(e for e in events() if e["kind"] == "custody_level")
    assert level["body"]["level"] == "yellow"  # 7 h of 12
    assert level["person"] == "X"
    # Recorded once: the level has not changed since.
    time.sleep(1)
    assert len([e for e in events() if e["kind"] == "custody_level"]) == 1
    _status, text = http_get(f"{deployment.base}/metrics")
    assert metric_value(text, "precinct_custody_persons", 'level="yellow"') == 1
    assert metric_value(text, "precinct_no_shows_total") == 1


def test_a_walk_in_enters_without_a_code_and_is_reported_apart(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    now = datetime.now(UTC)
    body = booking_body(now, station="s2", walk_in=True, case_id="W-1")
    status, walk_in = http_request("POST", f"{api}/bookings", centre, body)
    assert status == 201, walk_in
    assert walk_in["walk_in"] is True
    booking = f"{api}/bookings/{walk_in['id']}"
    assert http_request("POST", f"{booking}/arrived", centre, {"at": at(now)})[0] == 200
    status, entry = http_request(
        "POST", f"{booking}/entered", centre, {"at": at(now + timedelta(minutes=25))}
    )
    assert status == 200, entry
    assert entry["arrival_to_entry_seconds"] == 1500
    status, report = http_get(
        f"{api}/reports/fast-lane?from={at(now - timedelta(hours=1))}"
        f"&to={at(now + timedelta(hours=1))}".replace("+", "%2B"),
        centre,
    )
    assert status == 200, report
    assert (report["walk_in"]["count"], report["walk_in"]["median_seconds"]) == (1, 1500)
    assert report["booked"]["count"] == 0
    assert (
        http_get(
            f"{api}/reports/fast-lane?from={at(now)}&to={at(now)}".replace("+", "%2B"), centre
        )[0]
        == 422
    )
    _status, text = http_get(f"{deployment.base}/metrics")
    assert (
        metric_value(text, "precinct_fast_lane_arrival_to_entry_seconds_count", 'lane="walk_in"')
        == 1
    )


def test_a_changed_booking_is_planned_again(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    s1 = deployment.token(Role.STATION, "s1")
    s2 = deployment.token(Role.STATION, "s2")
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    status, booking = http_request("POST", f"{api}/bookings", s1, booking_body(arrival))
    assert status == 201, booking
    url = f"{api}/bookings/{booking['id']}"
    later = arrival + timedelta(hours=2)
    status, changed = http_request("PATCH", url, s1, {"expected_arrival": at(later)})
    assert status == 200, changed
    assert changed["request"]["expected_arrival"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    starts = [
        datetime.fromisoformat(a["start"]) for a in changed["assignments"] if a["kind"] == "session"
    ]
    assert len(starts) == 3
    assert min(starts) >= later
    assert http_request("PATCH", url, s1, {"persons": []})[0] == 422
    assert http_request("PATCH", url, s1, {"officers": 0})[0] == 422
    assert http_request("PATCH", url, s2, {"officers": 6})[0] == 403
    assert http_request("PATCH", f"{api}/bookings/bk-000000000000", s1, {"officers": 6})[0] == 404
    # Two officers: the three sessions may no longer run two at a time (H6).
    status, fewer = http_request("PATCH", url, s1, {"officers": 2})
    assert status == 200, fewer
    spans = sorted((a["start"], a["end"]) for a in fewer["assignments"] if a["kind"] == "session")
    for (_s, end), (start, _e) in itertools.pairwise(spans):
        assert end <= start


def test_a_refusal_suggests_a_later_arrival_that_would_fit(deployment: Deployment) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    api = f"{deployment.base}/api/v1"
    for room in (
        {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
        {"id": "W-1", "type": "waiting", "capacity": 1, "equipment": []},
    ):
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)

    def suspect(case: str, sex: str) -> dict[str, Any]:
        return {
            "station": "s1",
            "case_id": case,
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": at(arrival),
            "session_minutes": 120,
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": sex,
                    "brought_in_at": at(arrival - timedelta(minutes=30)),
                    "legal_basis": "criminal_summons_serious",
                }
            ],
        }

    assert http_request("POST", f"{api}/bookings", centre, suspect("A", "male"))[0] == 201
    status, second = http_request("POST", f"{api}/bookings", centre, suspect("B", "female"))
    assert status == 201, second
    assert [a["kind"] for a in second["assignments"]] == ["waiting", "session"]
    # A man cannot wait with her, and the only waiting room holds one: refused (H2), with
    # the arrival at which he would no longer meet her there.
    status, refused = http_request("POST", f"{api}/bookings", centre, suspect("C", "male"))
    assert status == 409
    assert refused["persons"][0]["rule"] == "H2"
    suggested = datetime.fromisoformat(refused["suggested_arrival"])
    assert suggested == arrival + timedelta(minutes=120)
    # The partial plan: nobody fits now; he fits from the suggested arrival. Nothing stored.
    assert refused["partial_plan"]["fits_now"] == []
    (later,) = refused["partial_plan"]["fits_later"]
    assert later["person"] == "X"
    assert datetime.fromisoformat(later["arrival"]) == suggested
    assert len(http_request("GET", f"{api}/bookings?limit=50", centre, None)[1]) == 2
    status, taken = http_request(
        "POST",
        f"{api}/bookings",
        centre,
        {**suspect("C", "male"), "expected_arrival": at(suggested)},
    )
    assert status == 201, taken


def test_with_the_waitlist_co_suspects_are_placed_together_or_wait_together(
    deployment: Deployment,
) -> None:
    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    api = f"{deployment.base}/api/v1"
    for room in (
        {"id": "I-1", "type": "interrogation", "capacity": 1, "equipment": ["recording"]},
        {"id": "W-1", "type": "waiting", "capacity": 1, "equipment": []},
    ):
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)

    def suspect(person: str, group: str | None) -> dict[str, Any]:
        return {
            "id": person,
            "role": "suspect",
            "minor": False,
            "sex": "male",
            "brought_in_at": at(arrival - timedelta(minutes=30)),
            "legal_basis": "criminal_summons_serious",
            "co_suspect_group": group,
        }

    def booking(case: str, *persons: dict[str, Any]) -> dict[str, Any]:
        return {
            "station": "s1",
            "case_id": case,
            "case_type": "theft",
            "officers": 4,
            "expected_arrival": at(arrival),
            "session_minutes": 120,
            "persons": list(persons),
            "waitlist": True,
        }

    status, first = http_request(
        "POST", f"{api}/bookings", centre, booking("A", suspect("A1", None))
    )
    assert status == 201, first
    # X could wait in W-1 for I-1, his co-suspect Y could not wait anywhere: both wait.
    status, group = http_request(
        "POST", f"{api}/bookings", centre, booking("B", suspect("X", "g1"), suspect("Y", "g1"))
    )
    assert status == 201, group
    assert group["status"] == "waitlisted"
    assert group["assignments"] == []
    assert sorted(u["person"] for u in group["unassigned"]) == ["X", "Y"]
    # The first booking cancelled, the rooms take both of them.
    assert http_request("DELETE", f"{api}/bookings/{first['id']}", centre, None)[0] == 200
    status, placed = http_request("GET", f"{api}/bookings/{group['id']}", centre, None)
    assert status == 200
    assert placed["status"] == "confirmed"
    assert placed["unassigned"] == []
    sessions = {a["person"] for a in placed["assignments"] if a["kind"] == "session"}
    assert sessions == {"X", "Y"}


def test_hostile_booking_bodies_get_a_clear_4xx(deployment: Deployment) -> None:
    """Whatever a client sends, the answer is 201, or 403, 409 or 422 as a problem with a
    detail: never a 5xx, never a crash of the central."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    deployment.start_central()
    centre = deployment.token(Role.CENTRE)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    valid = booking_body(datetime.now(UTC) + timedelta(hours=2), station="s1")
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(10**12), 10**12)
        | st.floats(allow_nan=False)
        | st.text(max_size=40)
        | st.sampled_from(
            [
                "2026-13-45T99:00:00+08:00",
                "suspect",
                "male",
                "-1",
                "1970-01-01T00:00:00Z",
                "9999-12-31T23:59:59+14:00",
            ]
        )
    )
    json_values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=12,
    )

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        body = json.loads(json.dumps(valid))
        for _ in range(draw(st.integers(1, 3))):
            target = body
            path = draw(
                st.sampled_from(
                    [
                        ("case_id",),
                        ("officers",),
                        ("expected_arrival",),
                        ("session_minutes",),
                        ("needs",),
                        ("persons",),
                        ("persons", 0, "brought_in_at"),
                        ("persons", 0, "role"),
                        ("persons", 0, "legal_basis"),
                        ("persons", 1, "id"),
                        ("persons", 0, "guardian_at"),
                        ("station",),
                        ("extra",),
                    ]
                )
            )
            value = draw(json_values)
            with contextlib.suppress(TypeError, IndexError, KeyError):
                # An earlier mutation may have replaced the container this path goes through.
                for part in path[:-1]:
                    target = target[part]
                target[path[-1]] = value
        return body

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(json_values, mutated()))
    def post(body: Any) -> None:
        status, answer = http_request("POST", f"{api}/bookings", centre, body)
        assert status in (201, 403, 409, 422), (status, answer, body)
        assert status == 201 or (answer["status"] == status and answer["detail"]), answer

    post()
    # NaN and Infinity are read by Python's JSON parser; the 422 must still be valid JSON.
    for url, body in (
        (f"{api}/bookings", float("inf")),
        (f"{api}/rooms", {**ROOMS[0], "id": "X-1", "capacity": float("nan")}),
        (f"{api}/bookings", {**valid, "officers": float("-inf")}),
    ):
        status, answer = http_request("POST", url, centre, body)
        assert status == 422, answer
        assert isinstance(answer["detail"], str)
        assert answer["errors"]
    assert http_get(f"{deployment.base}/healthz")[0] == 200
    _status, text = http_get(f"{deployment.base}/metrics")
    assert metric_value(text, "precinct_plan_violations_total") == 0
