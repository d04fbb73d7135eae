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

A full disk (SQLITE_FULL) is an episode, not a crash. The failed transaction is rolled back (a
failing ROLLBACK never hides the first error nor leaves the connection inside a transaction),
the :class:`~edge_agent.reserve.Reserve` is released, and until :meth:`Outbox.check_space` finds
room again telemetry is refused without touching the disk while events are still committed from
the reserve. An event that cannot be committed even then raises :class:`EventsRefusedError`, so
that its source keeps it and hands it again later. Broker acknowledgements and command acks
that cannot be written are kept in memory and written when there is room: a row not marked sent
is at worst sent again (the centre counts a duplicate), never lost.

The kept history is bounded by ``keep_sent`` rows and ``keep_sent_bytes`` payload bytes, and the
write-ahead log by ``wal_max_bytes`` (``journal_size_limit`` and a TRUNCATE checkpoint whenever it
is found larger), so that neither can fill the disk on its own.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge_agent.reserve import Reserve, free_bytes
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


# Acknowledgements held in memory while the disk is full; past this the oldest are forgotten
# (their rows stay unsent and go again after the next reconnect: duplicates, not loss).
UNMARKED_MAX = 100_000
# Room the disk must have beyond the reserve before a full-disk episode ends.
RECOVERY_HEADROOM_BYTES = 1 << 20


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL), by its result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL


class DiskFullError(Exception):
    """The outbox's disk is full: the operation stored nothing."""


class EventsRefusedError(DiskFullError):
    """Events that could not be committed, not even from the reserve.

    None of ``events`` has a sequence number or a row: the source still holds them and must hand
    them again later. ``telemetry_refused`` telemetry readings of the same batch were refused and
    counted as well.
    """

    def __init__(self, events: Sequence[Reading], telemetry_refused: int) -> None:
        super().__init__(f"disk full: {len(events)} events refused")
        self.events = tuple(events)
        self.telemetry_refused = telemetry_refused


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
    # Telemetry refused because the disk is full (``refused`` counts the full outbox's).
    refused_disk_full: int = 0


