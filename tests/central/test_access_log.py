"""The access log of a real central: one line per request naming the token or the user, and
never a secret (token, session cookie, password, CSRF token, query string)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from central.access_log import SIGNED_IN_USER_STATE, printable, who
from central.api.gate import PRINCIPAL_STATE, SESSION_STATE
from central.auth import Principal, Role
from tests.central.web_client import PASSWORD, Browser, add_user
from tests.conftest import Deployment
from tests.support import http_get, wait_until

SECRET_CODE = "c0de-1n-the-query-7731"


def _access_lines(text: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry["logger"] == "central.access"]


def test_each_request_is_logged_with_its_token_or_user_and_no_secret(
    deployment: Deployment,
) -> None:
    central = deployment.start_central(env={"PRECINCT_LOG_FORMAT": "json"})
    token = deployment.token(Role.ADMIN, name="ops-dashboard")
    add_user(deployment.db, "desk-wang", Role.CENTRE)
    assert http_get(f"{deployment.base}/api/v1/agents?code={SECRET_CODE}", token)[0] == 200
    assert http_get(f"{deployment.base}/api/v1/agents", "not-a-token")[0] == 401
    browser = Browser(deployment.base)
    assert browser.sign_in("desk-wang").status == 303
    cookie = browser.session
    assert cookie is not None
    # The door's look-up by booking code: the code is a secret of the person who booked.
    door = browser.get(f"/door?code={SECRET_CODE}")
    answer = browser.get("/api/v1/agents", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert answer.status == 401

    def logged() -> dict[tuple[str, str, int], str]:
        entries = _access_lines(central.output())
        return {(e["method"], e["path"], e["status"]): e["who"] for e in entries}

    wanted = {
        ("GET", "/readyz", 200),
        ("GET", "/api/v1/agents", 200),
        ("GET", "/api/v1/agents", 401),
        ("GET", "/signin", 200),
        ("POST", "/signin", 303),
        ("GET", "/door", door.status),
    }
    # Each line is written once its answer has gone out.
    wait_until(lambda: wanted <= logged().keys(), 10, "a line for every request")
    entries = _access_lines(central.output())
    by_request = logged()
    assert by_request[("GET", "/api/v1/agents", 200)] == "token:ops-dashboard"
    assert by_request[("GET", "/door", door.status)] == "user:desk-wang"
    assert by_request[("POST", "/signin", 303)] == "-"
    assert by_request[("GET", "/api/v1/agents", 401)] == "-"
    assert all(isinstance(e["duration_ms"], float) for e in entries)
    text = central.output()
    for secret in (token, cookie, SECRET_CODE, PASSWORD, "dXNlcjpwYXNz"):
        assert secret not in text
    assert all(entry["message"].count(" ") == 5 for entry in entries)


def test_the_text_format_reads_the_same() -> None:
    # The message itself carries every field: a text log needs no extras.
    state: dict[str, Any] = {PRINCIPAL_STATE: Principal("ops", Role.ADMIN, None)}
    assert who(state) == "token:ops"
    state[SESSION_STATE] = object()
    assert who(state) == "user:ops"
    assert who({SIGNED_IN_USER_STATE: "desk\nwang"}) == "user:desk\\nwang"
    assert who({}) == "-"


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_a_hostile_path_or_name_becomes_one_bounded_printable_field(text: str, limit: int) -> None:
    shown = printable(text, limit)
    assert shown.isprintable()
    assert len(shown) <= 10 * limit + 1  # \U0010ffff is the longest escape
    if text.isprintable() and "\\" not in text and len(text) <= limit:
        assert shown == text
