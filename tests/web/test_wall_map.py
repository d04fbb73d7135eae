"""The wall's vans map and health panels in Chromium against a real central: a replayed van
moves on the map and its track grows, the GCJ-02 datum for Chinese tile servers, a configured
tile server (here the test's own on 127.0.0.1) is used and none is without one, and an agent
going offline reaches the health panel in words."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from central.auth import Role
from devices.gps.track import DEMO_ROUTE
from tests.browser import Browser
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.central.test_stream import gps_receiver
from tests.conftest import Deployment
from tests.support import Child, http_request
from tests.web.support import signed_in

VAN_AGENT = "van-9"
VAN = "van-9-gps"
STATION = "s-vans"
# The centre at the end of the replayed drive, a station geofence at its start.
MAP_ENV = {
    "PRECINCT_TIMEZONE": "Asia/Shanghai",
    "PRECINCT_CENTRE_LAT": str(DEMO_ROUTE[-1][0]),
    "PRECINCT_CENTRE_LON": str(DEMO_ROUTE[-1][1]),
    "PRECINCT_MAP_STATIONS": f"{STATION}:{DEMO_ROUTE[0][0]},{DEMO_ROUTE[0][1]},300",
}
# WGS-84 -> GCJ-02, from eviltransform's published test vectors.
GCJ02_VECTORS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


def _png() -> bytes:
    """A 1x1 grey PNG: a tile a browser decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xc0"))
        + chunk(b"IEND", b"")
    )


class _Tiles(http.server.ThreadingHTTPServer):
    requested: list[str]


class _TileHandler(http.server.BaseHTTPRequestHandler):
    server: _Tiles
    tile = _png()

    def do_GET(self) -> None:  # the http.server API's name
        self.server.requested.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.tile)))
        self.end_headers()
        self.wfile.write(self.tile)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tile_server() -> Iterator[_Tiles]:
    """The force's GIS tile server, played by one on 127.0.0.1 that records every path asked."""
    server = _Tiles(("127.0.0.1", 0), _TileHandler)
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, name="test-tiles", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _start_van(deployment: Deployment) -> Child:
    """A van agent reading a replayed drive (a fix a second) on a pty; returns the simulator."""
    simulator, pty = gps_receiver(deployment, period=1.0)
    config = deployment.root / "van.toml"
    config.write_text(f'[[devices]]\nkind = "gps"\nid = "{VAN}"\ntransport = "{pty}"\n')
    deployment.start_agent(VAN_AGENT, station=STATION, extra=["--config", str(config)])
    return simulator


def _book_the_van(deployment: Deployment) -> None:
    """A booking carried by the van, expected in 20 minutes: the list shows its ETA."""
    admin = deployment.token(Role.ADMIN)
    api = f"{deployment.base}/api/v1"
    for room in ROOMS:
        assert http_request("POST", f"{api}/rooms", admin, room)[0] == 201
    arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    status, answer = http_request(
        "POST", f"{api}/bookings", admin, booking_body(arrival, station=STATION, van=VAN)
    )
    assert status == 201, answer


def _van_row(page: Page) -> dict[str, str]:
    return dict(
        page.eval_on_selector(f'#vans-list tr[data-device="{VAN}"]', "row => ({...row.dataset})")
    )


def _marker_path(page: Page) -> str:
    return str(page.get_attribute(".panel-vans path.van-marker", "d"))


def test_a_replayed_van_moves_on_the_map(deployment: Deployment, browser: Browser) -> None:
    deployment.start_central(MAP_ENV)
    _book_the_van(deployment)
    simulator = _start_van(deployment)
    try:
        page = signed_in(browser, deployment, "duty.wang", Role.CENTRE)
        row = page.locator(f'#vans-list tr[data-device="{VAN}"][data-lat]')
        row.wait_for()
        first = _van_row(page)
        first_marker = _marker_path(page)
        # The marker moves and the track grows with the van_position events, without a reload.
        page.wait_for_function(
            """([device, lat, lon, points]) => {
                const row = document.querySelector(`#vans-list tr[data-device="${device}"]`);
                return row && (row.dataset.lat !== lat || row.dataset.lon !== lon)
                    && Number(row.dataset.trackPoints) >= Number(points) + 2;
            }""",
            arg=[VAN, first["lat"], first["lon"], first["trackPoints"]],
        )
        moved = _van_row(page)
        assert _marker_path(page) != first_marker
        assert page.locator(".panel-vans path.van-track").count() == 1
        assert page.locator(".panel-vans path.geofence-centre").count() == 1
        assert page.locator(".panel-vans path.geofence-station").count() == 1
        assert page.locator(".panel-vans .leaflet-control-scale").is_visible()
        # Drawn in WGS-84 when no datum is configured.
        assert (moved["mapLat"], moved["mapLon"]) == (moved["lat"], moved["lon"])
        # The state in words, the ETA as a time in the centre's zone, the speed in km/h.
        cells = page.locator(f'#vans-list tr[data-device="{VAN}"] td').all_inner_texts()
        assert cells[0] == VAN
        assert cells[1] == STATION
        assert cells[2] == "36 km/h"  # the drive replays at 10 m/s
        assert moved["state"] in ("en_route", "late")
        assert cells[4] in ("在途", "晚到")
        assert "距中心" in cells[3]
        assert ":" in cells[3]
        assert page.locator(".fence-label", has_text="办案中心").is_visible()
        browser.screenshot(page)
        # No basemap configured: no tile was asked for, from anywhere.
        assert not [url for url in browser.requests if "tile" in url.lower()]
        browser.assert_only_local()
    finally:
        simulator.kill()


