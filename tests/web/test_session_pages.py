"""Sessions as a person meets them in Chromium: an idle session ends and the next click leads to
the sign-in form, and a form posted without its CSRF token is refused."""

from __future__ import annotations

import time

from central.auth import Role
from tests.browser import Browser
from tests.conftest import Deployment
from tests.web.support import signed_in


def test_an_expired_session_leads_back_to_sign_in(deployment: Deployment, browser: Browser) -> None:
    # Idle after 3 s: long enough to sign in and see the page, short enough to wait out.
    deployment.start_central({"PRECINCT_SESSION_IDLE_MINUTES": "0.05"})
    page = signed_in(browser, deployment, "desk.wang", Role.CENTRE, lang="en")
    assert page.url.endswith("/wall")
    signed_at = time.monotonic()
    # The open stream keeps a session alive only while it is within the rules; once it ends
    # the centre closes the stream and the wall goes to the sign-in form by itself.
    page.wait_for_url("**/signin", timeout=30_000)
    page.goto(f"{deployment.base}/door")
    page.wait_for_url("**/signin")
    assert time.monotonic() - signed_at >= 2.5
    assert page.locator("h1").inner_text() == "Sign in"
    browser.screenshot(page, "expired")
    browser.assert_only_local()


def test_a_form_without_its_csrf_token_is_refused(deployment: Deployment, browser: Browser) -> None:
    deployment.start_central()
    page = signed_in(browser, deployment, "desk.zhao", Role.CENTRE, lang="en")
    # The sign-out form, posted by a script that leaves the token out: refused, still signed in.
    status = page.evaluate(
        """() => fetch("/signout", {method: "POST", redirect: "manual",
             headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""})
             .then((r) => r.status)"""
    )
    assert status == 403
    page.goto(f"{deployment.base}/wall")
    assert page.url.endswith("/wall")
    browser.assert_only_local()
