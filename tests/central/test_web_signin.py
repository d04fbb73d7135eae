"""People signing in to a real central: the cookie's flags, refusals and their audit rows, the
limits on failures, CSRF on pages and on the API, sign-out, expiry, a disabled user, and the
station scope of a session on the API and the stream."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from central import audit
from central.auth import Role
from central.store import connect
from tests.central.sse_client import SseClient
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.central.web_client import PASSWORD, Answer, Browser, add_user
from tests.conftest import Deployment
from tests.support import http_request, run_precinct

STREAM_ENV = {"PRECINCT_STREAM_PING_INTERVAL": "1"}


def audit_rows(deployment: Deployment, action_prefix: str = "user.") -> list[audit.AuditRow]:
    conn = connect(deployment.db, readonly=True)
    try:
        return [r for r in audit.rows(conn) if r.action.startswith(action_prefix)]
    finally:
        conn.close()


def cookie_flags(line: str) -> set[str]:
    """The attributes of one Set-Cookie line, lower case, values kept (``samesite=strict``)."""
    return {part.strip().lower() for part in line.split(";")[1:]}


def signed_in(answer: Answer, home: str) -> None:
    assert answer.status == 303, answer
    assert answer.header("location") == home


@pytest.fixture
def streams() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for client in opened:
        client.close()


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_to_the_roles_home(
    deployment: Deployment,
) -> None:
    add_user(deployment.db, "zhang.wei", Role.STATION, "s1")
    add_user(deployment.db, "desk", Role.CENTRE)
    deployment.start_central()
    browser = Browser(deployment.base)

    first = browser.get("/")
    assert first.status == 303
    assert first.header("location") == "/signin"
    form = browser.get("/signin")
    assert form.status == 200
    assert '<html lang="zh-CN">' in form.body
    assert "登录" in form.body
    # The form's token is the one its cookie holds, in the form and in the meta tag.
    assert form.csrf_field == form.csrf_meta == browser.cookies["precinct_signin"]
    signin_cookie = cookie_flags(form.set_cookies()["precinct_signin"])
    assert {"httponly", "samesite=strict", "path=/signin"} <= signin_cookie

    answer = browser.request(
        "POST",
        "/signin",
        form={"csrf_token": form.csrf_field or "", "name": "zhang.wei", "password": PASSWORD},
    )
    signed_in(answer, "/bookings/mine")
    flags = cookie_flags(answer.set_cookies()["precinct_session"])
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http here, and web_secure_cookies is off
    assert not any(f.startswith(("max-age", "expires")) for f in flags)  # ends with the browser
    assert "precinct_signin" not in browser.cookies  # the sign-in form's token is spent

    assert browser.get("/").header("location") == "/bookings/mine"
    assert browser.get("/signin").header("location") == "/bookings/mine"
    home = browser.get("/bookings/mine")
    assert home.status == 200
    assert "zhang.wei" in home.body
    assert "派出所" in home.body  # the role, in Chinese by default
    assert home.csrf_meta == home.csrf_field
    assert home.csrf_meta is not None
    assert home.header("cache-control") == "no-store"
    assert home.header("x-frame-options") == "DENY"
    assert home.header("content-security-policy") == "frame-ancestors 'none'"
    # A station's home is not the wall.
    assert browser.get("/wall").status == 403

    centre = Browser(deployment.base)
    signed_in(centre.sign_in("desk"), "/wall")
    assert centre.get("/wall").status == 200
    # The secret in the cookie is not what the store keeps.
    conn = connect(deployment.db, readonly=True)
    try:
        ids = [str(r[0]) for r in conn.execute("SELECT id FROM web_sessions")]
    finally:
        conn.close()
    assert len(ids) == 2
    assert browser.session not in ids
    assert centre.session not in ids

    rows = audit_rows(deployment)
    assert [(r.action, r.actor, r.role, r.source) for r in rows] == [
        ("user.signed_in", "zhang.wei", "station", "127.0.0.1"),
        ("user.signed_in", "desk", "centre", "127.0.0.1"),
    ]
    assert json.loads(rows[0].detail)["station"] == "s1"


def test_english_is_chosen_by_query_cookie_or_browser(deployment: Deployment) -> None:
    deployment.start_central()
    browser = Browser(deployment.base)
    assert '<html lang="zh-CN">' in browser.get("/signin").body
    english = browser.get("/signin?lang=en")
    assert '<html lang="en">' in english.body
    assert "Sign in" in english.body
    assert "登录" not in english.body
    assert {"samesite=strict", "path=/"} <= cookie_flags(english.set_cookies()["precinct_lang"])
    # Kept by the cookie, until asked for Chinese again.
    assert '<html lang="en">' in browser.get("/signin").body
    assert '<html lang="zh-CN">' in browser.get("/signin?lang=zh").body
    fresh = Browser(deployment.base)
    accept = {"Accept-Language": "fr-FR, en-GB;q=0.8, zh;q=0.5"}
    assert '<html lang="en">' in fresh.get("/signin", accept).body
    assert '<html lang="zh-CN">' in fresh.get("/signin?lang=xx", {"Accept-Language": "fr"}).body


def test_wrong_passwords_are_refused_audited_and_limited(deployment: Deployment) -> None:
    add_user(deployment.db, "desk", Role.CENTRE)
    add_user(deployment.db, "duty", Role.ADMIN)
    deployment.start_central(
        {"PRECINCT_SIGNIN_FAILURE_BURST": "3", "PRECINCT_SIGNIN_FAILURE_RATE": "0.01"}
    )
    one = Browser(deployment.base, source="127.0.0.2")
    refused = one.sign_in("desk", "not the password at all")
    assert refused.status == 401
    assert "用户名或密码错误" in refused.body
    assert 'value="desk"' in refused.body  # the name is kept, the password never comes back
    assert "not the password" not in refused.body
    assert one.session is None
    assert one.sign_in("nobody", PASSWORD).status == 401
    assert one.sign_in("<script>", PASSWORD).status == 401
    # Three failures from this address: the next attempt is not even checked.
    limited = one.sign_in("duty", PASSWORD)
    assert limited.status == 429
    assert int(limited.header("retry-after") or 0) >= 1
    assert "登录失败次数过多" in limited.body
    assert one.session is None

    # Per name: three addresses try "duty" once each; then a fourth address is refused for
    # that name but may sign in under another.
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        assert Browser(deployment.base, source=source).sign_in("duty", "wrong one").status == 401
    late = Browser(deployment.base, source="127.0.0.6")
    assert late.sign_in("duty", PASSWORD).status == 429
    signed_in(late.sign_in("desk"), "/wall")

    rows = audit_rows(deployment)
    failed = [r for r in rows if r.action == "user.sign_in_failed"]
    assert [(r.target, json.loads(r.detail)["reason"], r.source) for r in failed] == [
        ("desk", "wrong_password", "127.0.0.2"),
        ("nobody", "unknown_user", "127.0.0.2"),
        ("-", "unknown_user", "127.0.0.2"),  # a name no user can have is not logged
        ("duty", "wrong_password", "127.0.0.3"),
        ("duty", "wrong_password", "127.0.0.4"),
        ("duty", "wrong_password", "127.0.0.5"),
    ]
    assert [r.action for r in rows][-1] == "user.signed_in"
    logged = json.dumps([(r.detail, r.actor, r.target) for r in rows])
    assert PASSWORD not in logged
    assert "wrong one" not in logged
    assert "<script>" not in logged


def test_posts_without_the_csrf_token_are_refused(deployment: Deployment) -> None:
    add_user(deployment.db, "zhang.wei", Role.STATION, "s1")
    add_user(deployment.db, "li.na", Role.STATION, "s1")
    deployment.start_central()
    base = deployment.base

    # Sign-in: the form's token must match its cookie.
    stranger = Browser(deployment.base)
    forged = stranger.request(
        "POST", "/signin", form={"csrf_token": "x" * 43, "name": "zhang.wei", "password": PASSWORD}
    )
    assert forged.status == 403
    assert stranger.session is None
    assert audit_rows(deployment) == []

    browser = Browser(base)
    signed_in(browser.sign_in("zhang.wei"), "/bookings/mine")
    token = browser.get("/bookings/mine").csrf_meta
    assert token is not None
    other = Browser(base)
    signed_in(other.sign_in("li.na"), "/bookings/mine")
    other_token = other.get("/bookings/mine").csrf_meta
    assert other_token is not None

    # Pages: the sign-out form without a token, with another session's, with garbage.
    for form in ({}, {"csrf_token": other_token}, {"csrf_token": "\x00" * 5000}):
        answer = browser.request("POST", "/signout", form=form)
        assert answer.status == 403, answer
        assert answer.header("content-type") == "application/problem+json"
    assert browser.request("POST", "/signout").status == 403  # no body at all
    assert browser.get("/bookings/mine").status == 200  # still signed in

    # The API with the cookie: a POST needs the header; a GET does not.
    body = booking_body(datetime.now(UTC) + timedelta(hours=2), station="s1")
    for headers in ({}, {"X-CSRF-Token": other_token}, {"X-CSRF-Token": token + "x"}):
        answer = browser.request("POST", "/api/v1/bookings", json_body=body, headers=headers)
        assert answer.status == 403, answer
        assert "X-CSRF-Token" in answer.json()["detail"]
    answer = browser.request(
        "POST", "/api/v1/bookings", json_body={}, headers={"X-CSRF-Token": token}
    )
    assert answer.status == 422  # past the gate: the body is what is wrong now
    assert browser.get("/api/v1/bookings").status == 200
    # A bearer token needs no CSRF token (no browser sends one by itself).
    admin = deployment.token(Role.ADMIN)
    assert http_request("POST", f"{base}/api/v1/bookings", admin, {})[0] == 422


def test_sign_out_ends_the_session(deployment: Deployment) -> None:
    add_user(deployment.db, "zhang.wei", Role.STATION, "s1")
    deployment.start_central()
    browser = Browser(deployment.base)
    signed_in(browser.sign_in("zhang.wei"), "/bookings/mine")
    secret = browser.session
    token = browser.get("/bookings/mine").csrf_field
    answer = browser.request("POST", "/signout", form={"csrf_token": token or ""})
    assert answer.status == 303
    assert answer.header("location") == "/signin"
    assert browser.session is None  # the cookie is cleared
    # The old cookie, kept by someone, is dead on the pages and on the API.
    replay = Browser(deployment.base, cookies={"precinct_session": secret or ""})
    assert replay.get("/bookings/mine").header("location") == "/signin"
    assert replay.get("/api/v1/bookings").status == 401
    htmx = replay.get("/bookings/mine", {"HX-Request": "true"})
    assert htmx.status == 401
    assert htmx.header("hx-redirect") == "/signin"
    assert [r.action for r in audit_rows(deployment)] == ["user.signed_in", "user.signed_out"]


def test_sessions_end_when_idle_and_at_their_absolute_limit(deployment: Deployment) -> None:
    add_user(deployment.db, "desk", Role.CENTRE)
    add_user(deployment.db, "duty", Role.ADMIN)
    # 3 s idle, 9 s at most; every cookie Secure as behind a TLS proxy.
    deployment.start_central(
        {
            "PRECINCT_SESSION_IDLE_MINUTES": "0.05",
            "PRECINCT_SESSION_MAX_HOURS": "0.0025",
            "PRECINCT_WEB_SECURE_COOKIES": "true",
        }
    )
    busy, idle = Browser(deployment.base), Browser(deployment.base)
    answer = busy.sign_in("desk")
    started = time.monotonic()
    signed_in(answer, "/wall")
    assert "secure" in cookie_flags(answer.set_cookies()["precinct_session"])
    signed_in(idle.sign_in("duty"), "/wall")

    def alive(browser: Browser) -> bool:
        return browser.get("/api/v1/bookings").status == 200

    def idle_bound(user: str) -> datetime:
        conn = connect(deployment.db, readonly=True)
        try:
            row = conn.execute(
                "SELECT s.idle_expires_at FROM web_sessions s JOIN users u ON u.id = s.user "
                "WHERE u.name = ?",
                (user,),
            ).fetchone()
        finally:
            conn.close()
        return datetime.fromisoformat(row[0])

    # Any look at the idle session would keep it alive: the test waits, using the busy one
    # every 0.3 s, until the idle one's bound has passed, then looks once.
    bound = idle_bound("duty")
    while datetime.now(UTC) <= bound:
        assert alive(busy)
        time.sleep(0.3)
    assert 2.5 <= time.monotonic() - started <= 6
    assert idle.get("/wall").header("location") == "/signin"
    # The busy one, past its idle time, is kept alive by use until its absolute limit.
    assert alive(busy)
    assert idle_bound("desk") > bound
    while alive(busy):
        assert time.monotonic() - started < 20, "the busy session outlived its limit"
        time.sleep(0.3)
    assert time.monotonic() - started >= 8.5
    assert busy.get("/").header("location") == "/signin"


def test_a_disabled_users_session_dies_and_they_cannot_sign_in(deployment: Deployment) -> None:
    add_user(deployment.db, "zhang.wei", Role.STATION, "s1")
    deployment.start_central()
    browser = Browser(deployment.base)
    signed_in(browser.sign_in("zhang.wei"), "/bookings/mine")
    assert browser.get("/api/v1/bookings").status == 200
    done = run_precinct("central", "user", "disable", "--db", str(deployment.db), "zhang.wei")
    assert done.returncode == 0, done.stderr
    assert "1 session(s) ended" in done.stdout
    assert browser.get("/api/v1/bookings").status == 401
    assert browser.get("/bookings/mine").header("location") == "/signin"
    again = Browser(deployment.base)
    assert again.sign_in("zhang.wei").status == 401
    assert again.session is None
    reasons = [json.loads(r.detail).get("reason") for r in audit_rows(deployment)]
    assert reasons[-1] == "disabled"


def test_a_station_session_sees_only_its_station_on_the_api_and_the_stream(
    deployment: Deployment, streams: list[SseClient]
) -> None:
    add_user(deployment.db, "north.officer", Role.STATION, "s-north")
    deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    base = deployment.base
    for room in ROOMS:
        assert http_request("POST", f"{base}/api/v1/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC) + timedelta(hours=2)
    made = {}
    for station in ("s-north", "s-south"):
        status, booking = http_request(
            "POST", f"{base}/api/v1/bookings", centre, booking_body(arrival, station=station)
        )
        assert status == 201, booking
        made[station] = booking["id"]

    browser = Browser(base)
    signed_in(browser.sign_in("north.officer"), "/bookings/mine")
    listed = browser.get("/api/v1/bookings")
    assert listed.status == 200
    items = listed.json()
    items = items["items"] if isinstance(items, dict) else items
    assert [b["id"] for b in items] == [made["s-north"]]
    assert browser.get(f"/api/v1/bookings/{made['s-south']}").status in {403, 404}

    cookie = {"Cookie": f"precinct_session={browser.session}"}
    stream = SseClient(f"{base}/api/v1/stream", None, headers=cookie)
    streams.append(stream)
    assert stream.status == 200
    hello = stream.next()
    assert hello is not None
    assert hello.event == "hello"
    deployment.start_agent("gate-south", station="s-south", synthetic=2)
    deployment.start_agent("gate-north", station="s-north", synthetic=2)
    _, seen = stream.until(
        lambda e: e.event == "agent_online" and e.json()["body"]["agent"] == "gate-north"
    )
    assert {e.json()["station"] for e in seen} == {"s-north"}, seen

    # Signing out ends the open stream too (its session is looked at every 5 s).
    token = browser.get("/bookings/mine").csrf_field or ""
    signed_out = time.monotonic()
    assert browser.request("POST", "/signout", form={"csrf_token": token}).status == 303
    while stream.next(15) is not None:
        assert time.monotonic() - signed_out < 15, "the stream outlived its session"
    assert stream.ended

    # Without a session the stream is refused like any API request.
    anonymous = SseClient(f"{base}/api/v1/stream", None, headers={"Cookie": "precinct_session=x"})
    streams.append(anonymous)
    assert anonymous.status == 401


def test_hostile_forms_cookies_and_headers_get_a_4xx_never_a_500(deployment: Deployment) -> None:
    add_user(deployment.db, "desk", Role.CENTRE)
    deployment.start_central()
    browser = Browser(deployment.base)

    def post_signin(body: bytes, content_type: str) -> Answer:
        return _raw_post(browser, body, content_type)

    form_type = "application/x-www-form-urlencoded"
    assert post_signin(b"a=" + b"x" * 70_000, form_type).status == 413
    assert post_signin(b"--x\r\n", "multipart/form-data; boundary=x").status == 415
    assert post_signin(b"name=\xff\xfe", form_type).status == 400
    assert post_signin(b"&".join(b"f%d=" % i for i in range(500)), form_type).status == 400

    for name, password in (("d" * 10_000, PASSWORD), ("desk", "p" * 5000), ("de\x00sk", "")):
        answer = browser.sign_in(name, password)
        assert answer.status == 401, (name[:10], answer.status)
        assert browser.session is None

    for cookie in (
        "precinct_session=" + "x" * 5000,
        'precinct_session="quoted; value"',
        ";;;===;precinct_session",
        "precinct_session=\u00e9\u00e8",
        "precinct_lang=../../etc; precinct_session=",
    ):
        headers = {"Cookie": cookie}
        stranger = Browser(deployment.base)
        page = stranger.get("/wall", headers)
        assert page.status == 303, (cookie[:30], page.status)
        api = stranger.get("/api/v1/bookings", headers)
        assert api.status in {401, 429}, (cookie[:30], api.status)
        assert stranger.get("/signin", headers).status == 200

    for language in ("\u00e9" * 50, "en;q=nan", "*;q=1.0, zh;q=inf", ",".join(["en"] * 2000)):
        answer = browser.get("/signin?lang=%00%ff", {"Accept-Language": language})
        assert answer.status == 200, language[:20]
    wrong_method = browser.request("PUT", "/signin")
    assert wrong_method.status == 405
    assert wrong_method.header("allow") == "GET, POST"
    assert deployment.central is not None
    assert "Traceback" not in deployment.central.output()


def _raw_post(browser: Browser, body: bytes, content_type: str) -> Answer:
    """A POST of raw bytes to the sign-in form, with a valid form token in its cookie."""
    assert browser.get("/signin").status == 200
    parts = urllib.parse.urlsplit(browser.base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        cookie = f"precinct_signin={browser.cookies['precinct_signin']}"
        connection.request(
            "POST", "/signin", body=body, headers={"Content-Type": content_type, "Cookie": cookie}
        )
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read().decode("latin-1"))
    finally:
        connection.close()
