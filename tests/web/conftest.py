"""Fixtures for page tests (the helpers are in tests/browser.py).

``browser`` is a fresh Debian Chromium with its own profile, for one test. A page test takes it
with ``deployment``, starts the central, opens ``browser.new_page()``, goes to a page of
``deployment.base``, waits for what it shows, and calls ``browser.screenshot(page)`` and
``browser.assert_only_local()``; after the test the fixture photographs any page still open and
asserts again that no request left 127.0.0.1. ``tests/web/test_docs_page.py`` is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import Browser, browser_tests_optional, chromium_path, launch


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    executable = chromium_path()
    if not executable.is_file():
        reason = f"{executable} is missing: the test command installs Debian's chromium"
        if browser_tests_optional():
            pytest.skip(f"{reason} (PRECINCT_BROWSER_TESTS=optional)")
        pytest.fail(reason)
    # One Playwright driver per test: its sync API runs an event loop of its own, which must
    # be gone before a later asyncio test starts one.
    with sync_playwright() as playwright:
        opened = launch(playwright, tmp_path / "chromium-profile", request.node.nodeid)
        try:
            yield opened
        finally:
            opened.close()
        # Whatever a test asserted, no page may have reached outside the centre.
        opened.assert_only_local()
