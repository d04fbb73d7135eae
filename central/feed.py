"""The feed: one ordered, stored record of what changed, which ``GET /api/v1/stream`` serves.

A writer reports a change with :func:`append` on its own connection, inside the transaction that
makes the change: the feed row commits with it or not at all, so a reader never sees a change
the store does not hold, nor misses one that it does. Plan events reach the feed by a trigger on
``plan_events`` (store schema 8), so every writer of the plan reports without remembering to.

Ids come from ``AUTOINCREMENT``: they only grow, and the only holes are rows deleted by
:func:`purge`, which is how a reader learns that it is too far behind (:func:`position`). The
feed lives in the store file, not in memory: it survives a restart, and several central
processes on one store serve the same feed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from central.auth import Principal, Role
from edge_agent.wire import format_time

MAX_BODY_CHARS = 16_000


class Audience(StrEnum):
    """Who may read an event besides ``admin`` and ``centre`` (and the event's own station)."""

    CENTRE = "centre"  # plan, custody, rooms: persons and cases, not for ops
    HEALTH = "health"  # agent and device availability: ops too


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: int
    at: str
    kind: str
    station: str | None
    audience: Audience
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader stands: ``latest`` is the newest id; ``lost`` whether rows the reader has
    not seen were deleted (or its id is not one this store handed out): it must reload."""

    latest: int
    lost: bool


def append(
    conn: sqlite3.Connection,
    kind: str,
    station: str | None,
    body: dict[str, Any],
    *,
    audience: Audience = Audience.CENTRE,
    at: str | None = None,
) -> int:
    """Add one event; call it inside the transaction of the change it reports (it does not
    commit). ``kind`` is the stream's event name (``room_state``, ``agent_online``…),
    ``station`` the station whose tokens may see it (None: centre-wide), ``body`` a small JSON
    object: ids, states and times, never a message body. Returns the event's id."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_BODY_CHARS:
        raise ValueError(f"feed event {kind}: body of {len(text)} characters is too large")
    cursor = conn.execute(
        "INSERT INTO feed (at, kind, station, audience, body) VALUES (?, ?, ?, ?, ?)",
        (at or format_time(datetime.now(UTC)), kind, station, audience.value, text),
    )
    return int(cursor.lastrowid or 0)


# Reads every event: the in-process poller, which filters per stream (see visible).
EVERYONE: Final = Principal("feed", Role.ADMIN, None)


def visible(event: FeedEvent, principal: Principal) -> bool:
    """The scope of :func:`after`'s query, for an event already read."""
    if principal.role is Role.STATION:
        return event.station is not None and event.station == principal.station
    if principal.role is Role.OPS:
        return event.audience is Audience.HEALTH
    return True


def _scope(principal: Principal) -> tuple[str, tuple[Any, ...]]:
    if principal.role is Role.STATION:
        return " AND station = ?", (principal.station,)
    if principal.role is Role.OPS:
        return " AND audience = ?", (Audience.HEALTH.value,)
    return "", ()


def after(
    conn: sqlite3.Connection, last_id: int, principal: Principal, limit: int
) -> list[FeedEvent]:
    """The events after ``last_id`` that ``principal`` may see, oldest first, at most ``limit``."""
    where, values = _scope(principal)
    rows = conn.execute(
        "SELECT id, at, kind, station, audience, body FROM feed WHERE id > ?"  # noqa: S608
        f"{where} ORDER BY id LIMIT ?",
        (last_id, *values, limit),
    ).fetchall()
    return [FeedEvent(int(r[0]), r[1], r[2], r[3], Audience(r[4]), json.loads(r[5])) for r in rows]


def latest(conn: sqlite3.Connection) -> int:
    """The newest id handed out (0 before the first), deleted or not."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'feed'").fetchone()
    return int(row[0]) if row else 0


def position(conn: sqlite3.Connection, last_id: int) -> Position:
    """Whether a reader that has seen everything up to ``last_id`` can go on from there."""
    newest = latest(conn)
    (oldest,) = conn.execute("SELECT min(id) FROM feed").fetchone()
    first_kept = int(oldest) if oldest is not None else newest + 1
    return Position(newest, last_id > newest or last_id < first_kept - 1)


def purge(conn: sqlite3.Connection, keep: timedelta, now: datetime | None = None) -> int:
    """Delete events older than ``keep``; returns how many. ``sqlite_sequence`` keeps the
    newest id even when every row is gone, so readers still learn what they missed."""
    cutoff = format_time((now or datetime.now(UTC)) - keep)
    cursor = conn.execute("DELETE FROM feed WHERE at < ?", (cutoff,))
    return int(cursor.rowcount)
