"""``/docs`` and ``/static`` on a real central: Swagger UI from the package, in Chromium, with
nothing fetched from outside 127.0.0.1."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from tests.browser import Browser, non_local
from tests.conftest import Deployment
from tests.support import http_get

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_IMMUTABLE = "public, max-age=31536000, immutable"


def _fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - our own test server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_docs_renders_every_operation_with_no_request_leaving_the_machine(
    deployment: Deployment, browser: Browser
) -> None:
    deployment.start_central()
    status, spec = http_get(f"{deployment.base}/openapi.json")
    assert status == 200
    operations = sum(
        1
        for path in spec["paths"].values()
        for method, operation in path.items()
        if method in _METHODS
        for _ in operation.get("tags", ["default"])
    )
    print(f"chromium launched in {browser.launch_seconds:.2f} s")

    page = browser.new_page()
    page.goto(f"{deployment.base}/docs")
    # Swagger UI fetches /openapi.json and renders one block per operation and tag.
    alarms = page.locator(".opblock-get .opblock-summary-path[data-path='/api/v1/alarms']")
    alarms.first.wait_for()
    rendered = page.locator(".opblock").count()
    assert rendered == operations
    assert "Unable to render this definition" not in page.content()
    assert page.title() == "Precinct central - API"
    browser.screenshot(page)

    browser.assert_only_local()
    base = deployment.base
    assert f"{base}/openapi.json" in browser.requests
    assert any(
        re.fullmatch(rf"{base}/static/vendor/swagger-ui/swagger-ui-bundle\.js\?v=\w+", url)
        for url in browser.requests
    )


def test_static_files_are_open_and_cached_by_their_versioned_url(deployment: Deployment) -> None:
    deployment.start_central()
    base = deployment.base
    status, headers, body = _fetch(f"{base}/docs")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', body.decode())
    assert len(named) == 3
    for url in named:
        # No token: a static file holds no data.
        status, headers, _ = _fetch(base + url)
        assert (status, headers["cache-control"]) == (200, _IMMUTABLE), url
        # Without its version, or with an old one, the browser must ask again each time.
        bare = url.partition("?")[0]
        for other in (bare, f"{bare}?v=000000000000"):
            status, headers, _ = _fetch(base + other)
            assert (status, headers["cache-control"]) == (200, "no-cache"), other
    status, headers, _ = _fetch(f"{base}/static/vendor/htmx/htmx.min.js")
    assert status == 200
    assert headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "etag" in headers

    status, headers, body = _fetch(f"{base}/static/vendor/htmx/nothing.js")
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 404
    status, headers, _ = _fetch(f"{base}/static/vendor/htmx/htmx.min.js", "POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    status, headers, _ = _fetch(f"{base}/docs", "POST")
    assert (status, headers["allow"]) == (405, "GET")
    # A path out of the directory finds nothing.
    assert _fetch(f"{base}/static/%2e%2e/vendor_manifest.py")[0] == 404

    # FastAPI's CDN pages are gone; /docs is not an API route.
    assert _fetch(f"{base}/redoc")[0] == 404
    assert _fetch(f"{base}/docs/oauth2-redirect")[0] == 404
    _, spec = http_get(f"{base}/openapi.json")
    assert not {"/docs", "/static"} & set(spec["paths"])


def test_the_record_catches_a_page_reaching_outside(browser: Browser) -> None:
    script = "https://cdn.example.org/htmx.min.js"
    socket = "wss://tiles.example.org/socket"
    page = browser.new_page()
    with page.expect_event("requestfailed") as failed:
        page.set_content(f'<script src="{script}"></script>')
    # Nothing outside resolves inside the test browser: the request is seen, then fails.
    assert failed.value.url == script
    with page.expect_websocket() as opened:
        page.evaluate(f"new WebSocket({socket!r})")
    assert opened.value.url == socket
    assert non_local(browser.requests) == [script, socket]
    with pytest.raises(AssertionError, match=re.escape("2 of 2 requests left 127.0.0.1")):
        browser.assert_only_local()
    # Seen and reported: cleared so that the fixture's own check after the test passes.
    browser.requests.clear()
