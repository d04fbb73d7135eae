"""The agent's durable outbox: every reading gets its sequence number here, on disk.

A reading enters the outbox in one SQLite transaction (WAL) that also advances the persistent
sequence counter, so a killed agent neither loses an accepted reading nor reuses a number. A row
is *unsent* until the broker has acknowledged its publish; then it is kept as *sent* history (at
most ``keep_sent`` rows) so that the centre can ask for a range again when it finds a gap that the
broker lost (a broker killed before it saved, a shared-subscription member that died).

Every outbox file has an *epoch*, a random id made when the file is created and kept in it. It
travels in every envelope and in the birth message, so that an agent whose disk was wiped or
replaced, which numbers from 1 again, never repeats an ``(agent, epoch, seq)`` at the centre. A file
from before epochs gets its epoch on its first open; the epoch then starts at the next number
(``first_seq``), and rows already stored keep their payloads without an epoch.

The outbox is bounded by ``max_rows``. At the bound, the oldest *telemetry* rows make room; events
are never dropped. When only events are left, new telemetry is refused and the outbox reports
itself full (an alarm) while events are still accepted past the bound. Every drop is counted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge_agent.wire import MessageClass, encode_envelope, format_time

log = logging.getLogger(__name__)

_CLASS_CODE = {MessageClass.EVENT: 0, MessageClass.TELEMETRY: 1}
_CODE_CLASS = {code: cls for cls, code in _CLASS_CODE.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    cls INTEGER NOT NULL,
    created REAL NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent = 0;
CREATE INDEX IF NOT EXISTS outbox_unsent_by_class ON outbox (cls, seq) WHERE sent = 0;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (seq) WHERE sent = 1;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    received REAL NOT NULL,
    ack BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Reading:
    """What a source hands the agent; the outbox stamps agent, epoch, session and seq."""

    device: str
    kind: str
    cls: MessageClass
    time: datetime
    body_json: str


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    cls: MessageClass
    payload: bytes


@dataclass(frozen=True, slots=True)
class PutResult:
    accepted: int
    dropped_oldest: int
    refused: int


class Outbox:
    """Single-writer; owned by the agent's event loop thread."""

    def __init__(
        self, path: Path, agent: str, *, max_rows: int, keep_sent: int = 0, sync: str = "NORMAL"
    ) -> None:
        self.agent = agent
        self.max_rows = max_rows
        self.keep_sent = keep_sent
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync.upper() == 'FULL' else 'NORMAL'}")
        # The outbox is written and read near its tail: a small page cache is enough, and the
        # 2 MiB default showed up as a third of an agent's growth in resident memory.
        self._db.execute("PRAGMA cache_size=-512")
        self._db.executescript(_SCHEMA)
        with self._transaction():
            self.session = self._meta("session", 0) + 1
            self._set_meta("session", self.session)
            row = self._db.execute("SELECT max(seq) FROM outbox").fetchone()
            self._next_seq = max(self._meta("next_seq", 1), (row[0] or 0) + 1)
            self.epoch, self.first_seq = self._epoch(self._next_seq)
        self._depth = dict.fromkeys(MessageClass, 0)
        for code, count in self._db.execute(
            "SELECT cls, count(*) FROM outbox WHERE sent = 0 GROUP BY cls"
        ):
            self._depth[_CODE_CLASS[code]] = count
        self._sent = int(
            self._db.execute("SELECT count(*) FROM outbox WHERE sent = 1").fetchone()[0]
        )
        self.full = False

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def _epoch(self, next_seq: int) -> tuple[str, int]:
        row = self._db.execute("SELECT epoch, first_seq FROM epoch WHERE id = 1").fetchone()
        if row is not None:
            return str(row[0]), int(row[1])
        # 128 random bits: a new disk never meets an old epoch. A file from before epochs
        # already handed out numbers below next_seq without one; the epoch starts after them.
        epoch = uuid.uuid4().hex
        self._db.execute(
            "INSERT INTO epoch (id, epoch, first_seq, created) VALUES (1, ?, ?, ?)",
            (epoch, next_seq, time.time()),
        )
        return epoch, next_seq

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def depth(self) -> dict[MessageClass, int]:
        """Unsent rows per class."""
        return dict(self._depth)

    @property
    def total_depth(self) -> int:
        return sum(self._depth.values())

    @property
    def last_seq(self) -> int:
        """The highest sequence number handed out so far (0 before the first)."""
        return self._next_seq - 1

    def put(self, readings: Sequence[Reading]) -> PutResult:
        """Stamp and store ``readings`` in one transaction, applying the bound."""
        incoming_telemetry = sum(1 for r in readings if r.cls is MessageClass.TELEMETRY)
        overflow = self.total_depth + len(readings) - self.max_rows
        drop_stored = max(0, min(overflow, self._depth[MessageClass.TELEMETRY]))
        refuse = max(0, min(overflow - drop_stored, incoming_telemetry))
        now = time.time()
        rows: list[tuple[int, int, float, bytes]] = []
        seq = self._next_seq
        skipped_telemetry = 0
        for reading in readings:
            # Refused telemetry is the oldest of the batch; it never gets a number, so the centre
            # sees no gap for it (the drop is counted here instead).
            if reading.cls is MessageClass.TELEMETRY and skipped_telemetry < refuse:
                skipped_telemetry += 1
                continue
            payload = encode_envelope(
                self.agent,
                self.epoch,
                self.session,
                seq,
                format_time(reading.time),
                reading.device,
                reading.kind,
                reading.cls,
                reading.body_json,
            )
            rows.append((seq, _CLASS_CODE[reading.cls], now, payload))
            seq += 1
        db = self._transaction()
        try:
            if drop_stored:
                db.execute(
                    "DELETE FROM outbox WHERE seq IN "
                    "(SELECT seq FROM outbox WHERE cls = ? AND sent = 0 ORDER BY seq LIMIT ?)",
                    (_CLASS_CODE[MessageClass.TELEMETRY], drop_stored),
                )
            db.executemany(
                "INSERT INTO outbox (seq, cls, created, payload) VALUES (?, ?, ?, ?)", rows
            )
            self._set_meta("next_seq", seq)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._next_seq = seq
        self._depth[MessageClass.TELEMETRY] -= drop_stored
        for _, code, _, _ in rows:
            self._depth[_CODE_CLASS[code]] += 1
        was_full = self.full
        self.full = refuse > 0 or self._depth[MessageClass.EVENT] >= self.max_rows
        if self.full and not was_full:
            log.warning(
                "outbox full of events (%d rows, bound %d): refusing new telemetry",
                self._depth[MessageClass.EVENT],
                self.max_rows,
            )
        elif was_full and not self.full:
            log.warning("outbox below its bound again: accepting telemetry")
        return PutResult(accepted=len(rows), dropped_oldest=drop_stored, refused=refuse)

    def fetch(self, after: int, limit: int, before: int | None = None) -> list[Pending]:
        """Up to ``limit`` unsent rows with ``after < seq < before``, oldest first."""
        upper = before if before is not None else 2**63 - 1
        return [
            Pending(seq, _CODE_CLASS[code], payload)
            for seq, code, payload in self._db.execute(
                "SELECT seq, cls, payload FROM outbox WHERE sent = 0 AND seq > ? AND seq < ? "
                "ORDER BY seq LIMIT ?",
                (after, upper, limit),
            )
        ]

    def mark_sent(self, sent: Iterable[Pending]) -> int:
        """Record broker acknowledgements; returns how many rows were still unsent."""
        marked = 0
        db = self._transaction()
        try:
            for item in sent:
                cursor = db.execute(
                    "UPDATE outbox SET sent = 1 WHERE seq = ? AND sent = 0", (item.seq,)
                )
                if cursor.rowcount:
                    marked += 1
                    self._depth[item.cls] -= 1
            self._sent += marked
            excess = self._sent - self.keep_sent
            if excess > 0:
                db.execute(
                    "DELETE FROM outbox WHERE seq IN "
                    "(SELECT seq FROM outbox WHERE sent = 1 ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._sent -= excess
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if self.full and self._depth[MessageClass.EVENT] < self.max_rows:
            self.full = False
            log.warning("outbox below its bound again: accepting telemetry")
        return marked

    def requeue(self, first: int, last: int) -> int:
        """Make sent rows ``first..last`` unsent again (the centre lost them); returns how many.

        Rows still unsent are already on their way and rows no longer kept cannot come back;
        neither counts.
        """
        db = self._transaction()
        try:
            counts = dict(
                db.execute(
                    "SELECT cls, count(*) FROM outbox WHERE sent = 1 AND seq BETWEEN ? AND ? "
                    "GROUP BY cls",
                    (first, last),
                ).fetchall()
            )
            db.execute(
                "UPDATE outbox SET sent = 0 WHERE sent = 1 AND seq BETWEEN ? AND ?", (first, last)
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for code, count in counts.items():
            self._depth[_CODE_CLASS[code]] += count
            self._sent -= count
        return sum(counts.values())

    def oldest_kept(self) -> int | None:
        """The lowest sequence number still held, sent or not."""
        row = self._db.execute("SELECT min(seq) FROM outbox").fetchone()
        return int(row[0]) if row[0] is not None else None

    def oldest_age(self, now: float | None = None) -> float:
        """Age of the oldest unsent row."""
        row = self._db.execute(
            "SELECT created FROM outbox WHERE sent = 0 AND seq = "
            "(SELECT min(seq) FROM outbox WHERE sent = 0)"
        ).fetchone()
        if row is None:
            return 0.0
        return max(0.0, (now if now is not None else time.time()) - float(row[0]))

    # Command ledger: a command id is executed at most once; a repeat gets the stored ack.
    def command_ack(self, command_id: str) -> bytes | None:
        row = self._db.execute("SELECT ack FROM commands WHERE id = ?", (command_id,)).fetchone()
        return bytes(row[0]) if row else None

    def record_command(self, command_id: str, ack: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO commands (id, received, ack) VALUES (?, ?, ?)",
            (command_id, time.time(), ack),
        )

    @property
    def sent_kept(self) -> int:
        return self._sent
