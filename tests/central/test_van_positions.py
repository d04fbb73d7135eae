"""Van positions in the feed: the thinning rule on its own, and through the ingest writer on a
real store, with two writers (two ingest processes) taking turns."""

from __future__ import annotations

import math
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from central import feed, van_positions
from central.auth import Principal, Role
from central.ingest_writer import IngestWriter
from central.store import connect, migrate
from edge_agent.wire import FIX_KIND, Envelope, MessageClass, Status, format_time

# Asia/Shanghai, where the centre runs: the rule must not care about the zone.
SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
EPOCH = "e" * 32
ADMIN = Principal("a", Role.ADMIN, None)


def test_a_fix_is_due_in_a_new_second_only() -> None:
    local = T0.astimezone(SHANGHAI)
    assert van_positions.is_due(None, T0)
    assert not van_positions.is_due(T0, T0 + timedelta(milliseconds=999))
    assert van_positions.is_due(T0 + timedelta(milliseconds=999), T0 + timedelta(seconds=1))
    # The same instant written in another zone is the same second.
    assert not van_positions.is_due(local, T0 + timedelta(milliseconds=5))
    # A clock that went back (a replaced receiver) is a change of second too: reported.
    assert van_positions.is_due(T0, T0 - timedelta(seconds=3))


def test_the_body_keeps_a_usable_position_only() -> None:
    body = van_positions.body(
        "van-1", "gps", T0, {"lat": 31.2, "lon": 121.4, "speed_mps": 8.3, "course": None}
    )
    assert body == {
        "agent": "van-1",
        "device": "gps",
        "time": format_time(T0),
        "lat": 31.2,
        "lon": 121.4,
        "speed_mps": 8.3,
        "course": None,
    }
    for broken in (
        None,
        [31.2, 121.4],
        {"lat": 31.2},
        {"lat": True, "lon": 121.4},
        {"lat": "31.2", "lon": 121.4},
        {"lat": 91.0, "lon": 0.0},
        {"lat": math.nan, "lon": 0.0},
    ):
        assert van_positions.body("van-1", "gps", T0, broken) is None, broken
    odd = van_positions.body(
        "v", "g", T0, {"lat": 0, "lon": 1, "speed_mps": "fast", "course": 1e400}
    )
    assert odd is not None
    assert (odd["speed_mps"], odd["course"]) == (None, None)


def _birth(agent: str, station: str) -> tuple[str, bytes]:
    status = Status(agent, True, 1, 1, T0, station, None, epoch=EPOCH, first_seq=1)
    return f"precinct/v1/{agent}/status", status.encode()


def _fix(agent: str, seq: int, moment: datetime, device: str = "gps") -> tuple[str, bytes]:
    body = {"lat": 31.2 + seq / 1e5, "lon": 121.4, "speed_mps": 8.0, "course": 10.0, "mode": 3}
    envelope = Envelope(
        agent, EPOCH, 1, seq, moment, device, FIX_KIND, MessageClass.TELEMETRY, body
    )
    return f"precinct/v1/{agent}/telemetry", envelope.encode()


def _positions(conn: sqlite3.Connection) -> list[feed.FeedEvent]:
    return [e for e in feed.after(conn, 0, ADMIN, 10_000) if e.kind == van_positions.KIND]


def _stored_fix_time(conn: sqlite3.Connection, agent: str, device: str) -> datetime | None:
    row = conn.execute(
        "SELECT json_extract(state, '$.fix.time') FROM devices WHERE agent = ? AND device = ?",
        (agent, device),
    ).fetchone()
    return None if row is None or row[0] is None else datetime.fromisoformat(row[0])


