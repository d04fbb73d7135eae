"""Pages in a real browser: Debian's Chromium driven by Playwright for Python.

Playwright's own browser download is never used (it needs the internet, which the centre does
not have): ``tests/run.sh`` installs Debian's ``chromium`` with apt-get and this module starts
that binary through ``executable_path``. Every test gets a fresh browser with a fresh profile
directory; every request a page makes is recorded, so a test can show that nothing left
127.0.0.1, and every page is photographed into ``test-output/screenshots/``.

Settings (environment):

- ``PRECINCT_CHROMIUM``: the browser binary, default ``/usr/bin/chromium``.
- ``PRECINCT_BROWSER_TESTS=optional``: skip browser tests when that binary is missing. By
  default a missing browser fails them: the test command installs it.
- ``PRECINCT_TEST_OUTPUT``: where screenshots go (below ``screenshots/``), default
  ``test-output`` in the repository (ignored by git).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Error, Page, Playwright, WebSocket

from tests.support import ROOT

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# A closed network: without these Chromium keeps trying to reach Google's servers (updates,
# sync, field trials, QUIC probes) whatever page it shows. With the first six alone, Debian's
# Chromium 156 still looked up accounts.google.com and update.googleapis.com at start (strace):
# the resolver rule leaves no name but localhost resolvable inside the browser, so nothing is
# looked up or reached outside. A page's request to an outside host is still recorded (the
# request event comes before the lookup) and then fails. No sandbox: the tests run as root.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Schemes that never touch the network.
_OFFLINE_SCHEMES = frozenset({"data", "blob", "about"})
# A wait in a page test fails well inside the suite's per-test timeout (120 s).
_PAGE_TIMEOUT_MS = 15_000
_SCREENSHOT_TIMEOUT_MS = 5_000


def chromium_path() -> Path:
    return Path(os.environ.get("PRECINCT_CHROMIUM", DEFAULT_CHROMIUM))


def browser_tests_optional() -> bool:
    return os.environ.get("PRECINCT_BROWSER_TESTS", "") == "optional"


def screenshot_dir() -> Path:
    return Path(os.environ.get("PRECINCT_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"


def non_local(urls: Iterable[str]) -> list[str]:
    """The URLs that would leave this machine: any with a host other than the loopback."""
    outside = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in _OFFLINE_SCHEMES:
            continue
        if parts.hostname not in LOCAL_HOSTS:
            outside.append(url)
    return outside


def assert_only_local(urls: Iterable[str]) -> None:
    """Every request went to 127.0.0.1 (or another loopback name): nothing left the centre."""
    seen = list(urls)
    outside = non_local(seen)
    assert not outside, f"{len(outside)} of {len(seen)} requests left 127.0.0.1: {outside}"


def _file_stem(nodeid: str) -> str:
    # tests/web/test_docs_page.py::test_x[a] -> web/test_docs_page/test_x-a
    path, _, name = nodeid.partition("::")
    stem = Path(path).with_suffix("")
    if stem.parts and stem.parts[0] == "tests":
        stem = Path(*stem.parts[1:])
    return str(stem / re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-"))


@dataclass
class Browser:
    """One Chromium with its own profile, for one test.

    ``requests`` holds the URL of every request and WebSocket any of its pages opened, in
    order. ``screenshot`` writes ``<screenshot dir>/<test path>/<test name>[-label].png``;
    pages still open at the end of the test are photographed then too (``-end``), so a failed
    test leaves a picture of what it saw.
    """

    context: BrowserContext
    shots: Path
    launch_seconds: float
    requests: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    _shot_pages: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.context.set_default_timeout(_PAGE_TIMEOUT_MS)
        # Context-wide, so popups and workers are seen too.
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.on("page", self._watch_sockets)
        for page in self.context.pages:
            self._watch_sockets(page)

    def _watch_sockets(self, page: Page) -> None:
        def opened(socket: WebSocket) -> None:
            self.requests.append(socket.url)

        page.on("websocket", opened)

    def new_page(self) -> Page:
        # A persistent context starts with one blank tab: use it first.
        for page in self.context.pages:
            if page.url == "about:blank" and id(page) not in self._shot_pages:
                return page
        return self.context.new_page()

    def screenshot(self, page: Page, label: str = "") -> Path:
        path = self.shots.with_name(self.shots.name + (f"-{label}" if label else "") + ".png")
        if path in self.written:
            raise ValueError(f"{path.name} written already in this test: give another label")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True, timeout=_SCREENSHOT_TIMEOUT_MS)
        self.written.append(path)
        self._shot_pages.add(id(page))
        return path

    def assert_only_local(self) -> None:
        assert_only_local(self.requests)

    def close(self) -> None:
        try:
            for page in self.context.pages:
                if id(page) not in self._shot_pages and page.url != "about:blank":
                    # A hung page: the test's own failure says more than a picture.
                    with contextlib.suppress(Error):
                        self.screenshot(page, "end")
        finally:
            self.context.close()


def launch(playwright: Playwright, profile: Path, nodeid: str) -> Browser:
    """Start Debian's Chromium, headless, with a new profile directory."""
    started = time.perf_counter()
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(chromium_path()),
        args=list(CHROMIUM_ARGS),
        headless=True,
        viewport={"width": 1920, "height": 1080},
    )
    seconds = time.perf_counter() - started
    return Browser(context, screenshot_dir() / _file_stem(nodeid), seconds)
