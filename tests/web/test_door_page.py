"""The fast-lane door in Chromium against a real central: a unit's code typed at the desk, its
card, verify, a band for each person (one refused: someone else wears it), entry with the
arrival → entry time, all from the keyboard; a strap opened on a band bound at the door shows
on that person's row; the arrivals list shows a van's ETA and flags it late when its position
comes in; a station officer may not use the door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from central.auth import Role
from tests.browser import Browser
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.central.test_vans_api import CENTRE, _van
from tests.conftest import Deployment
from tests.emulated_bands import start_bands
from tests.support import http_get, http_request
from tests.web.support import signed_in

ZONE = "Asia/Shanghai"


def _start(deployment: Deployment, env: dict[str, str] | None = None) -> dict[str, str]:
    deployment.start_central(
        {"PRECINCT_PLAN_INTERVAL": "0", "PRECINCT_TIMEZONE": ZONE, **(env or {})}
    )
    tokens = {
        "centre": deployment.token(Role.CENTRE, name="setup"),
        "s1": deployment.token(Role.STATION, "s1"),
    }
    for room in ROOMS:
        status, _ = http_request("POST", f"{deployment.base}/api/v1/rooms", tokens["centre"], room)
        assert status == 201
    return tokens


def _book(deployment: Deployment, token: str, minutes: int, **extra: Any) -> dict[str, Any]:
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)
    status, booking = http_request(
        "POST", f"{deployment.base}/api/v1/bookings", token, booking_body(arrival, **extra)
    )
    assert status == 201, booking
    found: dict[str, Any] = booking
    return found


def _focused(page: Page, element_id: str) -> None:
    page.wait_for_function(
        f"document.activeElement && document.activeElement.id === {element_id!r}"
    )


def _door(browser: Browser, deployment: Deployment) -> Page:
    page = signed_in(browser, deployment, "desk.wang", Role.CENTRE)
    page.goto(f"{deployment.base}/door")
    page.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")
    return page


def _find(page: Page, code: str) -> None:
    """Type the code as a scanner does (then Enter) and wait for the card."""
    _focused(page, "code")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.locator("#booking-card").wait_for()


def _bind(page: Page, field: str, band: str) -> None:
    _focused(page, field)
    page.keyboard.type(band)
    page.keyboard.press("Enter")


def test_the_desk_finds_verifies_binds_and_enters_a_unit_by_keyboard(
    deployment: Deployment, browser: Browser
) -> None:
    tokens = _start(deployment)
    booking = _book(deployment, tokens["s1"], 5)
    other = _book(deployment, tokens["s1"], 60, case_id="C-2026-200")
    api = f"{deployment.base}/api/v1/bookings"
    # The other unit is inside already, its S1 wearing band-002.
    assert (
        http_request(
            "POST", f"{api}/{other['id']}/verified", tokens["s1"], {"code": other["code"]}
        )[0]
        == 200
    )
    assert (
        http_request(
            "POST", f"{api}/{other['id']}/persons/S1/band", tokens["s1"], {"band": "band-002"}
        )[0]
        == 201
    )
    page = _door(browser, deployment)
    browser.screenshot(page, "empty")

    # An unknown code: said beside the field, the field ready for the next try.
    _focused(page, "code")
    page.keyboard.type("zzzz2222")
    page.keyboard.press("Enter")
    page.locator("#code-error").wait_for()
    assert "没有预约码为 ZZZZ2222 的预约" in page.locator("#code-error").inner_text()
    browser.screenshot(page, "unknown-code")

    _find(page, f" {booking['code'].lower()} ")
    card = page.locator("#booking-card")
    assert "案件 C-2026-118" in card.locator("h2").inner_text()
    assert card.get_attribute("data-status") == "confirmed"
    assert "刑事传唤（12 小时）" in page.locator("#person-1").inner_text()
    assert "剩余" in page.locator("#person-1-state").inner_text()
    _focused(page, "verify")
    browser.screenshot(page, "card")

    page.keyboard.press("Enter")
    page.locator("#booking-card[data-status=verified]").wait_for()
    timer = page.locator("#timer")
    started = timer.inner_text()
    assert started.startswith("00:0")
    # The arrival → entry timer counts on screen.
    page.wait_for_function(
        "text => document.getElementById('timer').textContent !== text", arg=started
    )
    browser.screenshot(page, "verified")

    _bind(page, "band-1", "band-001")
    page.locator("#person-1-state .band-id").wait_for()
    _bind(page, "band-2", "band-002")
    error = page.locator("#band-2-error")
    error.wait_for()
    assert f"腕带 band-002 正由预约 {other['id']} 的 S1 佩戴。" in error.inner_text()
    assert page.locator("#band-2").get_attribute("aria-invalid") == "true"
    browser.screenshot(page, "band-refused")
    # The refused band is selected in the field: the next scan replaces it.
    _bind(page, "band-2", "band-003")
    page.locator("#person-2-state .band-id").wait_for()
    _bind(page, "band-3", "band-004")
    page.locator("#person-3-state .band-id").wait_for()
    _focused(page, "enter")
    browser.screenshot(page, "bound")

    page.keyboard.press("Enter")
    page.locator("#booking-card[data-status=in_area]").wait_for()
    measured = float(page.locator("#entry-time").get_attribute("data-seconds") or "-1")
    assert measured >= 1  # the timer ran for at least a second
    assert "入区时测得" in page.locator(".timer").inner_text()
    # Back on the code field for the next unit.
    _focused(page, "code")
    browser.screenshot(page, "entered")
    print(f"door: arrival to entry {measured:.1f} s through the page")

    found = http_get(f"{api}/{booking['id']}", tokens["centre"])[1]
    assert found["status"] == "in_area"
    persons = http_get(f"{deployment.base}/api/v1/persons?in_area=true", tokens["centre"])[1]
    assert {p["person"]: p["band"]["band"] for p in persons if p["booking"] == booking["id"]} == {
        "S1": "band-001",
        "S2": "band-003",
        "W1": "band-004",
    }
    browser.assert_only_local()


def test_a_strap_opened_on_a_band_bound_at_the_door_shows_on_that_persons_row(
    deployment: Deployment, browser: Browser, tmp_path: Path
) -> None:
    tokens = _start(
        deployment,
        {
            "PRECINCT_ALARM_INTERVAL": "0.2",
            "PRECINCT_PRESENCE_INTERVAL": "0.5",
            "PRECINCT_PRESENCE_MISSED": "6",
        },
    )
    booking = _book(deployment, tokens["s1"], 2)
    page = _door(browser, deployment)
    _find(page, booking["code"])
    _focused(page, "verify")  # the card takes the keyboard to Verify once it has settled
    page.keyboard.press("Enter")
    page.locator("#booking-card[data-status=verified]").wait_for()
    _bind(page, "band-1", "band-001")
    page.locator("#person-1-state .band-id").wait_for()

    bands = start_bands(tmp_path, 2, reclose_after=120)
    try:
        config = bands.agent_config(tmp_path / "agent.toml", "wristbands-door", "W-1")
        deployment.start_agent("centre-door", station="centre", extra=["--config", str(config)])
        # The scanner places the band: the row says where it is heard (a live refresh).
        page.wait_for_function(
            "document.getElementById('person-1-state').textContent.includes('W-1')",
            timeout=30_000,
        )
        bands.open_next_strap()  # band 1's strap opens
        alarm = page.locator("#person-1-state .alarm[data-kind=strap_opened]")
        alarm.wait_for(timeout=30_000)
        assert "腕带被打开" in alarm.inner_text()
        assert page.locator("#person-2-state .alarm").count() == 0
        browser.screenshot(page, "strap-opened")
    finally:
        bands.stop()
    browser.assert_only_local()


def test_the_arrivals_list_shows_a_vans_eta_and_flags_it_late_live(
    deployment: Deployment, browser: Browser
) -> None:
    tokens = _start(
        deployment,
        {"PRECINCT_CENTRE_LAT": str(CENTRE[0]), "PRECINCT_CENTRE_LON": str(CENTRE[1])},
    )
    late = _book(deployment, tokens["s1"], 10, van="van-07-gps")
    page = _door(browser, deployment)
    row = page.locator(f"#arrivals tr[data-booking='{late['id']}']")
    row.wait_for()
    assert "准时" in row.locator(".flag").inner_text()
    browser.screenshot(page, "expected")
    # The van reports a fix some 20 km out at 10 m/s: its position events refresh the list.
    _van(deployment, "van-07", "s1", CENTRE[0] + 0.18, datetime.now(UTC).replace(microsecond=0))
    page.locator(f"#arrivals tr.late[data-booking='{late['id']}']").wait_for()
    words = row.inner_text()
    assert "晚到" in words
    assert "van-07-gps" in words
    assert "公里" in words
    browser.screenshot(page, "late")
    browser.assert_only_local()


def test_a_station_officer_may_not_use_the_door(deployment: Deployment, browser: Browser) -> None:
    _start(deployment)
    page = signed_in(browser, deployment, "officer.li", Role.STATION, "s1")
    answer = page.goto(f"{deployment.base}/door")
    assert answer is not None
    assert answer.status == 403
    assert page.locator("#code").count() == 0
    browser.screenshot(page)
    browser.assert_only_local()
