"""People who sign in to the pages: a name, a role and station (the same as an API token's, see
:mod:`central.auth`), and an Argon2id hash of their password.

Users are created and disabled at the command line (``precinct central user …``); a disabled
user's sessions end in the same transaction. Nothing here ever stores or logs a password.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from central.auth import Principal, Role
from edge_agent.wire import format_time, is_valid_name

# NIST SP 800-63B: at least 8 characters for a chosen secret; 10 here, as the centre's staff
# choose their own. The upper bound keeps a hostile form field from costing more than one hash.
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as ``user list`` shows them: everything but the password hash."""

    id: int
    name: str
    role: str
    station: str | None
    created_at: str
    disabled_at: str | None

    def principal(self) -> Principal:
        return Principal(name=self.name, role=Role(self.role), station=self.station)


def hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, t=3, p=4)."""
    return PasswordHasher()


def check_password(password: str) -> None:
    """A password the centre accepts: long enough, bounded, no control characters."""
    if not password:
        raise UserError("the password is empty")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise UserError("the password contains control characters")


def check_identity(name: str, role: Role, station: str | None) -> None:
    if not is_valid_name(name):
        raise UserError(f"name {name!r}: 1-64 letters, digits or _.:-")
    if role is Role.STATION:
        if station is None or not is_valid_name(station):
            raise UserError("a station user needs --station ID")
    elif station is not None:
        raise UserError(f"--station applies only to the station role, not {role}")


def create_user(
    conn: sqlite3.Connection,
    *,
    name: str,
    role: Role,
    station: str | None,
    password: str,
    now: datetime | None = None,
) -> UserInfo:
    """Store a new user (inside the caller's transaction); the password only as its hash."""
    check_identity(name, role, station)
    check_password(password)
    if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None:
        raise UserError(f"a user named {name!r} exists already")
    stamp = format_time(now or datetime.now(UTC))
    cursor = conn.execute(
        "INSERT INTO users (name, role, station, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (name, role.value, station, hasher().hash(password), stamp),
    )
    return UserInfo(
        id=int(cursor.lastrowid or 0),
        name=name,
        role=role.value,
        station=station,
        created_at=stamp,
        disabled_at=None,
    )


_COLUMNS = "id, name, role, station, created_at, disabled_at"


def _info(row: tuple[object, ...]) -> UserInfo:
    return UserInfo(
        id=int(str(row[0])),
        name=str(row[1]),
        role=str(row[2]),
        station=None if row[3] is None else str(row[3]),
        created_at=str(row[4]),
        disabled_at=None if row[5] is None else str(row[5]),
    )


def list_users(conn: sqlite3.Connection) -> list[UserInfo]:
    return [_info(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY id")]  # noqa: S608


def disable_user(conn: sqlite3.Connection, name: str, now: datetime | None = None) -> int | None:
    """Disable ``name`` and end every session of theirs (inside the caller's transaction).

    Returns how many live sessions were ended, or None when there is no such enabled user."""
    row = conn.execute(
        "SELECT id FROM users WHERE name = ? AND disabled_at IS NULL", (name,)
    ).fetchone()
    if row is None:
        return None
    stamp = format_time(now or datetime.now(UTC))
    conn.execute("UPDATE users SET disabled_at = ? WHERE id = ?", (stamp, row[0]))
    ended = conn.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL "
        "AND expires_at > ?",
        (stamp, row[0], stamp),
    ).rowcount
    return int(ended)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so that a wrong name costs as long as a
    wrong password and the answer's time does not tell which names exist."""
    return hasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class SignInCheck:
    """What checking a name and password found: the user when they may sign in, else why not
    (``unknown_user``, ``wrong_password``, ``disabled``), and a new hash when the stored one
    used weaker parameters than today's defaults."""

    user: UserInfo | None
    reason: str | None
    rehash: str | None = None


def check_sign_in(conn: sqlite3.Connection, name: str, password: str) -> SignInCheck:
    """Check ``password`` against the stored hash of ``name`` (slow on purpose: Argon2id).

    Call it off the event loop. Every known or unknown name costs one hash; a name no user can
    have, or an over-long password, costs none (that answer tells nothing about the store)."""
    if not is_valid_name(name):
        return SignInCheck(None, "unknown_user")
    if not password or len(password) > MAX_PASSWORD_CHARS:
        return SignInCheck(None, "wrong_password")
    row = conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE name = ?",  # noqa: S608
        (name,),
    ).fetchone()
    ph = hasher()
    if row is None:
        with contextlib.suppress(VerificationError):
            ph.verify(_dummy_hash(), password)
        return SignInCheck(None, "unknown_user")
    user = _info(row[:6])
    stored = str(row[6])
    try:
        ph.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return SignInCheck(None, "wrong_password")
    if user.disabled_at is not None:
        return SignInCheck(None, "disabled")
    rehash = ph.hash(password) if ph.check_needs_rehash(stored) else None
    return SignInCheck(user, None, rehash)


def store_rehash(conn: sqlite3.Connection, user_id: int, new_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, user_id))
