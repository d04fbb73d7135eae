"""The feed on a real SQLite store: scopes, positions after purges, and the ingest writer's
availability changes (reported once per change, not per reading)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from central import feed
from central.api.routes.stream import encode
from central.auth import Principal, Role
from central.feed_watch import FeedWatch
from central.ingest_writer import IngestWriter
from central.plan_jobs import purge_feed
from central.store import connect, migrate
from edge_agent.wire import Envelope, MessageClass, Status, format_time

NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
ADMIN = Principal("a", Role.ADMIN, None)


def _store(tmp_path: Path) -> sqlite3.Connection:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    return connect(db)


def test_each_role_reads_its_own_scope(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    feed.append(conn, "room_state", None, {"room": "W-1"})
    feed.append(conn, "plan_changed", "s1", {"booking": "b1"})
    feed.append(conn, "agent_online", "s1", {"agent": "a1"}, audience=feed.Audience.HEALTH)
    feed.append(conn, "agent_online", "s2", {"agent": "a2"}, audience=feed.Audience.HEALTH)

    def kinds(principal: Principal) -> list[tuple[str, str | None]]:
        return [(e.kind, e.station) for e in feed.after(conn, 0, principal, 100)]

    assert len(kinds(ADMIN)) == 4
    assert kinds(Principal("c", Role.CENTRE, None)) == kinds(ADMIN)
    assert kinds(Principal("s", Role.STATION, "s1")) == [
        ("plan_changed", "s1"),
        ("agent_online", "s1"),
    ]
    assert kinds(Principal("o", Role.OPS, None)) == [("agent_online", "s1"), ("agent_online", "s2")]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.one_of(st.just("append"), st.just("purge")), max_size=30),
    resume=st.integers(min_value=0, max_value=40),
)
def test_a_reader_gets_everything_after_its_id_or_is_told_it_lost_some(
    steps: list[str], resume: int
) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(
        "CREATE TABLE feed (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, "
        "kind TEXT NOT NULL, station TEXT, audience TEXT NOT NULL, body TEXT NOT NULL)"
    )
    appended: list[int] = []
    purged: set[int] = set()  # appended ids no longer in the table
    moment = NOW
    for step in steps:
        moment += timedelta(seconds=1)
        if step == "append":
            appended.append(feed.append(conn, "k", None, {}, at=format_time(moment)))
        else:
            # Everything but the last second's events.
            feed.purge(conn, timedelta(seconds=1), now=moment)
            purged = {
                i
                for i in appended
                if conn.execute("SELECT 1 FROM feed WHERE id = ?", (i,)).fetchone() is None
            }
    where = feed.position(conn, resume)
    assert where.latest == (appended[-1] if appended else 0)
    missed = {i for i in appended if i > resume}
    if resume > where.latest or missed & purged:
        assert where.lost
    else:
        assert not where.lost
        assert [e.id for e in feed.after(conn, resume, ADMIN, 100)] == sorted(missed)


def _device(seq: int, online: bool | None, kind: str = "availability") -> tuple[str, bytes]:
    body: dict[str, object] = {"n": seq} if online is None else {"online": online, "class": "x"}
    envelope = Envelope("a1", "e" * 32, 1, seq, NOW, "d1", kind, MessageClass.TELEMETRY, body)
    return "precinct/v1/a1/telemetry", envelope.encode()


def _status(online: bool, connection: int) -> tuple[str, bytes]:
    status = Status(
        "a1",
        online,
        1,
        connection,
        NOW,
        "s1",
        None if online else "lost",
        epoch="e" * 32,
        first_seq=1,
    )
    return "precinct/v1/a1/status", status.encode()


def test_availability_is_reported_once_per_change(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    writer = IngestWriter(connect(tmp_path / "c.sqlite3"))
    writer.write([_status(True, 1)])
    writer.write([_status(True, 1)])  # the same birth again (a retained status re-read)
    writer.write([_device(1, True), _device(2, None, "reading"), _device(3, True)])
    writer.write([_device(4, None, "reading")])
    writer.write([_device(5, False)])
    writer.write([_status(False, 1)])
    events = [(e.kind, e.station, e.audience) for e in feed.after(conn, 0, ADMIN, 100)]
    health = feed.Audience.HEALTH
    assert events == [
        ("agent_online", "s1", health),
        ("device_online", "s1", health),
        ("device_offline", "s1", health),
        ("agent_offline", "s1", health),
    ]


def test_the_retention_job_deletes_only_events_past_the_window(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    old = format_time(datetime.now(UTC) - timedelta(hours=30))
    feed.append(conn, "room_state", None, {"room": "W-1"}, at=old)
    kept = feed.append(conn, "room_state", None, {"room": "W-2"})
    assert purge_feed(tmp_path / "c.sqlite3", 24.0) == 1
    assert [e.id for e in feed.after(conn, 0, ADMIN, 10)] == [kept]
    assert feed.position(conn, kept - 2).lost
    assert not feed.position(conn, kept - 1).lost


def test_the_poller_serves_recent_events_and_sends_older_readers_to_the_store(
    tmp_path: Path,
) -> None:
    conn = _store(tmp_path)
    first = feed.append(conn, "room_state", None, {"room": "W-0"})
    watch = FeedWatch(tmp_path / "c.sqlite3", 0.1, encode, keep=3)
    station = Principal("s", Role.STATION, "s1")

    async def scenario() -> None:
        await watch.poll_once()
        assert watch.latest == first
        assert watch.recent(first, ADMIN) == []
        assert watch.recent(first - 1, ADMIN) is None  # before the poller started: the store
        ids = [feed.append(conn, "plan_changed", f"s{n % 2}", {"n": n}) for n in range(5)]
        await watch.poll_once()  # reads at most 3: the rest next time
        assert watch.latest == ids[2]
        await watch.poll_once()
        assert watch.latest == ids[4]
        assert watch.recent(ids[0], ADMIN) is None  # dropped from memory
        recent = watch.recent(ids[1], ADMIN)
        assert recent is not None
        assert [e.id for e in recent] == ids[2:]
        assert [e.station for e in watch.recent(ids[1], station) or []] == ["s1"]
        # Encoded once by the poller: every stream sends the same bytes.
        assert watch.encoded(recent[0]) is watch.encoded(recent[0])
        assert watch.encoded(recent[0]) == encode(recent[0])
        assert f"id: {ids[2]}".encode() in watch.encoded(recent[0])

    asyncio.run(scenario())


def test_every_plan_event_reaches_the_feed_in_its_transaction(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    insert = (
        "INSERT INTO plan_events (at, kind, station, booking, person, body) "
        "VALUES ('2026-12-01T22:00:00.000000Z', ?, 's1', 'b1', ?, ?)"
    )
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(insert, ("plan_changed", None, '{"cause":"booking"}'))
    conn.execute("ROLLBACK")
    assert feed.after(conn, 0, ADMIN, 10) == []  # rolled back with it
    conn.execute(insert, ("custody_level", "P1", '{"level":"red"}'))
    conn.execute(insert, ("plan_changed", None, "not json"))
    events = feed.after(conn, 0, ADMIN, 10)
    assert [(e.kind, e.station, e.audience) for e in events] == [
        ("custody_level", "s1", feed.Audience.CENTRE),
        ("plan_changed", "s1", feed.Audience.CENTRE),
    ]
    assert events[0].body == {
        "booking": "b1",
        "person": "P1",
        "plan_event": 1,
        "detail": {"level": "red"},
    }
    assert events[1].body["detail"] == "not json"
