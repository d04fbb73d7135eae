"""API tokens: random bearer secrets, stored only as SHA-256 hashes, each with a role.

Roles and what they may do:
- ``admin``: everything.
- ``centre``: read and act on every station's data.
- ``station``: only the agents (and later bookings) of its own station.
- ``ops``: agent health, no message contents.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from edge_agent.wire import format_time, is_valid_name

TOKEN_PREFIX = "pct_"  # noqa: S105 - a marker that makes leaked tokens greppable


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


def create_token(conn: sqlite3.Connection, *, role: Role, name: str, station: str | None) -> str:
    """Store a new token and return it; the plain token is never stored."""
    if not name.strip() or len(name) > 200:
        raise ValueError("name must be 1-200 characters")
    if role is Role.STATION:
        if station is None or not is_valid_name(station):
            raise ValueError("a station token needs --station ID")
    elif station is not None:
        raise ValueError(f"--station applies only to the station role, not {role}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO tokens (name, role, station, hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (name, role.value, station, _digest(token), format_time(datetime.now(UTC))),
    )
    return token


def authenticate(conn: sqlite3.Connection, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT name, role, station FROM tokens WHERE hash = ? AND revoked_at IS NULL",
        (_digest(token),),
    ).fetchone()
    if row is None:
        return None
    return Principal(name=row[0], role=Role(row[1]), station=row[2])
