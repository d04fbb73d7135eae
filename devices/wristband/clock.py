"""Aware time for the wristband package: the default clock and the check pure code applies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The production clock: now, aware, in UTC."""
    return datetime.now(UTC)


def require_aware(now: datetime) -> None:
    """Refuse a naive datetime: every rule here compares instants, never wall-clock readings."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("an aware datetime is required")
