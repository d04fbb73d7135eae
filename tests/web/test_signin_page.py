"""The sign-in page in Chromium: a person signs in, htmx carries the CSRF token by itself, the
language switch works, and signing out leads back to the form."""

from __future__ import annotations

from central.auth import Role
from tests.browser import Browser
from tests.central.web_client import PASSWORD, add_user
from tests.conftest import Deployment

_HTMX_POST = """() => new Promise((resolve) => {
  document.body.addEventListener(
    "htmx:afterRequest", (e) => resolve(e.detail.xhr.status), { once: true });
  htmx.ajax("POST", "/api/v1/bookings", { source: document.body, swap: "none" });
})"""

_FETCH_POST = """() => fetch("/api/v1/bookings", {
  method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
}).then((r) => r.status)"""


def test_a_person_signs_in_and_out_in_a_browser(deployment: Deployment, browser: Browser) -> None:
    add_user(deployment.db, "zhang.wei", Role.STATION, "s1")
    deployment.start_central()
    page = browser.new_page()
    page.goto(f"{deployment.base}/")
    page.wait_for_url("**/signin")
    # This Chromium asks for English (Accept-Language en-US); a centre's PCs ask for Chinese.
    assert page.locator("html").get_attribute("lang") == "en"
    page.set_extra_http_headers({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page.reload()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录"
    browser.screenshot(page, "form")

    page.fill("#name", "zhang.wei")
    page.fill("#password", "not it")
    page.click("button[type=submit]")
    page.locator("p.error").wait_for()
    assert page.locator("p.error").inner_text() == "用户名或密码错误。"

    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/bookings/mine")
    assert page.locator("h1").inner_text() == "我的预约"
    assert page.locator(".who .name").inner_text() == "zhang.wei"
    # The session cookie is out of the page scripts' reach.
    assert "precinct_session" not in page.evaluate("document.cookie")
    assert page.evaluate("typeof htmx") == "object"
    # htmx sends the token from <body hx-headers> (past the gate: the body is what is wrong);
    # a script that leaves it out is refused.
    assert page.evaluate(_HTMX_POST) == 422
    assert page.evaluate(_FETCH_POST) == 403
    browser.screenshot(page, "home")

    page.click("a[hreflang=en]")
    page.wait_for_url("**/bookings/mine?lang=en")
    assert page.locator("h1").inner_text() == "My bookings"
    page.click("form.signout button")
    page.wait_for_url("**/signin")
    assert page.locator("h1").inner_text() == "Sign in"  # the language choice stays
    page.goto(f"{deployment.base}/bookings/mine")
    page.wait_for_url("**/signin")
    browser.assert_only_local()
