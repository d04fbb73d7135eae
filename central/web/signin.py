"""Signing in and out: the password check, the limits on failures, and the audit log.

Failed sign-ins are limited with token buckets (:mod:`central.api.rate_limit`), one per client
address and one per name, so that neither one address trying many names nor many addresses
trying one name gets far; past either, the answer is 429 without checking the password. Every
failure, sign-in and sign-out is in the audit log (``user.sign_in_failed``, ``user.signed_in``,
``user.signed_out``); a password never is, nor a name no user can have.

The functions that touch the store are blocking: the routes run them in worker threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from central import audit
from central.api.rate_limit import TokenBuckets
from central.settings import CentralSettings
from central.store import connect, write_transaction
from central.users import SignInCheck, UserInfo, check_sign_in, store_rehash
from central.web import sessions
from central.web.sessions import SessionRules, WebSession
from edge_agent.wire import is_valid_name

# Argon2id takes 64 MiB per check: at most this many at once, whatever arrives.
MAX_CONCURRENT_CHECKS = 2
# An audit name for attempts under a name no user can have (the raw text is never logged).
NO_NAME = "-"


class SignInGuard:
    """The failure limits of one application, and the cap on concurrent password checks."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.by_address = TokenBuckets(rate, burst)
        self.by_name = TokenBuckets(rate, burst)
        self.clock = clock
        self.checks = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)

    @classmethod
    def from_settings(cls, settings: CentralSettings) -> SignInGuard:
        return cls(settings.signin_failure_rate, settings.signin_failure_burst)

    @staticmethod
    def _name_key(name: str) -> str:
        return name[:64].casefold()

    def wait(self, address: str, name: str) -> float:
        """Seconds until this address may try this name again (0: now)."""
        now = self.clock()
        return max(self.by_address.wait(address, now), self.by_name.wait(self._name_key(name), now))

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        self.by_address.take(address, now)
        self.by_name.take(self._name_key(name), now)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt: the name typed (bounded by the route) and where it came from."""

    name: str
    source: str

    @property
    def audit_name(self) -> str:
        return self.name if is_valid_name(self.name) else NO_NAME


def check(db: Path, name: str, password: str) -> SignInCheck:
    conn = connect(db, readonly=True)
    try:
        return check_sign_in(conn, name, password)
    finally:
        conn.close()


def record_failure(db: Path, attempt: Attempt, reason: str) -> None:
    actor = audit.Actor(name=attempt.audit_name, role=NO_NAME, source=attempt.source)
    audit.record(
        db, actor, audit.AuditRecord("user.sign_in_failed", attempt.audit_name, {"reason": reason})
    )


def begin(db: Path, user: UserInfo, rehash: str | None, rules: SessionRules, source: str) -> str:
    """Start a session for ``user`` and log it; returns the cookie's secret."""
    now = datetime.now(UTC)
    conn = connect(db)
    try:
        with write_transaction(conn):
            if rehash is not None:
                store_rehash(conn, user.id, rehash)
            secret = sessions.start(conn, user.id, rules, now, source)
            audit.append(
                conn,
                audit.Actor(name=user.name, role=user.role, source=source),
                audit.AuditRecord(
                    "user.signed_in",
                    user.name,
                    {"station": user.station, "session": sessions.digest(secret)[:12]},
                ),
                now,
            )
        return secret
    finally:
        conn.close()


def end(db: Path, session: WebSession, source: str) -> None:
    """End ``session`` (sign-out) and log it."""
    now = datetime.now(UTC)
    conn = connect(db)
    try:
        with write_transaction(conn):
            sessions.end(conn, session.id, now)
            principal = session.principal
            audit.append(
                conn,
                audit.Actor(name=principal.name, role=principal.role.value, source=source),
                audit.AuditRecord("user.signed_out", principal.name, {"session": session.id[:12]}),
                now,
            )
    finally:
        conn.close()
