"""The station's pages over HTTP against a real central: booking through the form (placed,
refused with the rule and a time that fits, field errors beside their fields), hostile forms,
My bookings and its station scope, and the centre booking for a station it chooses."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from central.auth import Role
from tests.central.book_forms import (
    CENTRAL_ENV,
    ROOMS,
    TIGHT_ROOMS,
    ZONE,
    add_rooms,
    api_booking,
    booking_form,
    local,
    next_quarter,
    person_fields,
)
from tests.central.web_client import Answer, Browser, add_user
from tests.conftest import Deployment
from tests.support import http_get, http_request

HTMX = {"HX-Request": "true"}


def signed_in(deployment: Deployment, name: str, role: Role, station: str | None = None) -> Browser:
    add_user(deployment.db, name, role, station)
    browser = Browser(deployment.base)
    assert browser.sign_in(name).status == 303
    return browser


def book(browser: Browser, form: dict[str, str], *, htmx: bool = True) -> Answer:
    page = browser.get("/book")
    assert page.status == 200, page
    token = page.csrf_meta
    assert token is not None
    headers = {**HTMX, "X-CSRF-Token": token} if htmx else {}
    return browser.request("POST", "/book", form={**form, "csrf_token": token}, headers=headers)


def field_error(answer: Answer, name: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="e-{re.escape(name)}">(.*?)</p>', answer.body)
    return None if found is None else html.unescape(re.sub(r"<[^>]+>", "", found[1])).strip()


def code_of(answer: Answer) -> str:
    found = re.search(r'<strong class="code">([A-Z0-9]{8})</strong>', answer.body)
    assert found is not None, answer.body
    return found[1]


def test_a_station_books_through_the_form_and_sees_the_rooms_and_code(
    deployment: Deployment,
) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    add_rooms(api, deployment.token(Role.CENTRE), ROOMS)
    officer = signed_in(deployment, "wang.s1", Role.STATION, "s1")
    arrival = next_quarter()

    page = officer.get("/book")
    assert page.status == 200
    assert 'name="station"' not in page.body  # a station books for itself
    assert 'id="person-template"' in page.body
    assert "提交预约" in page.body

    answer = book(officer, booking_form(arrival, persons=2, **{"persons.1.co_suspect_group": ""}))
    assert answer.status == 201, answer.body
    assert "<html" not in answer.body  # htmx gets the form alone
    assert "预约成功" in answer.body
    code = code_of(answer)
    assert "<svg" in answer.body
    rooms = set(re.findall(r'<td class="room">([^<]+)</td>', answer.body))
    assert rooms <= {"I-1", "I-2"}
    assert rooms
    # Times in the centre's zone: the sessions start at or after the arrival, shown locally.
    assert f"{arrival:%Y-%m-%d}" in answer.body

    s1 = deployment.token(Role.STATION, "s1")
    status, bookings = http_get(f"{api}/bookings", s1)
    assert status == 200
    assert [b["code"] for b in bookings] == [code]
    assert bookings[0]["station"] == "s1"
    assert datetime.fromisoformat(bookings[0]["expected_arrival"]) == arrival

    mine = officer.get("/bookings/mine")
    assert mine.status == 200
    assert code in mine.body
    assert "已确认" in mine.body
    assert 'class="qr"' in mine.body
    card = officer.get(f"/bookings/mine/{bookings[0]['id']}/card", headers=HTMX)
    assert card.status == 200
    assert code in card.body
    listed = officer.get("/bookings/mine/list", headers=HTMX)
    assert code in listed.body

    # Without scripts the form posts as a page and gets the whole page back.
    again = book(officer, booking_form(arrival, case_id="C-2026-119"), htmx=False)
    assert again.status == 201
    assert "<html" in again.body


def test_a_refusal_names_the_rule_and_books_at_the_suggested_time(deployment: Deployment) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    centre = deployment.token(Role.CENTRE)
    add_rooms(api, centre, TIGHT_ROOMS)
    arrival = next_quarter()
    for case, sex in (("A", "male"), ("B", "female")):
        status, body = http_request(
            "POST", f"{api}/bookings", centre, api_booking(arrival, case, sex, station="s1")
        )
        assert status == 201, body
    officer = signed_in(deployment, "li.s1", Role.STATION, "s1")
    form = booking_form(arrival, case_id="C", officers="2", session_minutes="120")
    form["persons.0.legal_basis"] = "criminal_summons_serious"

    refused = book(officer, form)
    assert refused.status == 409, refused.body
    assert 'data-rule="H2"' in refused.body
    assert "同案嫌疑人、男女、成年人与未成年人须分开" in refused.body
    suggested = arrival + timedelta(minutes=120)
    button = re.search(r'name="rebook_at" value="([^"]+)"', refused.body)
    assert button is not None
    assert button[1] == local(suggested)
    assert f"按 {suggested:%H:%M} 预约" in refused.body or f"按 {suggested:%m-%d %H:%M} 预约" in (
        refused.body
    )
    assert len(http_get(f"{api}/bookings", centre)[1]) == 2  # nothing stored
    # The partial plan: nobody fits now; he fits from the suggested time. In English too.
    assert "本预约中现在没有人员可以安排。" in refused.body
    assert re.search(r'data-person="S1">S1 如在 [0-9: -]+ 或之后到达即可安排。', refused.body)
    english = Browser(deployment.base, cookies={**officer.cookies, "precinct_lang": "en"})
    in_english = book(english, form)
    assert in_english.status == 409
    assert "Nobody of this booking fits now." in in_english.body
    assert re.search(r"S1 fits when arriving at [0-9: -]+ or later\.", in_english.body)

    taken = book(officer, {**form, "rebook_at": button[1]})
    assert taken.status == 201, taken.body
    assert f'value="{local(suggested)}"' in taken.body  # the form now says the new arrival
    status, bookings = http_get(f"{api}/bookings", centre)
    assert len(bookings) == 3
    assert {datetime.fromisoformat(b["expected_arrival"]) for b in bookings} == {
        arrival,
        suggested,
    }


def test_field_errors_come_back_beside_their_fields(deployment: Deployment) -> None:
    deployment.start_central(CENTRAL_ENV)
    add_rooms(f"{deployment.base}/api/v1", deployment.token(Role.CENTRE), ROOMS)
    officer = signed_in(deployment, "zhao.s1", Role.STATION, "s1")
    arrival = next_quarter()
    form = booking_form(arrival, persons=2)
    form.update(
        {
            "case_id": "案 <b>1</b>",
            "case_type": "<script>alert(1)</script>",
            "officers": "three",
            "session_minutes": "5",
            "persons.0.brought_in_at": local(arrival + timedelta(minutes=10)),
            "persons.1.role": "pirate",
            "persons.1.guardian_at": "tomorrow",
        }
    )
    answer = book(officer, form)
    assert answer.status == 422, answer.body
    assert field_error(answer, "case_id") == "⚠ 只能用字母、数字和 _ . : -，并以字母或数字开头。"
    assert field_error(answer, "officers") == "⚠ 请填整数。"
    assert field_error(answer, "session_minutes") == "⚠ 须在 10 到 480 之间。"
    assert field_error(answer, "persons.1.role") == "⚠ 请从列表中选择。"
    assert field_error(answer, "persons.1.guardian_at") == "⚠ 请填日期和时间，如 2026-12-05 09:30。"
    # Each input says it is wrong and which text says why.
    assert re.search(
        r'id="f-case_id"[^>]*aria-describedby="e-case_id"[^>]*aria-invalid="true"'
        r'|id="f-case_id"[^>]*aria-invalid="true"[^>]*aria-describedby="e-case_id"',
        answer.body,
    )
    # What was typed comes back, escaped.
    assert "<script>alert(1)" not in answer.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.body
    assert "案 &lt;b&gt;1&lt;/b&gt;" in answer.body

    # The whole-booking check (到案 after arrival) once the fields themselves are right.
    late = booking_form(arrival)
    late["persons.0.brought_in_at"] = local(arrival + timedelta(minutes=10))
    answer = book(officer, late)
    assert answer.status == 422
    assert field_error(answer, "persons.0.brought_in_at") == (
        "⚠ 到案时间晚于预计到达时间：时限从到案起算，到案应早于到达。"
    )
    # The planning service's own refusals of a field: an arrival gone by.
    past = booking_form(next_quarter(-3))
    answer = book(officer, past)
    assert answer.status == 422
    assert field_error(answer, "expected_arrival") == "⚠ 时间已过：已到中心的请按临时到案登记。"
    # Rows numbered with a gap (a row removed without scripts): errors still find their row.
    gap = booking_form(arrival)
    gap.update(person_fields(5, brought_in_at="", id="S9"))
    answer = book(officer, gap)
    assert answer.status == 422
    assert field_error(answer, "persons.5.brought_in_at") == "⚠ 必填。"
    # English.
    english = Browser(deployment.base, cookies={**officer.cookies, "precinct_lang": "en"})
    answer = book(english, {**booking_form(arrival), "officers": "0"})
    assert field_error(answer, "officers") == "⚠ From 1 to 50."


def test_hostile_forms_get_an_answer_never_a_500(deployment: Deployment) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    deployment.start_central(CENTRAL_ENV)
    add_rooms(f"{deployment.base}/api/v1", deployment.token(Role.CENTRE), ROOMS)
    officer = signed_in(deployment, "fuzz.s1", Role.STATION, "s1")
    token = officer.get("/book").csrf_meta
    assert token is not None
    valid = booking_form(next_quarter(2))
    names = [*valid, "station", "rebook_at", "persons.19.id", "persons.99.id", "persons.-1.id"]
    values = st.text(max_size=80) | st.sampled_from(
        [
            "9999-12-31T23:59",
            "0001-01-01T00:00",
            "2026-02-30T10:00",
            "2026-12-05T24:00",
            "99999999999",
            "-1",
            "on",
            "minor",
            "victim",
        ]
    )
    forms = st.dictionaries(st.sampled_from(names), values, max_size=12).map(
        lambda changes: {**valid, **changes}
    )

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(forms)
    def check(form: dict[str, str]) -> None:
        answer = officer.request("POST", "/book", form={**form, "csrf_token": token}, headers=HTMX)
        assert answer.status in (201, 409, 422), (answer.status, form, answer.body[:300])
        if answer.status == 422:
            assert "card-errors" in answer.body

    check()

    # The largest booking the API takes, every box ticked, is read whole.
    full = booking_form(next_quarter(2), persons=20, female_staff="on")
    for row in range(20):
        full[f"persons.{row}.intoxicated"] = full[f"persons.{row}.sexual_abuse_victim"] = "on"
        full[f"persons.{row}.id"] = f"P{row}"
    answer = officer.request("POST", "/book", form={**full, "csrf_token": token}, headers=HTMX)
    assert answer.status in (201, 409, 422), answer.body[:300]
    assert "card-" in answer.body
    many = booking_form(next_quarter(2), persons=21)
    answer = officer.request("POST", "/book", form={**many, "csrf_token": token}, headers=HTMX)
    assert answer.status == 422
    assert field_error(answer, "persons") == "⚠ 人数须在 1 到 20 之间。"
    none = {k: v for k, v in valid.items() if not k.startswith("persons.")}
    answer = officer.request("POST", "/book", form={**none, "csrf_token": token}, headers=HTMX)
    assert answer.status == 422
    assert field_error(answer, "persons") == "⚠ 人数须在 1 到 20 之间。"
    # Not a form at all, or without the session's token.
    assert officer.request("POST", "/book", json_body=valid, headers=HTMX).status == 415
    assert officer.request("POST", "/book", form=valid, headers=HTMX).status == 403
    assert officer.request("GET", "/bookings/mine/bk-zzz/card").status == 422


def test_a_station_sees_only_its_own_bookings(deployment: Deployment) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    add_rooms(api, deployment.token(Role.CENTRE), ROOMS)
    a = signed_in(deployment, "a.s1", Role.STATION, "s1")
    b = signed_in(deployment, "b.s2", Role.STATION, "s2")
    arrival = next_quarter()
    code = code_of(book(a, booking_form(arrival, case_id="C-A-1")))
    # A station's form never books for another, whatever it sends.
    answer = book(b, {**booking_form(arrival, case_id="C-B-1"), "station": "s1"})
    assert answer.status == 201, answer.body
    assert "s2" in answer.body
    a_id = http_get(f"{api}/bookings", deployment.token(Role.STATION, "s1"))[1][0]["id"]

    mine_b = b.get("/bookings/mine")
    assert mine_b.status == 200
    assert code not in mine_b.body
    assert "C-A-1" not in mine_b.body
    assert "C-B-1" in mine_b.body
    assert code not in b.get("/bookings/mine/list", headers=HTMX).body
    assert b.get(f"/bookings/mine/{a_id}/card", headers=HTMX).status == 403
    assert a.get(f"/bookings/mine/{a_id}/card", headers=HTMX).status == 200
    assert "C-B-1" not in a.get("/bookings/mine").body
    everything = http_get(f"{api}/bookings", deployment.token(Role.CENTRE))[1]
    assert {booking["station"] for booking in everything} == {"s1", "s2"}


def test_the_centre_books_for_a_station_it_chooses(deployment: Deployment) -> None:
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    centre_token = deployment.token(Role.CENTRE)
    add_rooms(api, centre_token, ROOMS)
    add_user(deployment.db, "s7.user", Role.STATION, "s7")
    desk = signed_in(deployment, "desk", Role.CENTRE)
    page = desk.get("/book")
    assert 'name="station"' in page.body
    assert '<option value="s7">' in page.body  # the stations the centre knows, suggested
    arrival = next_quarter()

    answer = book(desk, booking_form(arrival))
    assert answer.status == 422
    assert field_error(answer, "station") == "⚠ 请选择为哪个派出所预约。"
    answer = book(desk, {**booking_form(arrival), "station": "s7"})
    assert answer.status == 201, answer.body
    assert [b["station"] for b in http_get(f"{api}/bookings", centre_token)[1]] == ["s7"]
    # My bookings is a station's page; operations staff do not book.
    assert desk.get("/bookings/mine").status == 403
    ops = signed_in(deployment, "ops.one", Role.OPS)
    assert ops.get("/book").status == 403


def test_times_on_the_page_are_the_centres(deployment: Deployment) -> None:
    """The form reads its times in the centre's zone and shows the plan in it."""
    deployment.start_central(CENTRAL_ENV)
    api = f"{deployment.base}/api/v1"
    add_rooms(api, deployment.token(Role.CENTRE), ROOMS)
    officer = signed_in(deployment, "time.s1", Role.STATION, "s1")
    arrival = next_quarter(1.5)
    answer = book(officer, booking_form(arrival))
    assert answer.status == 201
    booking = http_get(f"{api}/bookings", deployment.token(Role.STATION, "s1"))[1][0]
    session = next(a for a in booking["assignments"] if a["kind"] == "session")
    start = datetime.fromisoformat(session["start"]).astimezone(ZONE)
    end = datetime.fromisoformat(session["end"]).astimezone(ZONE)
    assert f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}" in answer.body
