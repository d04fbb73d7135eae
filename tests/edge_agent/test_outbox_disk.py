"""The outbox on a real small tmpfs that fills up, and its bounds on disk use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import EventsRefusedError, Outbox, Reading
from edge_agent.reserve import Reserve
from edge_agent.synthetic import run_synthetic
from edge_agent.wire import MessageClass
from tests.tmpfs import fill, free, small_tmpfs

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
RESERVE = 256 << 10


def _readings(cls: MessageClass, count: int, start: int = 0, pad: int = 0) -> list[Reading]:
    kind = "reading" if cls is MessageClass.TELEMETRY else "tamper"
    return [
        Reading("dev1", kind, cls, NOW, json.dumps({"n": start + i, "pad": "x" * pad}))
        for i in range(count)
    ]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "4m") as mounted:
        yield mounted


def _outbox(directory: Path) -> Outbox:
    return Outbox(
        directory / "outbox.sqlite3",
        "a1",
        max_rows=100_000,
        keep_sent=100_000,
        reserve=Reserve(directory / "outbox.reserve", RESERVE),
    )


def test_a_full_disk_refuses_telemetry_keeps_events_from_the_reserve_and_recovers(
    disk: Path,
) -> None:
    box = _outbox(disk)
    assert (disk / "outbox.reserve").stat().st_size == RESERVE
    box.put(_readings(MessageClass.TELEMETRY, 50))
    fill(disk)

    # Today the failed COMMIT's ROLLBACK raised "no transaction is active" here.
    result = box.put(_readings(MessageClass.TELEMETRY, 20) + _readings(MessageClass.EVENT, 2))
    assert box.disk_full
    assert (result.accepted, result.refused_disk_full) == (2, 20)
    assert not (disk / "outbox.reserve").exists()  # released to make room for the events
    assert not box._db.in_transaction

    # Events keep coming from the reserve, a bounded number, then are refused to the source.
    accepted = 2
    refused: EventsRefusedError | None = None
    for n in range(100_000):
        try:
            accepted += box.put(_readings(MessageClass.EVENT, 1, start=n, pad=200)).accepted
        except EventsRefusedError as exc:
            refused = exc
            break
    assert refused is not None
    assert refused.events[0].cls is MessageClass.EVENT
    assert 50 < accepted < 5_000
    assert box.last_seq == 50 + accepted  # a refused event took no number
    assert box.put(_readings(MessageClass.TELEMETRY, 5)).refused_disk_full == 5

    # Acknowledgements and command acks that cannot be written wait in memory.
    pending = box.fetch(after=0, limit=100)
    assert box.mark_sent(pending) == 0
    box.record_command("c1", b'{"ok":true}')
    assert box.command_ack("c1") == b'{"ok":true}'
    assert box.check_space() is False  # still full

    free(disk)
    assert box.check_space() is True
    assert not box.disk_full
    assert (disk / "outbox.reserve").stat().st_size == RESERVE
    assert box.put(_readings(MessageClass.TELEMETRY, 3)).accepted == 3
    assert box.sent_kept == 100
    box.close()

    reopened = _outbox(disk)
    assert reopened.command_ack("c1") == b'{"ok":true}'
    seqs = [p.seq for p in reopened.fetch(after=0, limit=100_000)]
    assert seqs == list(range(101, 50 + accepted + 4))  # every accepted event is still there
    reopened.close()


def test_a_failed_rollback_neither_hides_the_error_nor_leaves_a_transaction(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)

    class FirstError(Exception):
        pass

    def fail_after_sqlite_rolled_back() -> None:
        with box._transaction() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('x', 1)")
            db.execute("ROLLBACK")  # as SQLite does by itself after SQLITE_FULL
            raise FirstError

    # Today the ROLLBACK's "no transaction is active" replaced the first error.
    with pytest.raises(FirstError):
        fail_after_sqlite_rolled_back()
    assert not box._db.in_transaction
    box.put(_readings(MessageClass.EVENT, 1))
    assert box.last_seq == 1
    box.close()


def test_kept_history_is_bounded_in_bytes(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path, "a1", max_rows=10_000, keep_sent=10_000, keep_sent_bytes=50_000)
    for start in range(0, 1000, 100):
        box.put(_readings(MessageClass.TELEMETRY, 100, start=start, pad=400))
        box.mark_sent(box.fetch(after=0, limit=1000))
    box.close()
    conn = sqlite3.connect(path)
    count, size, lowest = conn.execute(
        "SELECT count(*), sum(length(payload)), min(seq) FROM outbox WHERE sent = 1"
    ).fetchone()
    conn.close()
    assert 50_000 - 600 < size <= 50_000  # within one row of the bound
    assert lowest == 1001 - count  # the newest are kept
    reopened = Outbox(path, "a1", max_rows=10_000, keep_sent=10_000, keep_sent_bytes=50_000)
    assert reopened.sent_kept == count
    assert reopened.requeue(1, 1000) == count
    reopened.close()


def test_the_write_ahead_log_stays_bounded_under_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    wal = tmp_path / "o.sqlite3-wal"
    limit = 1 << 20
    box = Outbox(path, "a1", max_rows=100_000, keep_sent=100_000, wal_max_bytes=limit)
    largest_after_check = 0
    for round_ in range(12):
        for start in range(0, 5000, 500):
            box.put(_readings(MessageClass.TELEMETRY, 500, start=start, pad=100))
        box.mark_sent(box.fetch(after=0, limit=100_000))
        if round_ % 4 == 3:
            # A large replay: one long transaction that grows the log well past the limit.
            box.requeue(1, box.last_seq)
            box.mark_sent(box.fetch(after=0, limit=100_000))
        box.check_space()
        largest_after_check = max(largest_after_check, wal.stat().st_size)
    assert largest_after_check <= limit
    box.close()


def test_synthetic_events_refused_are_handed_again_before_new_ones() -> None:
    taken: list[Reading] = []
    calls = 0

    def sink(readings: list[Reading]) -> None:
        nonlocal calls
        calls += 1
        events = [r for r in readings if r.cls is MessageClass.EVENT]
        if calls <= 3 and events:
            raise EventsRefusedError(events, len(readings) - len(events))
        taken.extend(readings)

    async def run() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run_synthetic(100.0, 5, sink), 1.0)

    asyncio.run(run())
    heartbeats = [json.loads(r.body_json)["n"] for r in taken if r.kind == "heartbeat"]
    assert heartbeats[:4] == [4, 9, 14, 19]  # none lost, still in order
    assert heartbeats == sorted(heartbeats)
