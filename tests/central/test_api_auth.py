"""Every /api/ call needs a token; each role sees only its scope (OWASP API1 checked by hand)."""

from __future__ import annotations

import time

from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, wait_until


def test_tokens_roles_and_station_scope(deployment: Deployment) -> None:
    deployment.start_central()
    deployment.start_agent("gate-1", station="s1", synthetic=20)
    deployment.start_agent("gate-2", station="s2", synthetic=20)
    admin = deployment.token(Role.ADMIN)
    base = deployment.base

    def both_online() -> bool:
        status, body = http_get(f"{base}/api/v1/agents", admin)
        return status == 200 and sum(1 for a in body if a["online"]) == 2

    wait_until(both_online, 15, "both agents online")
    time.sleep(0.5)
    station_1 = deployment.token(Role.STATION, "s1")
    ops = deployment.token(Role.OPS)
    centre = deployment.token(Role.CENTRE)

    for path in ("/api/v1/agents", "/api/v1/agents/gate-1", "/api/v1/events"):
        assert http_get(base + path)[0] == 401
        assert http_get(base + path, "pct_not-a-real-token")[0] == 401
        assert http_get(base + path, "")[0] == 401

    status, agents = http_get(f"{base}/api/v1/agents", station_1)
    assert status == 200
    assert [a["id"] for a in agents] == ["gate-1"]
    assert http_get(f"{base}/api/v1/agents/gate-1", station_1)[0] == 200
    assert http_get(f"{base}/api/v1/agents/gate-2", station_1)[0] == 403
    assert http_get(f"{base}/api/v1/events?agent=gate-2", station_1)[0] == 403
    status, page = http_get(f"{base}/api/v1/events?limit=1000", station_1)
    assert status == 200
    assert page["items"]
    assert {e["agent"] for e in page["items"]} == {"gate-1"}

    assert http_get(f"{base}/api/v1/agents", ops)[0] == 200
    assert http_get(f"{base}/api/v1/events", ops)[0] == 403
    status, agents = http_get(f"{base}/api/v1/agents", centre)
    assert status == 200
    assert {a["id"] for a in agents} == {"gate-1", "gate-2"}
    # Unprotected probes stay open for load balancers and Prometheus.
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert http_get(base + path)[0] == 200


def test_events_pages_with_a_cursor_and_filters(deployment: Deployment) -> None:
    deployment.start_central()
    deployment.start_agent("a1", synthetic=200)
    admin = deployment.token(Role.ADMIN)
    base = deployment.base

    def enough() -> bool:
        status, body = http_get(f"{base}/api/v1/agents/a1", admin)
        return status == 200 and body["received"] >= 250

    wait_until(enough, 15, "250 messages")
    seen: list[int] = []
    cursor = ""
    for _ in range(3):
        status, page = http_get(
            f"{base}/api/v1/events?agent=a1&class=telemetry&limit=50{cursor}", admin
        )
        assert status == 200
        assert len(page["items"]) == 50
        assert all(e["class"] == "telemetry" and e["kind"] == "reading" for e in page["items"])
        seen.extend(e["seq"] for e in page["items"])
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) == 150
    assert seen == sorted(seen)
    status, page = http_get(f"{base}/api/v1/events?kind=heartbeat", admin)
    assert status == 200
    assert all(e["class"] == "event" for e in page["items"])
    assert http_get(f"{base}/api/v1/events?limit=0", admin)[0] == 422
    assert http_get(f"{base}/api/v1/events?cursor=abc", admin)[0] == 422
    assert http_get(f"{base}/api/v1/agents/nobody", admin)[0] == 404
