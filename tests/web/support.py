"""What page tests share: a person signed in through the real sign-in form."""

from __future__ import annotations

import contextlib

from playwright.sync_api import Page

from central.auth import Role
from central.users import UserError
from tests.browser import Browser
from tests.central.web_client import PASSWORD, add_user
from tests.conftest import Deployment


def signed_in(
    browser: Browser,
    deployment: Deployment,
    name: str,
    role: Role,
    station: str | None = None,
    *,
    lang: str = "zh",
) -> Page:
    """A new page of ``name`` (made a user with ``role`` and ``station`` if not one yet),
    signed in through the form in ``lang`` (``zh`` or ``en``), on its role's home page."""
    with contextlib.suppress(UserError):  # already a user of this store
        add_user(deployment.db, name, role, station)
    page = browser.new_page()
    page.goto(f"{deployment.base}/signin?lang={lang}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
    return page
