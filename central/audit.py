"""The audit log: an append-only, hash-chained record of who did what, when, from where.

Each row carries the hash of the row before it (``prev_hash``; the first row carries
:data:`GENESIS`) and its own ``hash``: SHA-256, in lowercase hex, over the UTF-8 bytes of the
canonical JSON object of the row's fields::

    {"action", "actor", "at", "detail", "id", "prev_hash", "role", "source", "target"}

with keys sorted, no whitespace (separators ``,`` and ``:``), non-ASCII characters as themselves,
and ``detail`` as its stored text (itself canonical JSON of a small object). Row ids run 1, 2, 3…
without holes: an edited row no longer matches its own hash or the ``prev_hash`` of the next row,
and a deleted row leaves a hole in the ids and a broken link. What the chain alone cannot show is
the loss of the newest rows, or a chain rewritten from the start: compare the head that
:func:`verify` reports with one kept elsewhere.

A row is written inside the transaction of the change it records (``BEGIN IMMEDIATE``), so the
previous hash is read while this connection holds the store's write lock: several writers (API
requests, ingest workers, the command line) never fork the chain. Triggers refuse UPDATE and
DELETE on the table; someone holding the file can drop them, and the chain shows the rest.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.store import connect
from edge_agent.wire import format_time

GENESIS = "0" * 64
# A detail names what changed (ids, states, counts), never a person's data: a small bound
# keeps a request body from ever ending up here by mistake.
MAX_DETAIL_CHARS = 1000
TRIGGERS = ("audit_no_update", "audit_no_delete")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a token's name and role and the client's address, or a local user at the
    command line (role ``cli``, source ``cli``), or the centre itself (role ``system``)."""

    name: str
    role: str
    source: str


SYSTEM = Actor(name="central", role="system", source="central")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened: an action (``booking.created``), its target's id and a small detail."""

    action: str
    target: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: str
    actor: str
    role: str
    source: str
    action: str
    target: str
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold: ``row`` was edited or deleted."""

    row: int
    kind: str  # "edited" or "deleted"
    message: str


_COLUMNS = "id, at, actor, role, source, action, target, detail, prev_hash, hash"


def canonical_detail(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(row: AuditRow) -> str:
    """The hash a row is sealed with: over every field but ``hash`` (the canonical form above)."""
    canonical = json.dumps(
        {
            "action": row.action,
            "actor": row.actor,
            "at": row.at,
            "detail": row.detail,
            "id": row.id,
            "prev_hash": row.prev_hash,
            "role": row.role,
            "source": row.source,
            "target": row.target,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(
    conn: sqlite3.Connection, actor: Actor, record: AuditRecord, now: datetime | None = None
) -> AuditRow:
    """Write one row inside the caller's open write transaction (``BEGIN IMMEDIATE``)."""
    if not conn.in_transaction:
        raise RuntimeError("an audit row is written inside the transaction of its change")
    detail = canonical_detail(record.detail)
    if len(detail) > MAX_DETAIL_CHARS:
        raise ValueError(f"audit detail of {record.action} is {len(detail)} characters long")
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    row_id, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
    unsealed = AuditRow(
        id=row_id,
        at=format_time(now or datetime.now(UTC)),
        actor=actor.name,
        role=actor.role,
        source=actor.source,
        action=record.action,
        target=record.target,
        detail=detail,
        prev_hash=prev,
        hash="",
    )
    row = replace(unsealed, hash=row_hash(unsealed))
    conn.execute(
        f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            row.id,
            row.at,
            row.actor,
            row.role,
            row.source,
            row.action,
            row.target,
            row.detail,
            row.prev_hash,
            row.hash,
        ),
    )
    return row


def record(db: Path, actor: Actor, entry: AuditRecord) -> AuditRow:
    """One row in a transaction of its own, for an act that changes nothing else here."""
    conn = connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = append(conn, actor, entry)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return row
    finally:
        conn.close()


def rows(conn: sqlite3.Connection, after: int = 0) -> Iterable[AuditRow]:
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM audit WHERE id > ? ORDER BY id",  # noqa: S608 - constant columns
        (after,),
    )
    for r in cursor:
        yield AuditRow(
            id=int(r[0]),
            at=str(r[1]),
            actor=str(r[2]),
            role=str(r[3]),
            source=str(r[4]),
            action=str(r[5]),
            target=str(r[6]),
            detail=str(r[7]),
            prev_hash=str(r[8]),
            hash=str(r[9]),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    head_id: int
    head_hash: str
    broken: ChainBreak | None


def verify(chain: Iterable[AuditRow]) -> Verdict:
    """Walk the chain from the first row (in id order); the first break found, or none."""
    expected_id, prev, count = 1, GENESIS, 0

    def broken(row: int, kind: str, message: str) -> Verdict:
        return Verdict(count, expected_id - 1, prev, ChainBreak(row, kind, message))

    rows = iter(chain)
    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        if row.id != expected_id:
            gone = (
                f"row {expected_id}"
                if row.id == expected_id + 1
                else (f"rows {expected_id}-{row.id - 1}")
            )
            return broken(expected_id, "deleted", f"{gone} deleted (the next row is {row.id})")
        if row_hash(row) != row.hash:
            return broken(row.id, "edited", f"row {row.id} edited (it no longer matches its hash)")
        if row.prev_hash != prev:
            # Resealed after an edit: either the row before was edited, or this row's link was
            # rewritten, and then the next row no longer links to this one either.
            if row.id == 1 or (following is not None and following.prev_hash != row.hash):
                return broken(row.id, "edited", f"row {row.id} edited (its hash was rewritten)")
            return broken(
                row.id - 1,
                "edited",
                f"row {row.id - 1} edited (row {row.id} was chained to a different one)",
            )
        prev, expected_id, count = row.hash, expected_id + 1, count + 1
        row = following
    return Verdict(count, expected_id - 1, prev, None)


def missing_triggers(conn: sqlite3.Connection) -> list[str]:
    found = {
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'"
        )
    }
    return [name for name in TRIGGERS if name not in found]
