"""The ingest writer on a real SQLite store: epochs, dedup, gaps and resets."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from central.ingest_writer import BatchOutcome, IngestWriter
from central.store import LEGACY_EPOCH, MIGRATIONS, connect, migrate
from edge_agent.wire import Envelope, MessageClass, Status

NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
OLD = "0" * 31 + "1"
NEW = "f" * 31 + "2"


def _reading(
    seq: int, epoch: str | None, kind: str = "reading", **body: object
) -> tuple[str, bytes]:
    envelope = Envelope("a1", epoch, 1, seq, NOW, "d1", kind, MessageClass.TELEMETRY, dict(body))
    return "precinct/v1/a1/telemetry", envelope.encode()


def _readings(seqs: Iterable[int], epoch: str | None) -> list[tuple[str, bytes]]:
    return [_reading(seq, epoch, n=seq) for seq in seqs]


def _status(
    epoch: str | None,
    *,
    online: bool = True,
    session: int = 1,
    connection: int = 1,
    first_seq: int | None = 1,
) -> tuple[str, bytes]:
    status = Status(
        "a1",
        online,
        session,
        connection,
        NOW,
        "s1",
        None if online else "lost",
        epoch=epoch,
        first_seq=first_seq if epoch is not None else None,
    )
    return "precinct/v1/a1/status", status.encode()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    return db


def _writer(db: Path) -> IngestWriter:
    return IngestWriter(connect(db))


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _agent(db: Path) -> tuple[object, ...]:
    return _rows(db, "SELECT epoch, online, session, connection FROM agents WHERE agent = 'a1'")[0]


def _epochs(db: Path) -> dict[object, tuple[object, ...]]:
    rows = _rows(
        db,
        "SELECT epoch, first_seq, last_seq, received, replaced_at IS NOT NULL "
        "FROM agent_epochs WHERE agent = 'a1'",
    )
    return {r[0]: r[1:] for r in rows}


def _resets(db: Path) -> list[dict[str, object]]:
    return [
        json.loads(str(r[0]))
        for r in _rows(db, "SELECT body FROM agent_events WHERE kind = 'agent_reset' ORDER BY id")
    ]


def test_a_wiped_agent_numbering_from_1_again_is_stored_not_counted_as_duplicates(
    store: Path,
) -> None:
    writer = _writer(store)
    # First life: 1..6 with 3 lost, then a clean stop.
    writer.write([_status(OLD), *_readings([1, 2, 4, 5, 6], OLD)])
    writer.write([_status(OLD, online=False, connection=2)])
    # Second life, wiped disk: session 1, connection 1 and seq 1 again, under a new epoch.
    outcome = writer.write([_status(NEW), *_readings(range(1, 6), NEW)])
    assert outcome.duplicates == 0
    assert outcome.stored == {MessageClass.TELEMETRY: 5}
    assert outcome.resets == 1
    assert _agent(store) == (NEW, 1, 1, 1)  # the new birth applied despite its lower session
    assert _epochs(store) == {OLD: (1, 6, 5, 1), NEW: (1, 5, 5, 0)}
    assert _rows(store, "SELECT count(*) FROM events")[0][0] == 10
    (reset,) = _resets(store)
    assert reset == {
        "old_epoch": OLD,
        "old_first_seq": 1,
        "old_last_seq": 6,
        "old_received": 5,
        "old_missing": 1,
        "gaps": [[3, 3]],
        "gaps_truncated": False,
        "epoch": NEW,
        "first_seq": 1,
    }
    # Repeats are duplicates within their own epoch; the old epoch's missing one still counts.
    again = writer.write([*_readings([1, 2], NEW), *_readings([1], OLD)])
    assert (again.duplicates, again.stored) == (3, {})
    assert writer.totals() == (1, 1)


def test_a_reset_is_raised_once_across_restarts_and_ingest_processes(store: Path) -> None:
    first, second = _writer(store), _writer(store)
    first.write([_status(OLD), *_readings([1, 2], OLD)])
    resets = [
        first.write([_status(NEW)]).resets,
        second.write([_status(NEW)]).resets,  # the other worker gets the same retained birth
        _writer(store).write([_status(NEW), *_readings([1], NEW)]).resets,  # a restarted one
    ]
    assert resets == [1, 0, 0]
    assert len(_resets(store)) == 1


def test_a_stale_will_of_the_old_epoch_never_overrides_the_new_birth(store: Path) -> None:
    writer = _writer(store)
    writer.write([_status(OLD, session=7, connection=3), *_readings([1], OLD)])
    writer.write([_status(NEW, session=1, connection=1)])
    # The old life's retained will, delivered late, with a higher (session, connection).
    writer.write([_status(OLD, online=False, session=7, connection=4)])
    assert _agent(store) == (NEW, 1, 1, 1)
    # Within the new epoch the usual order holds: a will of an older connection is stale.
    writer.write([_status(NEW, session=1, connection=2)])
    writer.write([_status(NEW, online=False, session=1, connection=1)])
    assert _agent(store) == (NEW, 1, 1, 2)
    assert len(_resets(store)) == 1


def test_readings_that_overtake_their_birth_are_stored_and_wait_for_it(store: Path) -> None:
    writer = _writer(store)
    writer.write([_status(OLD), *_readings([1, 2, 3], OLD)])
    early = writer.write(_readings([1, 2], NEW))
    assert (early.duplicates, early.resets) == (0, 0)
    assert _agent(store)[0] == OLD  # not current before its birth
    assert writer.write([_status(NEW)]).resets == 1
    assert _epochs(store)[NEW] == (1, 2, 2, 0)


def test_device_state_of_a_new_epoch_replaces_the_old_one(store: Path) -> None:
    writer = _writer(store)
    writer.write([_status(OLD), *[_reading(seq, OLD, "temp", c=seq) for seq in (10, 11)]])
    writer.write([_status(NEW), _reading(1, NEW, "temp", c=100)])
    # A late reading of the old epoch replaces nothing of the current one.
    writer.write([_reading(12, OLD, "temp", c=12)])
    (state,) = _rows(store, "SELECT state FROM devices WHERE agent = 'a1' AND device = 'd1'")
    assert json.loads(str(state[0]))["temp"]["body"] == {"c": 100}


def _v4_store(path: Path) -> None:
    conn = connect(path)
    db = sqlite_utils.Database(conn)
    for version, step in enumerate(MIGRATIONS[:4]):
        step(db)
        conn.execute(f"PRAGMA user_version={version + 1}")
    for seq in (1, 2, 4):
        conn.execute(
            "INSERT INTO events (agent, seq, session, class, device, kind, time, received_at, "
            "body) VALUES ('a1', ?, 1, 'telemetry', 'd1', 'reading', ?, ?, '{}')",
            (seq, "2026-11-24T01:00:00.000000Z", "2026-11-24T01:00:00.000000Z"),
        )
    conn.execute(
        "INSERT INTO agents (agent, online, session, connection, first_seen, last_seq, received) "
        "VALUES ('a1', 1, 4, 1, '2026-11-24T01:00:00.000000Z', 4, 3)"
    )
    conn.close()


def test_a_store_from_before_epochs_keeps_its_rows_under_the_legacy_epoch(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    _v4_store(db)
    assert migrate(db) == 4
    assert _epochs(db) == {LEGACY_EPOCH: (1, 4, 3, 0)}
    writer = _writer(db)
    assert writer.totals() == (1, 1)  # seq 3 is still missing
    # An agent of the previous release goes on: no epoch on the wire, no false duplicates.
    outcome = writer.write([_status(None, session=4, connection=2), *_readings([3, 5], None)])
    assert (outcome.duplicates, outcome.stored) == (0, {MessageClass.TELEMETRY: 2})
    assert _agent(db) == (LEGACY_EPOCH, 1, 4, 2)
    # Upgraded, it gets an epoch that starts after its old numbers (first_seq 6): no reset, and
    # no false gap below 6 in the new epoch, even for readings in the batch of its birth.
    outcome = writer.write([*_readings([6, 7], NEW), _status(NEW, session=5, first_seq=6)])
    assert (outcome.duplicates, outcome.gaps, outcome.resets) == (0, 0, 0)
    assert _epochs(db) == {LEGACY_EPOCH: (1, 5, 5, 1), NEW: (6, 7, 2, 0)}
    assert _agent(db) == (NEW, 1, 5, 1)
    assert writer.totals() == (1, 0)
    # A late row stamped before the upgrade still lands in the legacy epoch, once.
    late = writer.write(_readings([5], None))
    assert (late.duplicates, late.stored) == (1, {})
    # A status without an epoch (a downgraded agent) never replaces the real epoch.
    writer.write([_status(None, online=False, session=9)])
    assert _agent(db) == (NEW, 1, 5, 1)
    assert _resets(db) == []


def test_the_legacy_epoch_cannot_be_claimed_by_an_agent(store: Path) -> None:
    payload = _reading(1, NEW)[1].replace(NEW.encode(), b"")
    outcome: BatchOutcome = _writer(store).write([("precinct/v1/a1/telemetry", payload)])
    assert outcome.rejected == {"bad_field": 1}
