"""The fast-lane door over HTTP through a real central: the code look-up (normalised like the
API, a clear 404 that tells nothing else, a limit on misses), verify, bands (a band worn by
someone else refused with who wears it), entry with its measured time, the arrivals list with
a late van, the desk roles only, CSRF on every action, and hostile input answered with 4xx."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.auth import Role
from central.web.door import MISS_BURST
from central.web.door_reads import arrivals_until
from central.web.templating import TEMPLATE_DIR, Templates
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.central.test_vans_api import CENTRE, _van
from tests.central.test_web_templates import _BareText, _literal_html
from tests.central.web_client import Answer, Browser, add_user
from tests.conftest import Deployment
from tests.support import http_get, http_request

HTMX = {"HX-Request": "true"}
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("name", sorted(p.name for p in (TEMPLATE_DIR / "door").glob("*.html")))
def test_no_door_fragment_has_text_outside_trans(name: str) -> None:
    """The frame's check covers the top-level templates; the door's fragments get it here."""
    env = Templates(str(ZONE)).environments["en"]
    tree = env.parse((TEMPLATE_DIR / "door" / name).read_text(), name)
    checker = _BareText()
    checker.feed("".join(_literal_html(tree)))
    checker.close()
    assert checker.found == [], f"door/{name}: text to put in {{% trans %}}: {checker.found}"


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-12-05 09:00", "2026-12-06 00:00"),
        ("2026-12-05 20:59", "2026-12-06 00:00"),
        ("2026-12-05 23:50", "2026-12-06 02:50"),
        ("2026-12-05 00:00", "2026-12-06 00:00"),
    ],
)
def test_the_arrivals_list_reaches_past_midnight_in_the_evening(local: str, until: str) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=ZONE)
    ends = arrivals_until(now.astimezone(UTC), ZONE)
    assert ends.astimezone(ZONE) == datetime.fromisoformat(until).replace(tzinfo=ZONE)


def _setup(deployment: Deployment, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Rooms, a desk user and a station user; the central started. Returns centre and s1
    tokens for the API."""
    add_user(deployment.db, "desk.wang", Role.CENTRE)
    add_user(deployment.db, "officer.li", Role.STATION, "s1")
    deployment.start_central(
        {"PRECINCT_PLAN_INTERVAL": "0", "PRECINCT_TIMEZONE": str(ZONE), **(env or {})}
    )
    centre = deployment.token(Role.CENTRE, name="setup")
    s1 = deployment.token(Role.STATION, "s1")
    for room in ROOMS:
        assert http_request("POST", f"{deployment.base}/api/v1/rooms", centre, room)[0] == 201
    return centre, s1


def _book(deployment: Deployment, token: str, minutes: int = 5, **extra: Any) -> dict[str, Any]:
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)
    status, booking = http_request(
        "POST", f"{deployment.base}/api/v1/bookings", token, booking_body(arrival, **extra)
    )
    assert status == 201, booking
    found: dict[str, Any] = booking
    return found


def _desk(deployment: Deployment) -> tuple[Browser, str]:
    browser = Browser(deployment.base)
    assert browser.sign_in("desk.wang").status == 303
    page = browser.get("/door")
    assert page.status == 200, page
    token = page.csrf_meta
    assert token is not None
    return browser, token


def _post(browser: Browser, path: str, token: str, form: dict[str, str] | None = None) -> Answer:
    return browser.request("POST", path, form=form or {}, headers={**HTMX, "X-CSRF-Token": token})


