"""The wall's one live connection: signed in with a session cookie, it reaches the stream and
says so in words; a stream the centre ends (sign-out elsewhere) sends the wall to sign-in."""

from __future__ import annotations

from pathlib import Path

from central.auth import Role
from tests.browser import Browser
from tests.conftest import Deployment
from tests.support import http_get, wait_until
from tests.test_devices_end_to_end import CabinetSimulator, _agent_config
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


def test_the_wall_resumes_after_the_centre_is_killed_and_misses_nothing(
    deployment: Deployment, browser: Browser, tmp_path: Path
) -> None:
    """The browser's reconnect sends Last-Event-ID: an alarm raised while the wall was cut off
    is on the wall once the centre is back, with no reload of the page."""
    env = {"PRECINCT_ALARM_INTERVAL": "0.2"}
    deployment.start_central(env)
    admin = deployment.token(Role.ADMIN)
    board = CabinetSimulator()
    try:
        config = _agent_config(tmp_path / "agent.toml", tmp_path / "cabinets", board.port)
        deployment.start_agent("station-1-files", extra=["--config", str(config)])

        def cabinet_known() -> bool:
            status, devices = http_get(f"{deployment.base}/api/v1/devices", admin)
            return status == 200 and any(d["id"] == "cab-1" and d["online"] for d in devices)

        wait_until(cabinet_known, 20, "the cabinet at the centre")
        page = signed_in(browser, deployment, "duty.li", Role.CENTRE)
        page.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        assert deployment.central is not None
        deployment.central.kill()
        page.wait_for_function(
            "document.getElementById('live-state').dataset.state === 'reconnecting'"
        )
        browser.screenshot(page, "cut-off")
        # Forced while the centre is down: the agent keeps it and delivers it after the restart.
        board.send("force 3")
        deployment.start_central(env)
        row = page.locator("#alarms-list li[data-kind='door_forced']")
        row.wait_for(timeout=30_000)
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("#live-state").inner_text() == "实时"
        browser.screenshot(page, "resumed")
        browser.assert_only_local()
    finally:
        board.close()