class Outbox:
    """Single-writer; owned by the agent's event loop thread."""

    def __init__(
        self,
        path: Path,
        agent: str,
        *,
        max_rows: int,
        keep_sent: int = 0,
        sync: str = "NORMAL",
        keep_sent_bytes: int | None = None,
        wal_max_bytes: int = 16 << 20,
        reserve: Reserve | None = None,
    ) -> None:
        self.agent = agent
        self.max_rows = max_rows
        self.keep_sent = keep_sent
        self.keep_sent_bytes = keep_sent_bytes
        self.wal_max_bytes = wal_max_bytes
        self.reserve = reserve if reserve is not None else Reserve(path.with_suffix(".reserve"), 0)
        self.disk_full = False
        self._path = path
        self._sync = "FULL" if sync.upper() == "FULL" else "NORMAL"
        self._unmarked: list[tuple[int, MessageClass]] = []
        self._unrecorded: dict[str, bytes] = {}
        self._db: sqlite3.Connection
        self.reserve.restore()
        try:
            self._db = self._open()
        except sqlite3.Error as exc:
            # Started on a full disk: the reserve left by the last run makes room for this.
            if not self._looks_full(exc):
                raise
            released = self.reserve.release()
            try:
                self._db = self._open()
            except sqlite3.Error as again:
                if not self._looks_full(again):
                    raise
                raise DiskFullError(f"no room to open {path}: {again}") from again
            self._enter_disk_full(exc, released)
        self._depth = dict.fromkeys(MessageClass, 0)
        for code, count in self._db.execute(
            "SELECT cls, count(*) FROM outbox WHERE sent = 0 GROUP BY cls"
        ):
            self._depth[_CODE_CLASS[code]] = count
        sent, sent_bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox WHERE sent = 1"
        ).fetchone()
        self._sent, self._sent_bytes = int(sent), int(sent_bytes)
        self._resend_from: int | None = None
        self.full = False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._sync}")
        # The outbox is written and read near its tail: a small page cache is enough, and the
        # 2 MiB default showed up as a third of an agent's growth in resident memory.
        db.execute("PRAGMA cache_size=-512")
        # After a checkpoint the log is cut back to this; a long transaction (a large replay)
        # otherwise leaves it at its largest size for good.
        db.execute(f"PRAGMA journal_size_limit={int(self.wal_max_bytes)}")
        db.executescript(_SCHEMA)
        return db

    def _open(self) -> sqlite3.Connection:
        """Connect, count this start as a new session, and read (or make) the epoch."""
        self._db = self._connect()
        try:
            with self._transaction():
                self.session = self._meta("session", 0) + 1
                self._set_meta("session", self.session)
                row = self._db.execute("SELECT max(seq) FROM outbox").fetchone()
                self._next_seq = max(self._meta("next_seq", 1), (row[0] or 0) + 1)
                self.epoch, self.first_seq = self._epoch(self._next_seq)
        except BaseException:
            self._db.close()
            raise
        return self._db

    def _looks_full(self, exc: sqlite3.Error) -> bool:
        # SQLite reports "disk I/O error" rather than SQLITE_FULL when it cannot even create
        # its log files, so an opening error on a disk without room counts as a full disk.
        return is_disk_full(exc) or free_bytes(self._path.parent) < RECOVERY_HEADROOM_BYTES

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed at the end, rolled back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Roll back without hiding the error that caused it.

        SQLite may already have rolled the transaction back itself (it does for SQLITE_FULL), and
        then ROLLBACK fails with "no transaction is active"; a ROLLBACK that fails for another
        reason may leave the transaction open, and a fresh connection is the one sure way out.
        """
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.debug("rollback failed (%s); reopening the outbox connection", exc)
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = self._connect()

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
        """Stamp and store ``readings`` in one transaction, applying the bound.

        On a full disk telemetry is refused (``refused_disk_full``) and the events are committed
        from the reserve; raises :class:`EventsRefusedError` when even that fails.
        """
        if not self.disk_full:
            try:
                return self._put(readings)
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                self._enter_disk_full(exc)
        events = [r for r in readings if r.cls is MessageClass.EVENT]
        refused = len(readings) - len(events)
        if not events:
            return PutResult(accepted=0, dropped_oldest=0, refused=0, refused_disk_full=refused)
        try:
            result = self._put(events)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            raise EventsRefusedError(events, refused) from exc
        self._checkpoint()
        return PutResult(
            accepted=result.accepted,
            dropped_oldest=result.dropped_oldest,
            refused=result.refused,
            refused_disk_full=refused,
        )

    def _put(self, readings: Sequence[Reading]) -> PutResult:
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
        with self._transaction() as db:
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
        """Record broker acknowledgements; returns how many rows were still unsent.

        On a full disk the acknowledgements wait in memory (the reserve is for events) and are
        written when :meth:`check_space` finds room again.
        """
        items = [(item.seq, item.cls) for item in sent]
        if self.disk_full:
            self._hold_unmarked(items)
            return 0
        try:
            return self._mark(items)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            self._enter_disk_full(exc)
            self._hold_unmarked(items)
            return 0

    def _hold_unmarked(self, items: list[tuple[int, MessageClass]]) -> None:
        self._unmarked.extend(items)
        if len(self._unmarked) > UNMARKED_MAX:
            forgotten = self._unmarked[: len(self._unmarked) - UNMARKED_MAX]
            del self._unmarked[: len(forgotten)]
            lowest = min(seq for seq, _ in forgotten)
            self._resend_from = min(lowest, self._resend_from or lowest)

    def _mark(self, items: list[tuple[int, MessageClass]]) -> int:
        marked: dict[MessageClass, int] = dict.fromkeys(MessageClass, 0)
        marked_bytes = 0
        with self._transaction() as db:
            for seq, cls in items:
                row = db.execute(
                    "UPDATE outbox SET sent = 1 WHERE seq = ? AND sent = 0 "
                    "RETURNING length(payload)",
                    (seq,),
                ).fetchone()
                if row is not None:
                    marked[cls] += 1
                    marked_bytes += int(row[0])
            trimmed, trimmed_bytes = self._trim_kept(
                db, self._sent + sum(marked.values()), self._sent_bytes + marked_bytes
            )
        for cls, count in marked.items():
            self._depth[cls] -= count
        self._sent += sum(marked.values()) - trimmed
        self._sent_bytes += marked_bytes - trimmed_bytes
        if self.full and self._depth[MessageClass.EVENT] < self.max_rows:
            self.full = False
            log.warning("outbox below its bound again: accepting telemetry")
        return sum(marked.values())

    def _trim_kept(self, db: sqlite3.Connection, kept: int, kept_bytes: int) -> tuple[int, int]:
        """Delete the oldest sent rows past either bound; returns (rows, payload bytes) deleted."""
        rows_over = kept - self.keep_sent
        bytes_over = kept_bytes - self.keep_sent_bytes if self.keep_sent_bytes is not None else 0
        if rows_over <= 0 and bytes_over <= 0:
            return 0, 0
        count = freed = 0
        last = None
        cursor = db.execute("SELECT seq, length(payload) FROM outbox WHERE sent = 1 ORDER BY seq")
        try:
            for seq, size in cursor:
                if count >= rows_over and freed >= bytes_over:
                    break
                count += 1
                freed += int(size)
                last = int(seq)
        finally:
            cursor.close()
        if last is not None:
            db.execute("DELETE FROM outbox WHERE sent = 1 AND seq <= ?", (last,))
        return count, freed

    def requeue(self, first: int, last: int) -> int:
        """Make sent rows ``first..last`` unsent again (the centre lost them); returns how many.

        Rows still unsent are already on their way and rows no longer kept cannot come back;
        neither counts. Raises :class:`DiskFullError` when the disk has no room for the change.
        """
        try:
            with self._transaction() as db:
                counts = {
                    code: (count, size)
                    for code, count, size in db.execute(
                        "SELECT cls, count(*), sum(length(payload)) FROM outbox "
                        "WHERE sent = 1 AND seq BETWEEN ? AND ? GROUP BY cls",
                        (first, last),
                    ).fetchall()
                }
                db.execute(
                    "UPDATE outbox SET sent = 0 WHERE sent = 1 AND seq BETWEEN ? AND ?",
                    (first, last),
                )
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            self._enter_disk_full(exc)
            raise DiskFullError("disk full: the replay cannot be recorded") from exc
        for code, (count, size) in counts.items():
            self._depth[_CODE_CLASS[code]] += count
            self._sent -= count
            self._sent_bytes -= int(size)
        return sum(count for count, _ in counts.values())

    def _enter_disk_full(self, exc: sqlite3.Error, released: int | None = None) -> None:
        if self.disk_full:
            return
        self.disk_full = True
        if released is None:
            released = self.reserve.release()
        self._checkpoint()
        log.warning(
            "disk full under %s (%s): released a reserve of %d bytes; refusing telemetry and "
            "keeping events until there is room again",
            self._path.parent,
            exc,
            released,
        )

    def check_space(self) -> bool:
        """Bound the write-ahead log and end a full-disk episode once there is room again.

        Called periodically. The episode ends when the disk has room for the reserve and
        :data:`RECOVERY_HEADROOM_BYTES` more: the reserve is written again and the
        acknowledgements and command acks held in memory are written. True when it ended.
        """
        self._bound_wal()
        if not self.disk_full:
            self.reserve.restore()  # a reserve that could not be made at start
            return False
        if free_bytes(self._path.parent) < self.reserve.size + RECOVERY_HEADROOM_BYTES:
            return False
        if not self.reserve.restore():
            return False
        try:
            if self._unmarked:
                self._mark(self._unmarked)
            with self._transaction() as db:
                for command_id, ack in self._unrecorded.items():
                    self._insert_command(db, command_id, ack)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            self.reserve.release()  # still full: the reserve is for events again
            return False
        self._unmarked = []
        self._unrecorded = {}
        self.disk_full = False
        log.info(
            "disk under %s has room again: reserve restored, accepting telemetry", self._path.parent
        )
        return True

    def take_resend_from(self) -> int | None:
        """The lowest row whose acknowledgement was forgotten while the disk was full, if any.

        Those rows are still unsent in the outbox; the uplink sends them again.
        """
        seq, self._resend_from = self._resend_from, None
        return seq

    def _checkpoint(self) -> None:
        """Copy the log into the database so that the next commit reuses the log from its start.

        On a full disk the log must not grow: a commit appends a few pages to it (about 20 KiB
        per small transaction here), which spent a 256 KiB reserve in a dozen events; reusing it
        leaves the reserve to the rows themselves.
        """
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("checkpoint of %s failed: %s", self._path, exc)

    def _bound_wal(self) -> None:
        wal = self._path.with_name(self._path.name + "-wal")
        try:
            size = wal.stat().st_size
        except FileNotFoundError:
            return
        if size <= self.wal_max_bytes:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("checkpoint of %s failed: %s", wal, exc)

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
        held = self._unrecorded.get(command_id)
        if held is not None:
            return held
        row = self._db.execute("SELECT ack FROM commands WHERE id = ?", (command_id,)).fetchone()
        return bytes(row[0]) if row else None

    def record_command(self, command_id: str, ack: bytes) -> None:
        """Keep ``ack`` for ``command_id``; on a full disk in memory until there is room."""
        if not self.disk_full:
            try:
                self._insert_command(self._db, command_id, ack)
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                self._enter_disk_full(exc)
            else:
                return
        self._unrecorded[command_id] = ack

    @staticmethod
    def _insert_command(db: sqlite3.Connection, command_id: str, ack: bytes) -> None:
        db.execute(
            "INSERT OR REPLACE INTO commands (id, received, ack) VALUES (?, ?, ?)",
            (command_id, time.time(), ack),
        )

    @property
    def sent_kept(self) -> int:
        return self._sent