def _text(answer: Answer) -> str:
    """The answer's words, tags and spacing folded, entities read."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.body)))


def test_the_door_flow_from_code_to_entry(deployment: Deployment) -> None:
    centre, s1 = _setup(deployment)
    booking = _book(deployment, s1)
    other = _book(deployment, s1, minutes=90, case_id="C-2026-200")
    browser, token = _desk(deployment)

    # A scanner types the code; a person may type it in lower case with spaces around.
    card = browser.get(f"/door/card?code=++{booking['code'].lower()}++", HTMX)
    assert card.status == 200, card
    words = _text(card)
    assert "案件 C-2026-118" in words
    assert "已确认，房间已预留" in words
    assert "刑事传唤（12 小时）" in words
    assert "嫌疑人 · 男" in words
    assert "证人 · 女" in words
    assert "自愿到案（无时限）" in words
    assert "剩余" in words  # S1's custody clock, with time left
    assert "data-focus" in card.body
    assert 'id="verify"' in card.body
    assert "<html" not in card.body  # a fragment for htmx

    url = f"/door/bookings/{booking['id']}"
    verified = _post(browser, f"{url}/verify", token, {"code": booking["code"]})
    assert verified.status == 200, verified
    assert "已核验，待入区" in _text(verified)
    assert 'id="timer"' in verified.body  # arrival set by verify: the timer runs
    api = f"{deployment.base}/api/v1/bookings/{booking['id']}"
    assert http_get(api, centre)[1]["status"] == "verified"
    # Verify again: refused in words, the state named.
    again = _post(browser, f"{url}/verify", token, {"code": booking["code"]})
    assert again.status == 409
    assert "现在无法操作：该预约状态为“已核验，待入区”。" in _text(again)

    # The other booking arrives and S1 of it wears band-002.
    other_url = f"/door/bookings/{other['id']}"
    assert _post(browser, f"{other_url}/verify", token, {"code": other["code"]}).status == 200
    bound = _post(browser, f"{other_url}/persons/S1/band", token, {"band": "band-002"})
    assert bound.status == 200, bound

    assert _post(browser, f"{url}/persons/S1/band", token, {"band": "band-001"}).status == 200
    refused = _post(browser, f"{url}/persons/S2/band", token, {"band": "band-002"})
    assert refused.status == 409
    assert f"腕带 band-002 正由预约 {other['id']} 的 S1 佩戴。" in _text(refused)
    hostile = _post(browser, f"{url}/persons/S2/band", token, {"band": "<script>x</script>"})
    assert hostile.status == 422
    assert "<script>x" not in hostile.body
    assert "腕带编号为 1 至 64 位" in _text(hostile)
    assert _post(browser, f"{url}/persons/S2/band", token, {"band": " "}).status == 422
    assert _post(browser, f"{url}/persons/nobody/band", token, {"band": "band-9"}).status == 404
    assert _post(browser, f"{url}/persons/S2/band", token, {"band": "band-003"}).status == 200
    # The second bind of band-001 to S1 changes nothing; unbind and bind again works.
    assert _post(browser, f"{url}/persons/S1/band", token, {"band": "band-001"}).status == 200
    assert _post(browser, f"{url}/persons/W1/unbind", token).status == 404
    assert _post(browser, f"{url}/persons/W1/band", token, {"band": "band-004"}).status == 200
    assert _post(browser, f"{url}/persons/W1/unbind", token).status == 200
    last = _post(browser, f"{url}/persons/W1/band", token, {"band": "band-004"})
    assert last.status == 200
    # Every person bound: the next step is entry.
    assert re.search(r'id="enter" data-focus', last.body)

    entered = _post(browser, f"{url}/entered", token)
    assert entered.status == 200, entered
    seconds = float(re.findall(r'data-seconds="([0-9.]+)"', entered.body)[0])
    assert 0 <= seconds < 60
    assert "入区时测得" in _text(entered)
    assert "在办案区内" in _text(entered)
    found = http_get(api, centre)[1]
    assert found["status"] == "in_area"
    persons = http_get(f"{deployment.base}/api/v1/persons?in_area=true", centre)[1]
    assert {p["person"]: p["band"]["band"] for p in persons if p["booking"] == booking["id"]} == {
        "S1": "band-001",
        "S2": "band-003",
        "W1": "band-004",
    }
    # Without htmx (a plain form), the answer is the whole page.
    page = browser.request(
        "POST", f"{url}/entered", form={"csrf_token": token}, headers={"X-CSRF-Token": token}
    )
    assert page.status == 409
    assert "<html" in page.body


def test_unknown_codes_tell_nothing_and_are_limited(deployment: Deployment) -> None:
    _centre, s1 = _setup(deployment)
    booking = _book(deployment, s1)
    browser, _token = _desk(deployment)
    unknown = browser.get("/door/card?code=ZZZZ2222", HTMX)
    assert unknown.status == 404
    assert "没有预约码为 ZZZZ2222 的预约" in _text(unknown)
    assert booking["id"] not in unknown.body
    assert "C-2026-118" not in unknown.body
    assert browser.get("/door/card?code=a%20b", HTMX).status == 422
    assert browser.get("/door/card?code=" + "x" * 65, HTMX).status == 422
    assert browser.get("/door/card?code=", HTMX).status == 200  # nothing typed: no card
    # Misses cost tokens: past the burst, 429 with the wait, even for a right code.
    for _ in range(MISS_BURST):
        browser.get("/door/card?code=QQQQ3333", HTMX)
    limited = browser.get(f"/door/card?code={booking['code']}", HTMX)
    assert limited.status == 429
    assert limited.header("retry-after") is not None
    assert "无效预约码过多" in _text(limited)
    # Another desk user has a bucket of their own.
    add_user(deployment.db, "desk.zhao", Role.ADMIN)
    second = Browser(deployment.base)
    assert second.sign_in("desk.zhao").status == 303
    assert second.get(f"/door/card?code={booking['code']}", HTMX).status == 200


def test_only_the_desk_may_use_the_door_and_every_action_needs_the_token(
    deployment: Deployment,
) -> None:
    _centre, s1 = _setup(deployment)
    booking = _book(deployment, s1)
    nobody = Browser(deployment.base)
    assert nobody.get("/door").status == 303
    assert nobody.get("/door/card?code=X", HTMX).header("hx-redirect") == "/signin"
    station = Browser(deployment.base)
    assert station.sign_in("officer.li").status == 303
    assert station.get("/door").status == 403
    assert station.get(f"/door/card?code={booking['code']}", HTMX).status == 403
    assert station.get("/door/arrivals", HTMX).status == 403
    assert station.get(f"/door/bookings/{booking['id']}/persons", HTMX).status == 403

    browser, token = _desk(deployment)
    url = f"/door/bookings/{booking['id']}"
    no_token = browser.request("POST", f"{url}/verify", form={"code": booking["code"]})
    assert no_token.status == 403
    assert _post(browser, f"{url}/verify", "wrong", {"code": booking["code"]}).status == 403
    assert http_get(f"{deployment.base}/api/v1/bookings/{booking['id']}", s1)[1]["status"] == (
        "confirmed"
    )
    # A wrong code for this booking: 409 in words; a booking id that is no id: 422; none: 404.
    wrong = _post(browser, f"{url}/verify", token, {"code": "AAAA2222"})
    assert wrong.status == 409
    assert "预约码与该预约不符。" in _text(wrong)
    assert _post(browser, "/door/bookings/nope/verify", token, {"code": "x"}).status == 422
    assert _post(browser, "/door/bookings/bk-000000000000/verify", token).status == 404
    # Bands before arrival: refused, said why.
    early = _post(browser, f"{url}/persons/S1/band", token, {"band": "band-001"})
    assert early.status == 409
    assert "现在无法为此人绑定腕带。" in _text(early)


def test_the_arrivals_list_shows_the_vans_eta_and_flags_the_late(deployment: Deployment) -> None:
    _centre, s1 = _setup(
        deployment,
        {"PRECINCT_CENTRE_LAT": str(CENTRE[0]), "PRECINCT_CENTRE_LON": str(CENTRE[1])},
    )
    late = _book(deployment, s1, minutes=10, van="van-07-gps")
    on_time = _book(deployment, s1, minutes=60, case_id="C-2026-300")
    tomorrow = _book(deployment, s1, minutes=26 * 60, case_id="C-2026-301")
    now = datetime.now(UTC).replace(microsecond=0)
    _van(deployment, "van-07", "s1", CENTRE[0] + 0.18, now)  # some 20 km out at 10 m/s
    browser, _token = _desk(deployment)
    listed = browser.get("/door/arrivals", HTMX)
    assert listed.status == 200
    rows = re.findall(r'<tr data-booking="([^"]+)"( class="late")?', listed.body)
    by_booking = dict(rows)
    assert by_booking[late["id"]] == ' class="late"'
    # Today is the centre's day and at least the next ARRIVALS_AHEAD: a van due in an hour
    # is listed even late in the evening; one due tomorrow afternoon waits for its day.
    assert by_booking[on_time["id"]] == ""
    assert tomorrow["id"] not in by_booking
    words = _text(listed)
    assert "van-07-gps" in words
    assert re.search(r"\b(19|20|21)\.\d 公里", words)
    assert "⚠ 晚到" in words
