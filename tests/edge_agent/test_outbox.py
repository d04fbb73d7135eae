"""The durable outbox on a real SQLite file."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.outbox import Outbox, Reading
from edge_agent.wire import MessageClass, decode_envelope

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