def test_a_configured_tile_server_is_used_with_the_gcj02_datum(
    deployment: Deployment, browser: Browser, tile_server: _Tiles
) -> None:
    port = tile_server.server_address[1]
    deployment.start_central(
        MAP_ENV
        | {
            "PRECINCT_MAP_TILE_URL": f"http://127.0.0.1:{port}/tiles/{{z}}/{{x}}/{{y}}.png",
            "PRECINCT_MAP_ATTRIBUTION": "市局 PGIS <b>",
            "PRECINCT_MAP_CRS": "gcj02",
        }
    )
    simulator = _start_van(deployment)
    try:
        page = signed_in(browser, deployment, "duty.zhao", Role.CENTRE)
        page.locator(f'#vans-list tr[data-device="{VAN}"][data-lat]').wait_for()
        page.locator(".panel-vans img.leaflet-tile-loaded").first.wait_for()
        assert tile_server.requested, "no tile was asked of the configured server"
        assert all(p.startswith("/tiles/") and p.endswith(".png") for p in tile_server.requested)
        tiles = [u for u in browser.requests if urlsplit(u).port == port]
        assert tiles
        assert all(urlsplit(u).hostname == "127.0.0.1" for u in tiles)
        # The operator's attribution is text, not markup.
        assert page.locator(".leaflet-control-attribution").inner_text() == "市局 PGIS <b>"
        # The datum module against eviltransform's vectors, to 1e-6 degrees.
        results = page.evaluate(
            """async (points) => {
                const datum = await import("/static/datum.js");
                return points.map(([lat, lon]) => datum.wgs84ToGcj02(lat, lon));
            }""",
            [list(wgs) for wgs, _ in GCJ02_VECTORS],
        )
        for (_, expected), got in zip(GCJ02_VECTORS, results, strict=True):
            assert got == pytest.approx(list(expected), abs=1e-6)
        outside = page.evaluate('import("/static/datum.js").then(d => d.wgs84ToGcj02(51.5, -0.12))')
        assert outside == [51.5, -0.12]  # outside China: unchanged
        # The van is drawn in GCJ-02: its WGS-84 fix shifted by the same module.
        van = _van_row(page)
        shifted = page.evaluate(
            "([lat, lon]) => import('/static/datum.js').then(d => d.wgs84ToGcj02(lat, lon))",
            [float(van["lat"]), float(van["lon"])],
        )
        assert [float(van["mapLat"]), float(van["mapLon"])] == pytest.approx(shifted, abs=1e-9)
        assert abs(float(van["mapLon"]) - float(van["lon"])) > 1e-3  # a few hundred metres
        browser.screenshot(page)
        browser.assert_only_local()
    finally:
        simulator.kill()


def test_health_shows_an_agent_going_offline_in_words(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(MAP_ENV)
    agent = deployment.start_agent("s1-gate", station="s1", synthetic=5)
    page = signed_in(browser, deployment, "duty.sun", Role.CENTRE)
    row = page.locator('#health-agents tr[data-key="s1-gate"]')
    page.locator('#health-agents tr[data-key="s1-gate"][data-state="online"]').wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["s1-gate", "s1", "在线"]
    # Last seen: relative, and the time in the centre's zone (UTC+8, never the browser's).
    seen = row.locator("time.seen")
    assert seen.locator(".ago").inner_text()
    # The full time in the title, in the centre's zone (UTC+8), whatever the browser's zone.
    stamp = datetime.strptime(f"{seen.get_attribute('title')} +0800", "%Y-%m-%d %H:%M:%S %z")
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=2), stamp
    assert seen.locator(".at").inner_text() == stamp.strftime("%m-%d %H:%M:%S")
    browser.screenshot(page, "online")
    agent.stop()  # a clean goodbye: agent_offline reaches the page over the stream
    page.locator('#health-agents tr[data-key="s1-gate"][data-state="offline"]').wait_for()
    badge = row.locator(".health-state")
    assert badge.inner_text() == "离线"
    # Not colour alone: the word, and an icon before it.
    icon = page.evaluate("el => getComputedStyle(el, '::before').content", badge.element_handle())
    assert icon == '"✖"'
    browser.screenshot(page, "offline")
    browser.assert_only_local()


def test_operations_see_health_but_not_where_vans_are(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central(MAP_ENV)
    page = signed_in(browser, deployment, "ops.qian", Role.OPS, lang="en")
    page.locator("#health-agents").wait_for()
    assert page.locator(".vans-hidden").inner_text() == "Where vans are is not shown to operations."
    assert page.locator("#vans-map").count() == 0
    assert page.locator("#health-agents caption").inner_text() == "Edge agents"
    browser.screenshot(page)
    browser.assert_only_local()
