"""`precinct demo` on its embedded broker: runs, shows data, stops cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browser import Browser
from tests.support import ROOT, free_port, http_get, wait_until

# The page tests' Chromium, for the demo's wall (a fixture of tests/web, taken by name below).
from tests.web.conftest import browser  # noqa: F401

_TAG_VARIABLE = "PRECINCT_TEST_DEMO_TAG"


def _processes_tagged(tag: str) -> dict[int, str]:
    """The running processes that inherited this test's tag: the demo and everything it started,
    orphans included, and nothing another checkout's demo started on the same machine."""
    marker = f"{_TAG_VARIABLE}={tag}".encode()
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker not in environ.read_bytes().split(b"\0"):
                continue
            cmdline = (environ.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        found[int(environ.parent.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


@pytest.mark.parametrize("stop_by", ["duration", "ctrl-c"])
def test_demo_runs_and_stops_cleanly(stop_by: str, request: pytest.FixtureRequest) -> None:
    tag = uuid.uuid4().hex
    port = free_port()
    duration = ["--duration", "12"] if stop_by == "duration" else []
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "demo",
            "--listen",
            f"127.0.0.1:{port}",
            *duration,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, _TAG_VARIABLE: tag},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_get(f"{base}/readyz")[0] == 200, 30, "the demo's central")
        assert demo.stdout is not None
        banner = ""
        while "Stopping in" not in banner and "Ctrl-C" not in banner:
            line = demo.stdout.readline()
            assert line, f"the demo ended before its banner: {banner}"
            banner += line
        token = re.search(r"Bearer (pct_[A-Za-z0-9_-]+)", banner)
        assert token is not None, banner

        def agents_online() -> bool:
            status, agents = http_get(f"{base}/api/v1/agents", token.group(1))
            return (
                status == 200
                and {a["id"] for a in agents} == {"station-01-gate", "van-07"}
                and all(a["online"] and a["received"] > 0 for a in agents)
            )

        wait_until(agents_online, 20, "both demo agents online with data at the centre")
        started = _processes_tagged(tag)
        assert len(started) >= 4, started  # the demo, its central and two agents at least

        def devices_reporting() -> bool:
            status, devices = http_get(f"{base}/api/v1/devices", token.group(1))
            kinds = {(d["id"], kind) for d in devices for kind in d["state"]}
            return (
                status == 200
                and {
                    ("cabinet-01", "slot_status"),
                    ("cabinet-01", "inventory"),
                    ("van-07-gps", "fix"),
                    ("band-001", "heart_rate"),
                    ("wristbands-01", "availability"),
                }
                <= kinds
            )

        wait_until(devices_reporting, 20, "the simulated devices at the centre")
        # The demo's rooms and bookings: planned, and the custody clocks running.
        today = datetime.now(UTC).date().isoformat()
        status, schedule = http_get(f"{base}/api/v1/schedule?date={today}", token.group(1))
        assert status == 200
        assert {e["booking"] for e in schedule} | {
            e["booking"]
            for e in http_get(
                f"{base}/api/v1/schedule?date={(datetime.now(UTC) + timedelta(days=1)).date()}",
                token.group(1),
            )[1]
        } >= set(re.findall(r"(bk-[0-9a-f]{12})", banner))
        status, clocks = http_get(f"{base}/api/v1/custody", token.group(1))
        assert status == 200
        assert {c["level"] for c in clocks if c["person"] == "S-1"} >= {"yellow"}
        if stop_by == "ctrl-c":
            # A forced door and an opened strap a few seconds in, as alarms at the centre.
            # The strap is on the walk-in suspect's wrist: its alarm names her.
            def incidents_alarmed() -> bool:
                status, page = http_get(f"{base}/api/v1/alarms", token.group(1))
                alarms = page["items"] if status == 200 else []
                return any(a["kind"] == "door_forced" for a in alarms) and any(
                    a["kind"] == "strap_opened" and a["person"] == "S-1" and a["booking"]
                    for a in alarms
                )

            wait_until(incidents_alarmed, 30, "the demo's forced-door and strap alarms")
            status, inside = http_get(f"{base}/api/v1/persons?in_area=true", token.group(1))
            assert status == 200, inside
            assert [(p["person"], p["band"]["band"]) for p in inside] == [("S-1", "band-001")]
            _the_wall_fills(request.getfixturevalue("browser"), base, banner)
            demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        # Whatever outlived the demo is reported below, but never left running on the machine.
        leftovers = _processes_tagged(tag)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    assert "Precinct demo stopped." in out
    assert leftovers == {}


def _the_wall_fills(chromium: Browser, base: str, banner: str) -> None:
    """The printed centre user signs in to the printed wall and sees the van on the map, the
    agents in the health panel and the alarms; the picture goes to docs/wall.png."""
    wall = re.search(r"wall:\s+(http://\S+/wall)", banner)
    sign_in = re.search(r"sign in:\s+(centre) / (\S+)", banner)
    assert wall is not None, banner
    assert sign_in is not None, banner
    assert wall.group(1) == f"{base}/wall"
    assert re.search(r"sign in:\s+station / \S+", banner), banner
    page = chromium.new_page()
    page.goto(wall.group(1))  # no session yet: to the sign-in form, then back to the wall
    page.fill("#name", sign_in.group(1))
    page.fill("#password", sign_in.group(2))
    page.click("button[type=submit]")
    page.wait_for_url(wall.group(1))
    page.goto(f"{wall.group(1)}?lang=zh")  # the centre's language (the browser asks for en)
    page.wait_for_function("document.getElementById('live-state').dataset.state === 'live'")
    # The van on the map with its track, the booking it carries and its ETA beside it.
    page.locator(".panel-vans path.van-marker").wait_for()
    van = page.locator('#vans-list tr[data-device="van-07-gps"][data-lat]')
    van.wait_for()
    assert van.get_attribute("data-state") in ("en_route", "late", "arrived")
    page.wait_for_function(
        "Number(document.querySelector('#vans-list tr[data-device=\"van-07-gps\"]')"
        ".dataset.trackPoints) >= 3"
    )
    # Both agents online in the health panel, the bands' batteries reported.
    for agent in ("station-01-gate", "van-07"):
        page.locator(f'#health-agents tr[data-key="{agent}"][data-state="online"]').wait_for()
    page.locator("#health-devices .battery").first.wait_for()
    # The forced door and the strap are open alarms for the signed-in centre user.
    kinds = page.evaluate(
        "fetch('/api/v1/alarms?state=open').then(r => r.json())"
        ".then(page => page.items.map(a => a.kind))"
    )
    assert {"door_forced", "strap_opened"} <= set(kinds)
    chromium.screenshot(page, "wall")
    chromium.assert_only_local()
