"""Signed-in sessions of the pages: the expiry rule (pure, takes ``now``) and the store's rows.

The browser holds a random secret in the ``precinct_session`` cookie; the store keeps only its
SHA-256 as the session's id, so a copy of the store signs no one in. A session ends at the
first of:

- ``expires_at``: ``session_max_hours`` after sign-in, however busy it is (absolute);
- ``idle_expires_at``: ``session_idle_minutes`` after it was last used (idle). Using a session
  moves this bound on, but never past ``expires_at``; to spare the store a write per request it
  is moved only once a tenth of the idle time (at most a minute) has passed since the last
  move, so a session may end up to that much earlier than a full idle time after its last use;
- sign-out, or its user disabled (``revoked_at``).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from central.auth import Principal, Role
from central.web import csrf
from edge_agent.wire import format_time

COOKIE = "precinct_session"
# token_urlsafe(32) gives 43 characters; anything much longer is not ours and is not hashed.
MAX_COOKIE_CHARS = 100
_TOUCH_AT_MOST = timedelta(minutes=1)
# Ended sessions are kept this long (who was signed in when), then deleted at a sign-in.
KEEP_ENDED = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The expiry rule of every session (settings ``session_idle_minutes``,
    ``session_max_hours``)."""

    idle: timedelta
    absolute: timedelta

    def __post_init__(self) -> None:
        if self.idle <= timedelta(0) or self.absolute <= timedelta(0):
            raise ValueError("session times must be positive")

    def bounds(self, start: datetime) -> tuple[datetime, datetime]:
        """(idle_expires_at, expires_at) of a session begun at ``start``."""
        expires = start + self.absolute
        return min(start + self.idle, expires), expires

    @staticmethod
    def live(idle_expires_at: datetime, expires_at: datetime, now: datetime) -> bool:
        return now < idle_expires_at and now < expires_at

    def moved_idle(
        self, idle_expires_at: datetime, expires_at: datetime, now: datetime
    ) -> datetime | None:
        """The new idle bound after a use at ``now``, or None when it need not be written yet."""
        wanted = min(now + self.idle, expires_at)
        step = min(self.idle / 10, _TOUCH_AT_MOST)
        return wanted if wanted - idle_expires_at >= step else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session and its user: who they are (as a :class:`Principal`, the same roles and
    station scope as an API token) and the CSRF token their forms must carry."""

    id: str
    user_id: int
    principal: Principal
    csrf_token: str
    idle_expires_at: datetime
    expires_at: datetime

    @property
    def name(self) -> str:
        return self.principal.name


def start(
    conn: sqlite3.Connection, user_id: int, rules: SessionRules, now: datetime, source: str
) -> str:
    """A new session for ``user_id`` (inside the caller's transaction); returns the cookie's
    secret, which is stored nowhere."""
    secret = secrets.token_urlsafe(32)
    idle_until, until = rules.bounds(now)
    stamp = format_time(now)
    conn.execute(
        "INSERT INTO web_sessions (id, user, created_at, last_seen_at, csrf_token, "
        "idle_expires_at, expires_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            digest(secret),
            user_id,
            stamp,
            stamp,
            csrf.new_token(),
            format_time(idle_until),
            format_time(until),
            source[:64],
        ),
    )
    conn.execute("DELETE FROM web_sessions WHERE expires_at < ?", (format_time(now - KEEP_ENDED),))
    return secret


def find(conn: sqlite3.Connection, secret: str, now: datetime) -> WebSession | None:
    """The live session of a cookie's secret; None for anything else (unknown, ended,
    revoked, its user disabled, or not a secret of ours)."""
    if not secret or len(secret) > MAX_COOKIE_CHARS or not secret.isascii():
        return None
    row = conn.execute(
        "SELECT s.id, u.id, u.name, u.role, u.station, s.csrf_token, s.idle_expires_at, "
        "s.expires_at FROM web_sessions s JOIN users u ON u.id = s.user "
        "WHERE s.id = ? AND s.revoked_at IS NULL AND u.disabled_at IS NULL",
        (digest(secret),),
    ).fetchone()
    if row is None:
        return None
    idle_until, until = datetime.fromisoformat(row[6]), datetime.fromisoformat(row[7])
    if not SessionRules.live(idle_until, until, now):
        return None
    return WebSession(
        id=str(row[0]),
        user_id=int(row[1]),
        principal=Principal(name=str(row[2]), role=Role(row[3]), station=row[4]),
        csrf_token=str(row[5]),
        idle_expires_at=idle_until,
        expires_at=until,
    )


def touch(conn: sqlite3.Connection, session_id: str, idle_until: datetime, now: datetime) -> None:
    """Record a use: the idle bound moves on (never for an ended session)."""
    conn.execute(
        "UPDATE web_sessions SET idle_expires_at = ?, last_seen_at = ? "
        "WHERE id = ? AND revoked_at IS NULL",
        (format_time(idle_until), format_time(now), session_id),
    )


def end(conn: sqlite3.Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (format_time(now), session_id),
    )
