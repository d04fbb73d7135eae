"""Query times through a real central on Asia/Shanghai: a day is the centre's day (a `to` day
counts whole), a date-time with `%2B08:00` or `Z` is that instant, and a time without an offset,
or whose `+` arrived as a space, is a 422 naming the parameter and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from central.auth import Role
from tests.central.test_bookings_api import ROOMS, at, booking_body
from tests.conftest import Deployment
from tests.support import http_get, http_request

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _with_offset(moment: datetime) -> str:
    """``2026-12-05T09:30:00%2B08:00``: the offset's + escaped as a URL needs it."""
    return quote(moment.astimezone(SHANGHAI).isoformat(timespec="seconds"), safe=":")


def _zulu(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _refused(answer: tuple[int, Any], parameter: str, hint: str) -> None:
    status, problem = answer
    assert status == 422, problem
    assert problem["errors"][0]["location"] == f"query.{parameter}"
    assert problem["detail"].startswith(f"query.{parameter}: "), problem
    assert hint in problem["detail"], problem


def test_days_offsets_and_zulu_times_in_queries(deployment: Deployment) -> None:
    deployment.start_central({"PRECINCT_TIMEZONE": "Asia/Shanghai", "PRECINCT_PLAN_INTERVAL": "0"})
    centre = deployment.token(Role.CENTRE)
    admin = deployment.token(Role.ADMIN)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", centre, room)[0] == 201
    now = datetime.now(UTC).replace(microsecond=0)
    status, booking = http_request(
        "POST", f"{api}/bookings", centre, booking_body(now, station="s1", walk_in=True)
    )
    assert status == 201, booking
    url = f"{api}/bookings/{booking['id']}"
    assert http_request("POST", f"{url}/arrived", centre, {"at": at(now)})[0] == 200
    entered = {"at": at(now + timedelta(minutes=20))}
    assert http_request("POST", f"{url}/entered", centre, entered)[0] == 200
    today = now.astimezone(SHANGHAI).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

    def arrivals(query: str) -> int:
        status, report = http_get(f"{api}/reports/fast-lane?{query}", centre)
        assert status == 200, (query, report)
        return int(report["walk_in"]["count"])

    # A day as `from` starts at its first moment in Shanghai; as `to` it counts whole.
    assert arrivals(f"from={today}&to={today}") == 1
    assert arrivals(f"from={yesterday}&to={yesterday}") == 0
    assert arrivals(f"from={tomorrow}&to={tomorrow}") == 0
    assert arrivals(f"to={yesterday}") == 0
    hour = timedelta(hours=1)
    assert arrivals(f"from={_with_offset(now - hour)}&to={_with_offset(now + hour)}") == 1
    assert arrivals(f"from={_zulu(now - hour)}&to={_zulu(now + hour)}") == 1
    assert arrivals(f"from={_zulu(now + timedelta(seconds=1))}&to={tomorrow}") == 0
    status, report = http_get(f"{api}/reports/fast-lane?from={today}&to={today}", centre)
    assert datetime.fromisoformat(report["start"]) == datetime(
        today.year, today.month, today.day, tzinfo=SHANGHAI
    )
    assert datetime.fromisoformat(report["end"]) - datetime.fromisoformat(report["start"]) == (
        timedelta(days=1)
    )

    # The schedule's day, as a day or as any instant on it.
    starts_today = sorted(
        (a["start"], a["person"], a["room"])
        for a in booking["assignments"]
        if datetime.fromisoformat(a["start"]).astimezone(SHANGHAI).date() == today
    )
    for day in (str(today), _with_offset(now), _zulu(now)):
        status, entries = http_get(f"{api}/schedule?date={day}", centre)
        assert status == 200, entries
        assert sorted((e["start"], e["person"], e["room"]) for e in entries) == starts_today

    # The rooms were created today (Shanghai), so a day's `since` shows them, tomorrow's nothing.
    status, page = http_get(f"{api}/audit?since={today}&action=room.created", admin)
    assert status == 200, page
    assert len(page["items"]) == len(ROOMS)
    assert http_get(f"{api}/audit?since={tomorrow}", admin)[1]["items"] == []
    assert http_get(f"{api}/alarms?since={today}", admin)[0] == 200

    # A time without an offset names no moment: refused, naming the parameter and the fix.
    naive = "2026-12-05T09:30:00"
    _refused(http_get(f"{api}/reports/fast-lane?from={naive}", centre), "from", "%2B08:00")
    _refused(http_get(f"{api}/reports/fast-lane?to={naive}", centre), "to", "+08:00")
    _refused(http_get(f"{api}/alarms?since={naive}", admin), "since", "%2B08:00")
    _refused(http_get(f"{api}/audit?since={naive}", admin), "since", "%2B08:00")
    _refused(http_get(f"{api}/schedule?date={naive}", centre), "date", "%2B08:00")
    # "+08:00" unescaped: the URL's "+" is a space, and the answer says so.
    _refused(http_get(f"{api}/alarms?since={naive}+08:00", admin), "since", "arrived as a space")
    _refused(http_get(f"{api}/schedule?date=2026-12-05T09:30", centre), "date", "seconds")
