"""The HTTP edge of the real central process: big bodies are refused before they cost anything,
every error is a problem that quotes nothing sent, parameters are bounded, and rate limits hold
and recover."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.auth import Role
from tests.conftest import Deployment
from tests.support import http_get, metric_value, wait_until

MIB = 1024 * 1024
MARKER = "Zhang-San-110101199003071234"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on its own connection; an iterator body goes chunked."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.monotonic()
    try:
        conn.request(
            method, path, body=body, headers=sent, encode_chunked=not isinstance(body, bytes)
        )
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return Answer(
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        data,
        time.monotonic() - start,
    )


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@dataclass
class Watch:
    """Polls /healthz and samples the central's resident memory from a thread."""

    port: int
    pid: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, resident_bytes(self.pid))
            try:
                answer = request(self.port, "GET", "/healthz")
                ok = answer.status == 200
            except OSError:
                ok = False
            if ok:
                self.latencies.append(answer.seconds)
            else:
                self.failures += 1
            time.sleep(0.01)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self.run, name="healthz-watch")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def big_booking(size: int) -> bytes:
    """A booking whose persons list alone is ``size`` bytes: valid JSON, every person named."""
    person = {
        "id": MARKER,
        "role": "suspect",
        "minor": False,
        "sex": "male",
        "brought_in_at": "2026-12-01T08:00:00+08:00",
        "legal_basis": "criminal_summons",
    }
    one = json.dumps(person).encode()
    count = size // (len(one) + 1)
    head = json.dumps({"case_id": "C-1", "case_type": "theft", "officers": 2}).encode()[:-1]
    return head + b', "persons": [' + b",".join([one] * count) + b"]}"


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_problem(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"] == "about:blank"
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    assert MARKER.encode() not in answer.body
    return dict(problem)


def test_a_20_mb_body_is_refused_at_once_and_costs_nothing(deployment: Deployment) -> None:
    central = deployment.start_central()
    station = deployment.token(Role.STATION, "s1")
    port = deployment.http_port
    body = big_booking(20 * MIB)
    assert len(body) >= 20 * MIB - 1024
    # The first request through a route builds FastAPI's and pydantic's machinery for it, a
    # one-time cost of any request: paid here, so that the figures below are the body's own.
    assert request(port, "POST", "/api/v1/bookings", token=station, body=b"{}").status == 422
    cases: list[tuple[str, str | None, bytes | Iterator[bytes], int]] = [
        ("authenticated, Content-Length", station, body, 413),
        ("unauthenticated, Content-Length", None, body, 413),
        ("authenticated, chunked", station, chunks(body), 413),
        ("unauthenticated, chunked", None, chunks(body), 401),
        ("bad token, chunked", "pct_not-a-token", chunks(body), 401),
    ]
    for what, token, sent, status in cases:
        before = resident_bytes(central.process.pid)
        with Watch(port, central.process.pid) as watch:
            answer = request(port, "POST", "/api/v1/bookings", token=token, body=sent)
            # A few answers at least, however fast the refusal was.
            wait_until(lambda: len(watch.latencies) >= 3, 10, "/healthz answers")
        assert_problem(answer, status)
        assert answer.seconds < 1.0, (what, answer.seconds)
        assert len(answer.body) < 1024, what
        assert watch.peak_rss - before < 50 * MIB, (what, (watch.peak_rss - before) / MIB)
        assert watch.failures == 0, what
        assert max(watch.latencies) < 1.0, (what, max(watch.latencies))
    # The cap holds for every route, not only the ones that read a body.
    assert_problem(request(port, "POST", "/healthz", body=body), 413)
    assert http_get(f"{deployment.base}/healthz")[0] == 200
    assert central.alive()


def test_error_answers_are_problems_that_quote_nothing(deployment: Deployment) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN)
    port = deployment.http_port
    booking = {
        "case_id": MARKER,
        "case_type": MARKER * 3,
        "officers": MARKER,
        "expected_arrival": MARKER,
        "session_minutes": 10**30,
        "persons": [{"id": MARKER, "sex": MARKER, MARKER: MARKER}] * 30,
        MARKER: [MARKER],
    }
    answer = request(
        port, "POST", "/api/v1/bookings", token=admin, body=json.dumps(booking).encode()
    )
    problem = assert_problem(answer, 422)
    assert problem["errors"]
    assert all(set(e) == {"location", "message"} for e in problem["errors"])
    assert any(e["location"] == "body.persons" for e in problem["errors"]), problem
    # Broken JSON: the parser's position, not the text around it.
    broken = b'{"case_id": "' + MARKER.encode() + b'", '
    assert_problem(request(port, "POST", "/api/v1/bookings", token=admin, body=broken), 422)
    # A room body with a made-up key and an impossible capacity.
    room = {"id": "R-1", "type": "waiting", "capacity": 2**70, MARKER: 1}
    body = json.dumps(room).encode()
    problem = assert_problem(request(port, "POST", "/api/v1/rooms", token=admin, body=body), 422)
    assert {e["location"] for e in problem["errors"]} >= {"body.capacity", "body.*"}

    # Found by schemathesis: a lone surrogate (valid JSON, not valid Unicode) reached SQLite and
    # answered 500; 0 passed for false although the OpenAPI says boolean.
    surrogate = b'{"code": "\\ud9a1ABCD"}'
    assert_problem(
        request(port, "POST", "/api/v1/bookings/verify", token=admin, body=surrogate), 422
    )
    patch = json.dumps({"female_staff": 0, "officers": "3"}).encode()
    path = "/api/v1/bookings/bk-000000000000"
    problem = assert_problem(request(port, "PATCH", path, token=admin, body=patch), 422)
    assert {e["location"] for e in problem["errors"]} == {"body.female_staff", "body.officers"}

    unauthenticated = assert_problem(request(port, "GET", "/api/v1/agents"), 401)
    assert unauthenticated["title"] == "Unauthorized"
    assert request(port, "GET", "/api/v1/agents").headers["www-authenticate"] == "Bearer"
    assert_problem(request(port, "GET", "/api/v1/agents/nobody", token=admin), 404)
    assert_problem(request(port, "GET", "/nowhere"), 404)
    not_allowed = request(port, "PUT", "/api/v1/bookings", token=admin, body=b"{}")
    assert_problem(not_allowed, 405)
    # Both routes of the resource, not only the first one Starlette matched.
    assert not_allowed.headers["allow"] == "GET, HEAD, POST"
    ops = deployment.token(Role.OPS)
    assert_problem(request(port, "GET", "/api/v1/events", token=ops), 403)


