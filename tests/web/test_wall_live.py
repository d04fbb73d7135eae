"""The wall's one live connection: signed in with a session cookie, it reaches the stream and
says so in words; a stream the centre ends (sign-out elsewhere) sends the wall to sign-in."""

from __future__ import annotations

from central.auth import Role
from tests.browser import Browser
from tests.conftest import Deployment
from tests.web.support import signed_in


def test_the_wall_goes_live_and_shows_it_in_words(deployment: Deployment, browser: Browser) -> None:
    deployment.start_central()
    page = signed_in(browser, deployment, "duty.li", Role.CENTRE)
    assert page.url.endswith("/wall")
    state = page.locator("#live-state")
    page.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")
    assert state.inner_text() == "实时"
    assert [page.locator(f"#{p}-title").inner_text() for p in ("rooms", "custody", "alarms")] == [
        "房间",
        "羁押时限",
        "告警",
    ]
    browser.screenshot(page)
    browser.assert_only_local()
