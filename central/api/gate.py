"""The door of ``/api/``: rate limits and the bearer token, checked from the headers alone,
before the body is read (pure ASGI).

FastAPI reads and parses a request's whole body before any dependency runs, so authentication
in a dependency comes too late: an unauthenticated 20 MB body would be parsed first. Here a
request without a valid token costs one indexed lookup and is answered 401; the principal found
is left in the request's state for :func:`central.api.deps.get_principal`.

Limits (token buckets, :mod:`central.api.rate_limit`): failed authentications per client
address (a client past it gets 429 for every ``/api/`` request until its bucket refills, so
guessing costs no lookups), then requests per valid token.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from central.api.problems import problem
from central.api.rate_limit import TokenBuckets, retry_after
from central.auth import Principal, authenticate
from central.settings import CentralSettings
from central.store import connect
from monitoring.central_metrics import CentralMetrics

API_PREFIX = "/api/"
PRINCIPAL_STATE = "principal"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class _TokenLookup:
    """One read-only connection, used on the event loop only: the indexed lookup takes tens of
    microseconds, less than a hop to a worker thread and far less than opening a connection
    (which parses the schema) for every request. A read in WAL mode does not wait for writers."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None

    def __call__(self, token: str) -> Principal | None:
        if self.conn is None:
            self.conn = connect(self.db, readonly=True)
        try:
            return authenticate(self.conn, token)
        except sqlite3.Error:
            self.conn.close()
            self.conn = None  # opened again for the next request
            raise


class ApiGate:
    def __init__(
        self,
        app: ASGIApp,
        settings: CentralSettings,
        metrics: CentralMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.lookup = _TokenLookup(settings.db)
        self.metrics = metrics
        self.clock = clock
        self.failures = TokenBuckets(
            settings.rate_limit_auth_failure_rate, settings.rate_limit_auth_failure_burst
        )
        self.requests = TokenBuckets(
            settings.rate_limit_token_rate, settings.rate_limit_token_burst
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.failures.wait(address, self.clock())
        if wait > 0:
            self.metrics.api_rate_limited.labels("auth_failure").inc()
            answer = problem(
                429,
                "too many failed authentications from this address",
                headers={"Retry-After": retry_after(wait)},
            )
            await answer(scope, receive, send)
            return
        token = bearer_token(scope)
        principal = None if token is None else self.lookup(token)
        if token is None or principal is None:
            self.failures.take(address, self.clock())
            detail = "bearer token required" if token is None else "invalid or revoked token"
            await problem(401, detail, headers=_CHALLENGE)(scope, receive, send)
            return
        # Keyed by the token's digest: a principal's name need not be unique.
        wait = self.requests.take(hashlib.sha256(token.encode()).hexdigest(), self.clock())
        if wait > 0:
            self.metrics.api_rate_limited.labels("token").inc()
            answer = problem(
                429, "too many requests with this token", headers={"Retry-After": retry_after(wait)}
            )
            await answer(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)