def test_ids_and_dates_past_their_bounds_answer_422(deployment: Deployment) -> None:
    deployment.start_central()
    admin = deployment.token(Role.ADMIN)
    port = deployment.http_port
    for path in (
        f"/api/v1/events?cursor={2**63}",
        f"/api/v1/events?cursor={10**19}",
        "/api/v1/events?cursor=" + "9" * 20,
        f"/api/v1/plan-events?after={2**63}",
        f"/api/v1/plan-events?after={10**30}",
        "/api/v1/plan-events?after=-1",
        "/api/v1/schedule?date=9999-12-31",
        "/api/v1/schedule?date=0001-01-01",
        "/api/v1/reports/fast-lane?from=0001-01-01T00:00:00%2B01:00",
        "/api/v1/reports/fast-lane?to=9999-12-31T23:59:59-14:00",
        "/api/v1/bookings?limit=" + "9" * 30,
    ):
        assert_problem(request(port, "GET", path, token=admin), 422)
    for path in ("/api/v1/events?cursor=" + "9" * 18, f"/api/v1/plan-events?after={2**63 - 1}"):
        assert request(port, "GET", path, token=admin).status == 200, path


def test_rate_limits_answer_429_with_retry_after_and_recover(deployment: Deployment) -> None:
    # Slow refills, so that however loaded the machine, a burst is not refilled on the way.
    failure_rate, token_rate = 0.2, 1.0
    deployment.start_central(
        {
            "PRECINCT_RATE_LIMIT_AUTH_FAILURE_RATE": str(failure_rate),
            "PRECINCT_RATE_LIMIT_AUTH_FAILURE_BURST": "5",
            "PRECINCT_RATE_LIMIT_TOKEN_RATE": str(token_rate),
            "PRECINCT_RATE_LIMIT_TOKEN_BURST": "20",
        }
    )
    admin = deployment.token(Role.ADMIN)
    port = deployment.http_port

    started = time.monotonic()
    guesses = [request(port, "GET", "/api/v1/agents", token="pct_guess") for _ in range(10)]
    elapsed = time.monotonic() - started
    statuses = [answer.status for answer in guesses]
    assert statuses[:5] == [401] * 5, statuses
    assert statuses.count(401) <= 5 + int(elapsed * failure_rate) + 1, statuses
    assert statuses[-1] == 429, statuses
    assert_problem(guesses[-1], 429)
    assert int(guesses[-1].headers["retry-after"]) >= 1
    # While the address is limited, guesses cost no lookup, and a good token waits too.
    assert request(port, "GET", "/api/v1/agents", token=admin).status == 429
    # Probes stay open.
    assert request(port, "GET", "/healthz").status == 200
    wait_until(
        lambda: request(port, "GET", "/api/v1/agents", token="pct_guess").status == 401,
        30,
        "the failure budget to refill",
        interval=0.5,
    )
    # That guess spent the refilled token; a good token goes through once the next one is back.
    wait_until(
        lambda: request(port, "GET", "/api/v1/agents", token=admin).status == 200,
        30,
        "the address to be let through again",
        interval=0.5,
    )

    started = time.monotonic()
    answers = [request(port, "GET", "/api/v1/agents", token=admin) for _ in range(30)]
    elapsed = time.monotonic() - started
    statuses = [answer.status for answer in answers]
    first_limited = statuses.index(429)
    # 20 of the burst, less the ones the waits above spent, plus what refilled on the way.
    assert 15 <= first_limited <= 20 + int(elapsed * token_rate) + 1, statuses
    assert_problem(answers[first_limited], 429)
    assert int(answers[first_limited].headers["retry-after"]) >= 1
    # Another token has its own budget.
    assert request(port, "GET", "/api/v1/agents", token=deployment.token(Role.OPS)).status == 200
    wait_until(
        lambda: request(port, "GET", "/api/v1/agents", token=admin).status == 200,
        30,
        "the token's budget to refill",
        interval=0.5,
    )
    _, metrics = http_get(f"{deployment.base}/metrics")
    assert metric_value(metrics, "precinct_api_rate_limited_total", 'reason="auth_failure"') >= 4
    assert metric_value(metrics, "precinct_api_rate_limited_total", 'reason="token"') >= 5
