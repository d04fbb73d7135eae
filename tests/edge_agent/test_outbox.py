"""The durable outbox on a real SQLite file."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.outbox import Outbox, Reading
from edge_agent.wire import MessageClass, decode_envelope, encode_envelope, is_valid_name

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def _reading(cls: MessageClass, n: int) -> Reading:
    return Reading(
        "dev1",
        "reading" if cls is MessageClass.TELEMETRY else "tamper",
        cls,
        NOW,
        json.dumps({"n": n}),
    )


def _telemetry(count: int, start: int = 0) -> list[Reading]:
    return [_reading(MessageClass.TELEMETRY, start + i) for i in range(count)]


def _events(count: int, start: int = 0) -> list[Reading]:
    return [_reading(MessageClass.EVENT, start + i) for i in range(count)]


def test_sequence_numbers_are_stamped_in_order_and_survive_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)
    assert box.session == 1
    box.put(_telemetry(3))
    pending = box.fetch(after=0, limit=10)
    assert [p.seq for p in pending] == [1, 2, 3]
    first = decode_envelope(pending[0].payload, "a1", MessageClass.TELEMETRY)
    assert (first.seq, first.session, first.body) == (1, 1, {"n": 0})
    box.mark_sent(pending[:2])
    box.close()
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)
    assert box.session == 2
    assert [p.seq for p in box.fetch(after=0, limit=10)] == [3]
    box.put(_events(1))
    assert box.last_seq == 4  # numbers are never reused, even after rows left
    assert box.depth == {MessageClass.EVENT: 1, MessageClass.TELEMETRY: 1}
    box.close()


def test_the_epoch_is_made_with_the_file_and_stamped_on_every_envelope(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)
    epoch, first_seq = box.epoch, box.first_seq
    assert is_valid_name(epoch)
    assert first_seq == 1
    box.put(_telemetry(2))
    box.close()
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)
    assert (box.epoch, box.first_seq) == (epoch, 1)  # kept in the file, across restarts
    box.put(_events(1))
    decoded = [decode_envelope(p.payload, "a1", p.cls) for p in box.fetch(after=0, limit=10)]
    assert [(e.epoch, e.seq) for e in decoded] == [(epoch, 1), (epoch, 2), (epoch, 3)]
    box.close()
    # A wiped disk: a new file numbers from 1 again, under an epoch never seen before.
    (tmp_path / "o.sqlite3").unlink()
    for leftover in tmp_path.glob("o.sqlite3-*"):
        leftover.unlink()
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100)
    assert box.epoch != epoch
    assert (box.session, box.first_seq, box.last_seq) == (1, 1, 0)
    box.close()


_PRE_EPOCH_SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY, cls INTEGER NOT NULL, created REAL NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0, payload BLOB NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE commands (id TEXT PRIMARY KEY, received REAL NOT NULL, ack BLOB NOT NULL);
"""


def test_an_outbox_from_before_epochs_gets_one_that_starts_after_its_numbers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_PRE_EPOCH_SCHEMA)
    legacy = encode_envelope(
        "a1", None, 4, 7, "2026-11-24T01:30:00.000000Z", "d", "k", MessageClass.TELEMETRY, "{}"
    )
    old.execute("INSERT INTO outbox VALUES (7, 1, 0, 0, ?)", (legacy,))
    old.execute("INSERT INTO meta VALUES ('session', 4), ('next_seq', 8)")
    old.commit()
    old.close()
    box = Outbox(path, "a1", max_rows=100)
    assert box.session == 5
    assert box.first_seq == 8  # 1..7 were numbered without an epoch
    epoch = box.epoch
    box.put(_telemetry(1))
    rows = box.fetch(after=0, limit=10)
    decoded = [decode_envelope(p.payload, "a1", p.cls) for p in rows]
    # The row stored before keeps its payload (no epoch); new rows carry the new epoch.
    assert [(e.epoch, e.seq) for e in decoded] == [(None, 7), (epoch, 8)]
    box.close()
    box = Outbox(path, "a1", max_rows=100)
    assert (box.epoch, box.first_seq) == (epoch, 8)
    box.close()


