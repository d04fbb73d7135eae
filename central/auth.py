"""API tokens: random bearer secrets, stored only as SHA-256 hashes, each with a role and an
optional expiry; a revoked or expired token authenticates no one.

Roles and what they may do (route by route in ``docs/access.md``):
- ``admin``: everything, including the audit log.
- ``centre``: read and act on every station's data.
- ``station``: only the agents, devices, messages and bookings of its own station.
- ``ops``: agent and device health, no message contents.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from edge_agent.wire import format_time, is_valid_name

TOKEN_PREFIX = "pct_"  # noqa: S105 - a marker that makes leaked tokens greppable
# ``--expires-in``: a whole number and a unit, s(econds), m(inutes), h(ours) or d(ays).
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_EXPIRY = timedelta(days=3650)


class Role(StrEnum):
    ADMIN = "admin"
    CENTRE = "centre"
    STATION = "station"
    OPS = "ops"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    station: str | None

    def may_see_station(self, station: str | None) -> bool:
        if self.role is Role.STATION:
            return station is not None and station == self.station
        return True


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as ``token list`` shows it: everything but the secret (nor its hash)."""

    id: int
    name: str
    role: str
    station: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``: a whole number of one unit, up to ten years."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(
            f"--expires-in {text!r}: a whole number and a unit (s, m, h or d), e.g. 90d or 12h"
        )
    duration = timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    if duration > MAX_EXPIRY:
        raise ValueError(f"--expires-in {text!r}: at most {MAX_EXPIRY.days}d")
    return duration


def create_token(
    conn: sqlite3.Connection,
    *,
    role: Role,
    name: str,
    station: str | None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> str:
    """Store a new token and return it; the plain token is never stored."""
    if not name.strip() or len(name) > 200:
        raise ValueError("name must be 1-200 characters")
    if role is Role.STATION:
        if station is None or not is_valid_name(station):
            raise ValueError("a station token needs --station ID")
    elif station is not None:
        raise ValueError(f"--station applies only to the station role, not {role}")
    moment = now or datetime.now(UTC)
    if expires_at is not None and expires_at <= moment:
        raise ValueError("the expiry must lie in the future")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO tokens (name, role, station, hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            name,
            role.value,
            station,
            _digest(token),
            format_time(moment),
            None if expires_at is None else format_time(expires_at),
        ),
    )
    return token


def list_tokens(conn: sqlite3.Connection) -> list[TokenInfo]:
    return [
        TokenInfo(
            id=int(r[0]),
            name=str(r[1]),
            role=str(r[2]),
            station=r[3],
            created_at=str(r[4]),
            expires_at=r[5],
            revoked_at=r[6],
        )
        for r in conn.execute(
            "SELECT id, name, role, station, created_at, expires_at, revoked_at FROM tokens "
            "ORDER BY id"
        )
    ]


def revoke_tokens(
    conn: sqlite3.Connection, name: str, now: datetime | None = None
) -> list[TokenInfo]:
    """Revoke every unrevoked token called ``name``; returns them (none: no such token)."""
    stamp = format_time(now or datetime.now(UTC))
    revoked = [t for t in list_tokens(conn) if t.name == name and t.revoked_at is None]
    for token in revoked:
        conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (stamp, token.id))
    return revoked


def authenticate(
    conn: sqlite3.Connection, token: str, now: datetime | None = None
) -> Principal | None:
    """The principal of a valid token; None for an unknown, revoked or expired one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT name, role, station, expires_at FROM tokens WHERE hash = ? AND revoked_at IS NULL",
        (_digest(token),),
    ).fetchone()
    if row is None:
        return None
    if row[3] is not None and datetime.fromisoformat(row[3]) <= (now or datetime.now(UTC)):
        return None
    return Principal(name=row[0], role=Role(row[1]), station=row[2])
