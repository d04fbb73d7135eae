"""The station's pages in Chromium against a real central: a booking made through the form
shows in My bookings and in the plan; a refusal shows the rule, the partial plan and the
suggested time, and one click books it; a field error shows beside its field; a plan change
pushed by the centre is highlighted on My bookings; station B sees none of station A's
bookings. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from playwright.sync_api import Page

from central.auth import Role
from tests.browser import Browser
from tests.central.book_forms import (
    CENTRAL_ENV,
    ROOMS,
    TIGHT_ROOMS,
    ZONE,
    add_rooms,
    api_booking,
    local,
    next_quarter,
)
from tests.conftest import Deployment
from tests.support import http_get, http_request
from tests.web.support import signed_in


def fill_booking(page: Page, arrival: datetime, case: str = "C-2026-118") -> None:
    """The case and one adult male suspect brought in half an hour before arrival."""
    page.fill('[name="case_id"]', case)
    page.fill('[name="case_type"]', "盗窃")
    page.fill('[name="expected_arrival"]', local(arrival))
    page.fill('[name="persons.0.id"]', "S1")
    page.fill('[name="persons.0.brought_in_at"]', local(arrival - timedelta(minutes=30)))


def focused(page: Page, prop: str) -> str:
    return str(page.evaluate(f"document.activeElement.{prop}"))


def live(page: Page) -> None:
    page.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")


def sign_out(page: Page) -> None:
    page.click("form.signout button")
    page.wait_for_url("**/signin")


def test_a_booking_made_through_the_form_appears_in_my_bookings(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    centre = deployment.token(Role.CENTRE)
    add_rooms(api, centre, ROOMS)
    page = signed_in(browser, deployment, "wang.s1", Role.STATION, "s1")
    assert page.url.endswith("/bookings/mine")
    page.goto(f"{deployment.base}/book")
    arrival = next_quarter()
    fill_booking(page, arrival)
    page.fill('[name="officers"]', "4")

    # A second person, with the keyboard: the new row takes the focus.
    page.focus("[data-add-person]")
    page.keyboard.press("Enter")
    assert page.locator("[data-person-row]").count() == 2
    assert focused(page, "name") == "persons.1.id"
    page.keyboard.type("W1")
    page.select_option('[name="persons.1.role"]', "witness")
    page.select_option('[name="persons.1.sex"]', "female")
    page.select_option('[name="persons.1.legal_basis"]', "voluntary")
    page.fill('[name="persons.1.brought_in_at"]', local(arrival - timedelta(minutes=20)))
    assert page.locator("[data-person-row] .person-number").all_inner_texts() == ["1", "2"]
    browser.screenshot(page, "form")

    started = time.perf_counter()
    page.keyboard.press("Enter")  # from the last field: the form's own submit button
    card = page.locator(".card-booked")
    card.wait_for()
    answered = time.perf_counter() - started
    # The keyboard is taken to the answer (once htmx has settled it into the page).
    page.wait_for_function("document.activeElement && document.activeElement.tagName === 'H2'")
    rooms = dict(
        zip(
            card.locator("tbody th").all_inner_texts(),
            card.locator("td.room").all_inner_texts(),
            strict=True,
        )
    )
    assert rooms["W1"] == "Q-1"
    assert rooms["S1"] in ("I-1", "I-2")
    code = card.locator(".code").inner_text()
    assert len(code) == 8
    assert card.locator("svg.qr").is_visible()
    browser.screenshot(page, "answer")
    print(f"form answered in {answered * 1000:.0f} ms")

    # The plan has it, for the day of the arrival in the centre's zone.
    booking = http_get(f"{api}/bookings", centre)[1][0]
    assert booking["code"] == code
    status, schedule = http_get(f"{api}/schedule?date={arrival.astimezone(ZONE).date()}", centre)
    assert status == 200
    planned = {(e["person"], e["room"]) for e in schedule if e["booking"] == booking["id"]}
    assert ("W1", "Q-1") in planned
    assert ("S1", rooms["S1"]) in planned

    page.click('a[href="/bookings/mine"] >> nth=-1')
    page.wait_for_url("**/bookings/mine")
    mine = page.locator(f'[data-booking="{booking["id"]}"]')
    mine.wait_for()
    assert mine.locator(".code").inner_text() == code
    assert mine.locator(".status").inner_text().endswith("已确认")
    assert mine.locator("figure.qr svg").is_visible()
    assert mine.locator('tr[data-person="S1"] td.room').inner_text() == rooms["S1"]
    live(page)
    browser.screenshot(page, "my-bookings")
    browser.assert_only_local()


def test_a_refusal_shows_the_rule_and_the_suggested_time_and_one_click_books_it(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    centre = deployment.token(Role.CENTRE)
    add_rooms(api, centre, TIGHT_ROOMS)
    arrival = next_quarter()
    # A man and then a woman hold the one waiting room and the one interrogation room.
    for case, sex in (("A", "male"), ("B", "female")):
        body = api_booking(arrival, case, sex, station="s1")
        assert http_request("POST", f"{api}/bookings", centre, body)[0] == 201
    page = signed_in(browser, deployment, "li.s1", Role.STATION, "s1")
    page.goto(f"{deployment.base}/book")
    fill_booking(page, arrival, case="C")
    page.fill('[name="session_minutes"]', "120")
    page.select_option('[name="persons.0.legal_basis"]', "criminal_summons_serious")
    page.click("button.primary[type=submit]")

    refusal = page.locator(".card-refused")
    refusal.wait_for()
    rule = refusal.locator('li[data-rule="H2"]')
    assert "同案嫌疑人、男女、成年人与未成年人须分开" in rule.inner_text()
    suggested = (arrival + timedelta(minutes=120)).astimezone(ZONE)
    button = refusal.locator("button.rebook")
    assert button.inner_text() in (f"按 {suggested:%H:%M} 预约", f"按 {suggested:%m-%d %H:%M} 预约")
    # The partial plan: nobody fits now, and he fits from the suggested time.
    partial = refusal.locator(".partial-plan")
    assert "本预约中现在没有人员可以安排。" in partial.inner_text()
    later = partial.locator('.fits-later li[data-person="S1"]').inner_text()
    assert later in (
        f"S1 如在 {suggested:%H:%M} 或之后到达即可安排。",
        f"S1 如在 {suggested:%m-%d %H:%M} 或之后到达即可安排。",
    )
    browser.screenshot(page, "refusal")

    button.click()
    page.locator(".card-booked").wait_for()
    assert page.input_value('[name="expected_arrival"]') == local(suggested)
    browser.screenshot(page, "booked-at-the-suggested-time")
    bookings = http_get(f"{api}/bookings", centre)[1]
    assert {datetime.fromisoformat(b["expected_arrival"]) for b in bookings} == {arrival, suggested}
    browser.assert_only_local()


def test_a_field_error_appears_beside_the_field(deployment: Deployment, browser: Browser) -> None:
    deployment.start_central(CENTRAL_ENV)
    add_rooms(f"{deployment.base}/api/v1", deployment.token(Role.CENTRE), ROOMS)
    page = signed_in(browser, deployment, "zhao.s1", Role.STATION, "s1")
    page.goto(f"{deployment.base}/book")
    arrival = next_quarter()
    fill_booking(page, arrival, case="坏 编号")
    page.fill('[name="persons.0.brought_in_at"]', local(arrival + timedelta(minutes=15)))
    page.click("button.primary[type=submit]")

    page.locator(".card-errors").wait_for()
    error = page.locator('[id="e-case_id"]')
    assert error.inner_text() == "⚠ 只能用字母、数字和 _ . : -，并以字母或数字开头。"
    field = page.locator('[id="f-case_id"]')
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == "e-case_id"
    # Beside the field: right under it, in the same column.
    box, under = field.bounding_box(), error.bounding_box()
    assert box is not None
    assert under is not None
    assert abs(under["x"] - box["x"]) < 2
    assert 0 <= under["y"] - (box["y"] + box["height"]) < 20
    # The keyboard goes to the list of fields to correct.
    page.wait_for_function("document.activeElement && document.activeElement.tagName === 'H2'")
    assert page.locator(".card-errors a").count() == 1  # the arrival check waits for the name
    browser.screenshot(page, "case-number")

    # Once the number is right, the whole-booking check names the person's 到案 time.
    page.fill('[name="case_id"]', "C-2026-7")
    page.click("button.primary[type=submit]")
    person_error = page.locator('[id="e-persons.0.brought_in_at"]')
    person_error.wait_for()
    assert "到案时间晚于预计到达时间" in person_error.inner_text()
    assert page.locator('[id="e-case_id"]').count() == 0
    browser.screenshot(page, "brought-in")
    browser.assert_only_local()


def test_a_plan_change_from_the_centre_is_highlighted_on_my_bookings(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    centre = deployment.token(Role.CENTRE)
    add_rooms(api, centre, ROOMS)
    arrival = next_quarter()
    status, booking = http_request(
        "POST",
        f"{api}/bookings",
        deployment.token(Role.STATION, "s1"),
        api_booking(arrival, "C-2026-300", "male", officers=2),
    )
    assert status == 201, booking
    session = next(a for a in booking["assignments"] if a["kind"] == "session")
    page = signed_in(browser, deployment, "chen.s1", Role.STATION, "s1")
    card = page.locator(f'[data-booking="{booking["id"]}"]')
    row = card.locator('tr[data-person="X"]')
    assert row.locator("td.room").inner_text() == session["room"]
    live(page)

    started = time.perf_counter()
    status, _ = http_request(
        "PATCH", f"{api}/rooms/{session['room']}", centre, {"state": "out_of_order", "reason": "x"}
    )
    assert status == 200
    note = card.locator(".change-note")
    note.wait_for(timeout=3000)  # "within a couple of seconds"
    shown_after = time.perf_counter() - started
    print(f"plan change shown {shown_after * 1000:.0f} ms after the room's PATCH")
    moved = note.locator("li").inner_text()
    assert moved.startswith("X: ")
    assert note.locator("del").inner_text().startswith(session["room"])
    now = note.locator("ins").inner_text()
    assert not now.startswith(session["room"])
    assert row.locator("td.room").inner_text() == now.split(" ")[0]
    assert "房间状态变化" in note.locator("h3").inner_text()
    assert "changed" in (card.get_attribute("class") or "")
    browser.screenshot(page, "changed")

    note.locator("[data-ack]").click()
    assert card.locator(".change-note").count() == 0
    assert "changed" not in (card.get_attribute("class") or "")
    browser.screenshot(page, "seen")
    browser.assert_only_local()


def test_station_b_sees_none_of_station_as_bookings(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    add_rooms(api, deployment.token(Role.CENTRE), ROOMS)
    arrival = next_quarter()
    status, booking = http_request(
        "POST",
        f"{api}/bookings",
        deployment.token(Role.STATION, "s1"),
        api_booking(arrival, "C-A-1", "male"),
    )
    assert status == 201

    b = signed_in(browser, deployment, "b.s2", Role.STATION, "s2")
    assert b.url.endswith("/bookings/mine")
    live(b)
    assert b.locator("[data-booking]").count() == 0
    assert "C-A-1" not in b.content()
    assert booking["code"] not in b.content()
    assert b.locator("p.empty").is_visible()
    browser.screenshot(b, "station-b")
    sign_out(b)

    a = signed_in(browser, deployment, "a.s1", Role.STATION, "s1", lang="en")
    card = a.locator(f'[data-booking="{booking["id"]}"]')
    card.wait_for()
    assert card.locator(".status").inner_text().endswith("Confirmed")
    assert "Case C-A-1" in card.locator("h2").inner_text()
    live(a)
    assert a.locator("#live-state").inner_text() == "Updates: live"
    browser.screenshot(a, "station-a-english")
    browser.assert_only_local()