def _fill_then_die(path: Path, ready: multiprocessing.synchronize.Event) -> None:
    box = Outbox(path, "a1", max_rows=10_000)
    box.put(_telemetry(500))
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_accepted_readings_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    ready = multiprocessing.get_context("fork").Event()
    child = multiprocessing.get_context("fork").Process(target=_fill_then_die, args=(path, ready))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert ready.is_set()
    box = Outbox(path, "a1", max_rows=10_000)
    assert box.last_seq == 500
    assert len(box.fetch(after=0, limit=1000)) == 500
    box.close()


def test_bound_drops_oldest_telemetry_first_and_counts_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=10)
    box.put(_events(2))
    box.put(_telemetry(8))
    result = box.put(_telemetry(3, start=100))
    assert (result.accepted, result.dropped_oldest, result.refused) == (3, 3, 0)
    kept = box.fetch(after=0, limit=100)
    assert [p.seq for p in kept] == [1, 2, 6, 7, 8, 9, 10, 11, 12, 13]
    assert {p.cls for p in kept[:2]} == {MessageClass.EVENT}
    assert not box.full
    box.close()


def test_events_are_never_dropped_and_full_outbox_refuses_telemetry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=5)
    box.put(_telemetry(2))
    result = box.put(_events(5))
    assert (result.accepted, result.dropped_oldest) == (5, 2)
    result = box.put(_telemetry(4))
    assert (result.accepted, result.refused) == (0, 4)
    assert box.full
    result = box.put(_events(2, start=10))  # past the bound, but an event is never refused
    assert result.accepted == 2
    assert box.depth == {MessageClass.EVENT: 7, MessageClass.TELEMETRY: 0}
    assert box.last_seq == 9  # refused telemetry never got a number: no false gap
    box.mark_sent(box.fetch(after=0, limit=3))
    assert not box.full
    box.close()


def test_sent_history_is_bounded_and_can_be_requeued(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=100, keep_sent=5)
    box.put(_telemetry(10))
    box.mark_sent(box.fetch(after=0, limit=10))
    assert box.total_depth == 0
    assert box.sent_kept == 5
    assert box.oldest_kept() == 6
    assert box.requeue(1, 7) == 2  # 1..5 are gone; 6 and 7 come back
    assert [p.seq for p in box.fetch(after=0, limit=10)] == [6, 7]
    assert box.requeue(6, 7) == 0  # already unsent: a repeated replay changes nothing
    box.close()


def test_command_ledger_remembers_acks(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=10)
    assert box.command_ack("c1") is None
    box.record_command("c1", b'{"ok":true}')
    box.close()
    box = Outbox(tmp_path / "o.sqlite3", "a1", max_rows=10)
    assert box.command_ack("c1") == b'{"ok":true}'
    box.close()


batches = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 8)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(steps=batches, bound=st.integers(1, 12))
def test_bound_policy_properties(steps: list[tuple[int, int, int]], bound: int) -> None:
    """Events are never lost, telemetry stays within the bound, numbers only grow."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "o.sqlite3", "a1", max_rows=bound, keep_sent=1000)
        events_in = 0
        events_sent = 0
        last = 0
        for n_events, n_telemetry, n_send in steps:
            box.put(_events(n_events) + _telemetry(n_telemetry))
            events_in += n_events
            assert box.last_seq >= last
            last = box.last_seq
            sending = box.fetch(after=0, limit=n_send)
            events_sent += sum(1 for p in sending if p.cls is MessageClass.EVENT)
            box.mark_sent(sending)
            assert box.depth[MessageClass.EVENT] == events_in - events_sent
            assert box.total_depth <= max(bound, box.depth[MessageClass.EVENT])
            assert box.depth[MessageClass.TELEMETRY] <= bound
        seqs = [p.seq for p in box.fetch(after=0, limit=10_000)]
        assert seqs == sorted(set(seqs))
        box.close()