def test_a_van_position_goes_to_the_vans_station_for_the_centre_not_ops(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = connect(db)
    writer = IngestWriter(connect(db))
    writer.write([_birth("van-1", "s-north")])
    writer.write([_fix("van-1", 1, T0 + timedelta(milliseconds=200))])
    # Another fix of the same second: nothing new.
    writer.write([_fix("van-1", 2, T0 + timedelta(milliseconds=700))])
    writer.write([_fix("van-1", 3, T0 + timedelta(seconds=1, milliseconds=100))])
    # A late fix (lower seq: a replayed backlog) does not move the van back.
    writer.write([_fix("van-1", 0, T0 + timedelta(seconds=5))])
    events = _positions(conn)
    assert [(e.station, e.audience) for e in events] == [("s-north", feed.Audience.CENTRE)] * 2
    assert [e.body["time"] for e in events] == [
        format_time(T0 + timedelta(milliseconds=200)),
        format_time(T0 + timedelta(seconds=1, milliseconds=100)),
    ]
    assert events[0].body["agent"] == "van-1"
    assert events[0].body["device"] == "gps"
    assert events[0].body["lat"] == 31.2 + 1 / 1e5
    visible = [e.kind for e in feed.after(conn, 0, Principal("s", Role.STATION, "s-north"), 100)]
    assert visible.count(van_positions.KIND) == 2
    assert van_positions.KIND not in {
        e.kind for e in feed.after(conn, 0, Principal("s", Role.STATION, "s-south"), 100)
    }
    assert van_positions.KIND not in {
        e.kind for e in feed.after(conn, 0, Principal("o", Role.OPS, None), 100)
    }


def test_a_backlog_batch_reports_where_the_van_is_now(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = connect(db)
    writer = IngestWriter(connect(db))
    writer.write([_birth("van-1", "s1")])
    # Ten minutes in a tunnel, delivered at once.
    writer.write([_fix("van-1", n, T0 + timedelta(seconds=n)) for n in range(1, 601)])
    events = _positions(conn)
    assert [e.body["time"] for e in events] == [format_time(T0 + timedelta(seconds=600))]


# Batches of fixes: each fix is (milliseconds after the previous one, valid body); each batch
# goes to one of two writers on the same store (two ingest processes).
_batches = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.lists(st.tuples(st.integers(0, 1500), st.booleans()), min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(batches=_batches, start_ms=st.integers(0, 999))
def test_at_most_one_position_per_second_and_never_a_second_behind(
    batches: list[tuple[int, list[tuple[int, bool]]]], start_ms: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "c.sqlite3"
        migrate(db)
        conn = connect(db)
        writers = [IngestWriter(connect(db)), IngestWriter(connect(db))]
        writers[0].write([_birth("van-1", "s1")])
        moment = T0 + timedelta(milliseconds=start_ms)
        seq = 0
        # Seconds whose newest stored fix had no usable position at the end of some batch: a
        # later fix of that second is not reported (the limit is strict), so freshness is not
        # promised there.
        unusable: set[int] = set()
        for which, fixes in batches:
            before = len(_positions(conn))
            messages = []
            for step_ms, valid in fixes:
                seq += 1
                moment += timedelta(milliseconds=step_ms)
                topic, payload = _fix("van-1", seq, moment)
                if not valid:
                    envelope = Envelope(
                        "van-1",
                        EPOCH,
                        1,
                        seq,
                        moment,
                        "gps",
                        FIX_KIND,
                        MessageClass.TELEMETRY,
                        {"lat": "nowhere"},
                    )
                    payload = envelope.encode()
                messages.append((topic, payload))
            writers[which].write(messages)
            events = _positions(conn)
            assert len(events) - before <= 1  # one per device per batch at most
            newest = _stored_fix_time(conn, "van-1", "gps")
            assert newest == moment
            second = math.floor(moment.timestamp())
            if not fixes[-1][1]:
                unusable.add(second)
            if len(events) > before:
                # What is reported is the newest stored fix.
                assert events[-1].body["time"] == format_time(moment)
            elif second not in unusable:
                # Not reported: a position of its second is already in the feed.
                assert events, "a usable newest fix and no position at all"
                reported = datetime.fromisoformat(events[-1].body["time"])
                assert math.floor(reported.timestamp()) == second
        seconds = [
            math.floor(datetime.fromisoformat(e.body["time"]).timestamp()) for e in _positions(conn)
        ]
        assert seconds == sorted(set(seconds)), "two positions in one second of fix time"
