"""The pages as the centre uses them together: a booking made through a station's form shows on
the duty room's timeline, live; and a station officer, on every page they can open, meets none
of another station's bookings, people or alarms, in the page or in any answer it loads."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from typing import Any

from playwright.sync_api import Error, Page, Response

from central.auth import Role
from tests.browser import Browser
from tests.central.web_client import PASSWORD, add_user
from tests.conftest import Deployment
from tests.support import http_get, http_request, wait_until
from tests.test_devices_end_to_end import CabinetSimulator, _agent_config
from tests.test_devices_end_to_end import cabinet_board as cabinet_board
from tests.web.support import signed_in
from tests.web.test_wall_panels import WALL_ENV, ZONE, _rooms

ENV = {**WALL_ENV, "PRECINCT_PLAN_INTERVAL": "0", "PRECINCT_IMPROVE_INTERVAL": "0"}


def _local(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def _sign_in_at(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_page()
    page.goto(f"{base}/signin?lang=zh")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
    return page


def test_a_booking_made_through_the_form_shows_on_the_rooms_timeline(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(ENV)
    _rooms(deployment, deployment.token(Role.CENTRE))
    # The duty room on localhost, the station on 127.0.0.1: two sites, two sessions, one browser.
    add_user(deployment.db, "duty.li", Role.CENTRE)
    wall = _sign_in_at(browser, deployment.base.replace("127.0.0.1", "localhost"), "duty.li")
    wall.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")

    station = signed_in(browser, deployment, "wang.s1", Role.STATION, "s1")
    station.goto(f"{deployment.base}/book")
    arrival = datetime.now(ZONE).replace(second=0, microsecond=0) + timedelta(minutes=10)
    station.fill('[name="case_id"]', "C-FORM-1")
    station.fill('[name="case_type"]', "盗窃")
    station.fill('[name="expected_arrival"]', _local(arrival))
    station.fill('[name="persons.0.id"]', "S1")
    station.fill('[name="persons.0.brought_in_at"]', _local(arrival - timedelta(minutes=30)))
    station.click("button.primary[type=submit]")
    station.locator(".card-booked").wait_for()
    status, mine = http_get(
        f"{deployment.base}/api/v1/bookings", deployment.token(Role.STATION, "s1")
    )
    assert status == 200, mine
    (booking,) = [b for b in mine if b["case_id"] == "C-FORM-1"]
    session = next(a for a in booking["assignments"] if a["kind"] == "session")

    bar = wall.locator(
        f"#rooms-timeline .tl-row[data-room='{session['room']}'] "
        f".bar-planned[data-booking='{booking['id']}']"
    ).first
    bar.wait_for()
    assert booking["id"] in (bar.get_attribute("title") or "")
    browser.screenshot(station, "booked")
    browser.screenshot(wall, "on-the-wall")
    browser.assert_only_local()


def _watch(page: Page, seen: list[Response]) -> None:
    def record(response: Response) -> None:
        seen.append(response)

    page.on("response", record)


def _bodies(responses: list[Response]) -> list[str]:
    """The text of every answer the pages loaded from the centre, the endless stream aside."""
    texts = []
    for response in responses:
        media = response.headers.get("content-type", "")
        if "event-stream" in media or not ("json" in media or "html" in media):
            continue
        # A page that navigated away before the body came leaves nothing to read.
        with contextlib.suppress(Error):
            texts.append(response.text())
    return texts


def test_a_station_meets_nothing_of_another_station_on_any_page(
    deployment: Deployment,
    browser: Browser,
    cabinet_board: CabinetSimulator,
    tmp_path: Any,
) -> None:
    deployment.start_central(ENV)
    centre = deployment.token(Role.CENTRE)
    _rooms(deployment, centre)
    north, south = deployment.token(Role.STATION, "s1"), deployment.token(Role.STATION, "s2")
    api = f"{deployment.base}/api/v1"
    arrival = datetime.now(ZONE).replace(microsecond=0) + timedelta(minutes=10)

    def book(token: str, case: str) -> dict[str, Any]:
        from tests.central.test_bookings_api import booking_body

        status, made = http_request(
            "POST", f"{api}/bookings", token, booking_body(arrival, case_id=case)
        )
        assert status == 201, made
        answer: dict[str, Any] = made
        return answer

    mine = book(north, "CASE-NORTH-1")
    theirs = book(south, "CASE-SOUTH-77")
    # The south's people are inside and one wears a band; its agent's cabinet raises an alarm.
    url = f"{api}/bookings/{theirs['id']}"
    assert http_request("POST", f"{url}/verified", south, {"code": theirs["code"]})[0] == 200
    assert http_request("POST", f"{url}/entered", south, {})[0] == 200
    assert (
        http_request("POST", f"{url}/persons/S2/band", centre, {"band": "band-south-9"})[0] == 201
    )
    config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", cabinet_board.port)
    config.write_text(
        config.read_text()
        .replace('station = "s1"', 'station = "s2"')
        .replace("station-1-files", "s2-files")
    )
    deployment.start_agent("s2-files", station="s2", extra=["--config", str(config)])

    seen: list[Response] = []
    page = signed_in(browser, deployment, "wang.s1", Role.STATION, "s1")
    _watch(page, seen)
    for path in ("/", "/bookings/mine", "/book", "/wall", "/door", "/docs"):
        page.goto(f"{deployment.base}{path}")
        if path != "/bookings/mine":  # its stream never lets the network go idle
            page.wait_for_load_state("networkidle")
        browser.screenshot(page, path.strip("/").replace("/", "-") or "home")
    page.goto(f"{deployment.base}/bookings/mine")
    page.locator(f"[data-booking='{mine['id']}']").first.wait_for()

    # While the north's page is open, the south's cabinet door is forced: an alarm of s2.
    def alarm_of_south() -> bool:
        status, alarms = http_get(f"{api}/alarms?station=s2", centre)
        return status == 200 and bool(alarms["items"])

    def cabinet_online() -> bool:
        status, devices = http_get(f"{api}/devices?agent=s2-files", centre)
        return status == 200 and any(d["online"] for d in devices)

    wait_until(cabinet_online, 20, "the south's cabinet")
    cabinet_board.send("force 3")
    wait_until(alarm_of_south, 20, "the south's alarm")
    page.reload()
    page.locator(f"[data-booking='{mine['id']}']").first.wait_for()
    browser.screenshot(page, "after-the-south-alarm")

    south_marks = [theirs["id"], theirs["code"], "CASE-SOUTH-77", "band-south-9", "s2-files"]
    texts = [page.content(), *_bodies(seen)]
    assert "CASE-NORTH-1" in page.content()
    for text in texts:
        for mark in south_marks:
            assert mark not in text, (mark, text[:500])
    # Pages a station may not open said so, and nothing else.
    statuses = {r.url.split("?")[0].removeprefix(deployment.base): r.status for r in seen}
    assert statuses.get("/wall") == 403
    assert statuses.get("/door") == 403
    assert json.dumps(texts).count("CASE-NORTH-1") >= 1
    browser.assert_only_local()
