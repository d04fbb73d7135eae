"""The door of ``/api/``: rate limits and the bearer token (or a page's session cookie),
checked from the headers alone, before the body is read (pure ASGI).

FastAPI reads and parses a request's whole body before any dependency runs, so authentication
in a dependency comes too late: an unauthenticated 20 MB body would be parsed first. Here a
request without a valid token costs one indexed lookup and is answered 401; the principal found
is left in the request's state for :func:`central.api.deps.get_principal`.

Limits (token buckets, :mod:`central.api.rate_limit`): failed authentications per client
address (a client past it gets 429 for every ``/api/`` request until its bucket refills, so
guessing costs no lookups), then requests per valid token.

A request without a bearer token but with the pages' session cookie (``precinct_session``,
:mod:`central.web.sessions`) is the signed-in user's, with the same roles and station scope; a
state-changing one must carry the session's CSRF token in ``X-CSRF-Token``
(:mod:`central.web.csrf`), else 403. A bearer token, when sent, is all that counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from central.api.problems import problem
from central.api.rate_limit import TokenBuckets, retry_after
from central.auth import Principal, authenticate
from central.settings import CentralSettings
from central.store import connect
from central.web import csrf, sessions
from central.web.sessions import SessionRules, WebSession
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
PRINCIPAL_STATE = "principal"
# The session of a cookie-authenticated request (absent for a bearer token).
SESSION_STATE = "web_session"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_T = TypeVar("_T")


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def header(scope: Scope, wanted: bytes) -> str | None:
    """The first value of header ``wanted`` (lower case), as text."""
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None


def session_cookie(scope: Scope) -> str | None:
    """The pages' session secret from the Cookie header, if any."""
    raw = header(scope, b"cookie")
    if raw is None:
        return None
    secret = cookie_parser(raw).get(sessions.COOKIE)
    return secret or None


class _TokenLookup:
    """One read-only connection, used on the event loop only: the indexed lookup takes tens of
    microseconds, less than a hop to a worker thread and far less than opening a connection
    (which parses the schema) for every request. A read in WAL mode does not wait for writers."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None

    def _read(self, read: Callable[[sqlite3.Connection], _T]) -> _T:
        if self.conn is None:
            self.conn = connect(self.db, readonly=True)
        try:
            return read(self.conn)
        except sqlite3.Error:
            self.conn.close()
            self.conn = None  # opened again for the next request
            raise

    def __call__(self, token: str) -> Principal | None:
        return self._read(lambda conn: authenticate(conn, token))

    def session(self, secret: str, now: datetime) -> WebSession | None:
        return self._read(lambda conn: sessions.find(conn, secret, now))


def _touch(db: Path, session: WebSession, idle_until: datetime, now: datetime) -> None:
    conn = connect(db)
    try:
        sessions.touch(conn, session.id, idle_until, now)
    finally:
        conn.close()


async def keep_alive(db: Path, rules: SessionRules, session: WebSession, now: datetime) -> None:
    """Move the session's idle bound on after a use, when it is due (a write, off the event
    loop). A store that refuses the write costs the user an earlier end, not the request."""
    idle_until = rules.moved_idle(session.idle_expires_at, session.expires_at, now)
    if idle_until is None:
        return
    try:
        await asyncio.to_thread(_touch, db, session, idle_until, now)
    except sqlite3.Error as exc:
        log.warning("session %s… not kept alive: %s", session.id[:8], exc)


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
        self.db = settings.db
        self.rules = settings.session_rules()
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
        if token is None and header(scope, b"authorization") is None:
            secret = session_cookie(scope)
            if secret is not None:
                await self._with_session(secret, address, scope, receive, send)
                return
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

    async def _with_session(
        self, secret: str, address: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        now = datetime.now(UTC)
        session = self.lookup.session(secret, now)
        if session is None:
            self.failures.take(address, self.clock())
            detail = "the session has ended: sign in again"
            await problem(401, detail, headers=_CHALLENGE)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not csrf.matches(
            session.csrf_token, header(scope, csrf.HEADER.lower().encode())
        ):
            detail = f"a signed-in browser's {scope['method']} needs the {csrf.HEADER} header"
            await problem(403, detail)(scope, receive, send)
            return
        wait = self.requests.take(f"session:{session.id}", self.clock())
        if wait > 0:
            self.metrics.api_rate_limited.labels("token").inc()
            answer = problem(
                429, "too many requests in this session", headers={"Retry-After": retry_after(wait)}
            )
            await answer(scope, receive, send)
            return
        await keep_alive(self.db, self.rules, session, now)
        state = scope.setdefault("state", {})
        state[PRINCIPAL_STATE] = session.principal
        state[SESSION_STATE] = session
        await self.app(scope, receive, send)
