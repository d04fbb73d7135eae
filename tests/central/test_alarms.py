"""Alarms: the pure rules, and the deriver over a real store file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from central import alarms_store
from central.alarm_deriver import derive
from central.alarm_rules import (
    DEFAULT_SEVERITY,
    ActiveAlarm,
    AlarmState,
    Effect,
    Reading,
    action_for,
    device_offline_action,
    on_ack,
    on_clear,
    on_repeat,
)
from central.audit import Actor
from central.store import MIGRATIONS, connect, migrate
from edge_agent.wire import format_time

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CABINET_BODY = {"board": 1, "seq": 7, "slot": 2, "board_time": "2026-12-01T08:00:00+00:00"}


def test_a_forced_door_raises_and_its_close_clears_the_same_slot() -> None:
    forced = action_for(Reading("a1", "cab-1", "event", "door_forced", CABINET_BODY))
    closed = action_for(Reading("a1", "cab-1", "event", "door_closed", CABINET_BODY))
    other = action_for(Reading("a1", "cab-1", "event", "door_closed", {**CABINET_BODY, "slot": 3}))
    assert forced is not None
    assert closed is not None
    assert other is not None
    assert forced.effect is Effect.RAISE
    assert forced.kinds == ("door_forced",)
    assert forced.device == "cab-1"
    assert forced.band is None
    assert closed.effect is Effect.CLEAR
    assert closed.subject == forced.subject
    assert other.subject != forced.subject


def test_a_band_tamper_is_not_a_cabinet_tamper() -> None:
    band = action_for(Reading("a1", "band-7", "event", "tamper", {"event_seq": 3}))
    cabinet = action_for(Reading("a1", "cab-1", "event", "tamper", CABINET_BODY))
    assert band is not None
    assert band.kinds == ("band_tamper",)
    assert band.band == "band-7"
    assert cabinet is not None
    assert cabinet.kinds == ("tamper",)
    assert cabinet.band is None


def test_custody_flags_end_the_strap_contact_and_tamper_alarms() -> None:
    action = action_for(
        Reading("a1", "band-7", "telemetry", "custody", {"flags": ["strap_closed", "skin_contact"]})
    )
    assert action is not None
    assert action.effect is Effect.CLEAR
    assert set(action.kinds) == {"strap_opened", "contact_lost", "band_tamper"}
    assert action_for(Reading("a1", "band-7", "telemetry", "heart_rate", {"bpm": 70})) is None


def test_agent_events_raise_for_the_agent_itself() -> None:
    for kind in ("outbox_full", "disk_full"):
        action = action_for(Reading("a1", "agent", "event", kind, {}))
        assert action is not None
        assert action.subject == "a1"
        assert action.device is None


readings = st.builds(
    Reading,
    agent=st.sampled_from(["a1", "a2"]),
    device=st.sampled_from(["agent", "cab-1", "band-1"]),
    cls=st.sampled_from(["event", "telemetry", "status"]),
    kind=st.sampled_from([*DEFAULT_SEVERITY, "door_closed", "band_present", "custody", "x"]),
    body=st.one_of(
        st.just(CABINET_BODY),
        st.fixed_dictionaries({"flags": st.lists(st.sampled_from(["strap_closed", "tamper"]))}),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    ),
)


@given(readings)
def test_every_reading_has_one_answer_and_only_known_kinds(reading: Reading) -> None:
    action = action_for(reading)
    assert action == action_for(reading)
    if action is not None:
        assert set(action.kinds) <= set(DEFAULT_SEVERITY)
        assert action.subject.startswith(reading.agent)


states = st.builds(
    ActiveAlarm,
    kind=st.sampled_from(list(DEFAULT_SEVERITY)),
    state=st.sampled_from(list(AlarmState)),
    count=st.integers(1, 1000),
)


@given(states)
def test_a_repeat_counts_and_a_clear_ends(alarm: ActiveAlarm) -> None:
    repeated = on_repeat(alarm)
    assert repeated.count == alarm.count + 1
    assert repeated.state is alarm.state
    cleared = on_clear(alarm)
    assert cleared.state is AlarmState.CLEARED
    assert not cleared.active
    assert cleared.count == alarm.count
    acked = on_ack(alarm)
    assert acked.state is not AlarmState.OPEN
    assert acked.count == alarm.count


# --- the deriver over a store file ------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "central.sqlite3"
    migrate(path)
    conn = connect(path)
    conn.execute(
        "INSERT INTO agents (agent, station, online, status_time, epoch) VALUES (?, ?, 1, ?, ?)",
        ("a1", "s1", format_time(T0), "e1"),
    )
    conn.close()
    return path


def _event(
    db: Path, seq: int, kind: str, body: dict[str, Any], device: str = "cab-1", cls: str = "event"
) -> None:
    conn = connect(db)
    conn.execute(
        "INSERT INTO events (agent, epoch, seq, session, class, device, kind, time, received_at, "
        "body) VALUES ('a1', 'e1', ?, 1, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            cls,
            device,
            kind,
            format_time(T0 + timedelta(seconds=seq)),
            format_time(T0),
            json.dumps(body),
        ),
    )
    conn.close()


def _alarms(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT kind, state, count, device, station, source, cleared_at FROM alarms ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _run(db: Path) -> None:
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(minutes=5))


def test_a_repeat_while_open_counts_and_a_rerun_from_scratch_changes_nothing(db: Path) -> None:
    _event(db, 1, "door_forced", CABINET_BODY)
    _event(db, 2, "slot_status", {"slots": []}, cls="telemetry")
    _event(db, 3, "door_forced", CABINET_BODY)
    _run(db)
    assert _alarms(db) == [("door_forced", "open", 2, "cab-1", "s1", "event:a1:e1:1", None)]
    _run(db)
    # A restart that lost the cursor (or never committed it) reads everything again.
    conn = connect(db)
    conn.execute("DELETE FROM alarm_cursors")
    conn.close()
    _run(db)
    assert _alarms(db) == [("door_forced", "open", 2, "cab-1", "s1", "event:a1:e1:1", None)]
    _event(db, 4, "door_closed", CABINET_BODY)
    _run(db)
    [(kind, state, count, *_rest, cleared_at)] = _alarms(db)
    assert (kind, state, count) == ("door_forced", "cleared", 2)
    assert cleared_at == format_time(T0 + timedelta(seconds=4))
    # After the clear, a new forced door is a new alarm.
    _event(db, 5, "door_forced", CABINET_BODY)
    _run(db)
    assert [(a[0], a[1], a[2]) for a in _alarms(db)] == [
        ("door_forced", "cleared", 2),
        ("door_forced", "open", 1),
    ]


def test_a_strap_opened_is_cleared_by_custody_flags(db: Path) -> None:
    _event(db, 1, "strap_opened", {"event_seq": 4}, device="band-1")
    _run(db)
    _event(db, 2, "custody", {"flags": ["strap_closed"]}, device="band-1", cls="telemetry")
    _run(db)
    [(kind, state, count, device, *_rest)] = _alarms(db)
    assert (kind, state, count, device) == ("strap_opened", "cleared", 1, "band-1")


def test_a_latched_alarm_ends_with_its_acknowledgement(db: Path) -> None:
    _event(db, 1, "tamper", CABINET_BODY)
    _run(db)
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    alarms_store.acknowledge(conn, 1, Actor("duty", "centre", "127.0.0.1"), "seen", T0)
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(alarms_store.AlreadyAcknowledgedError):
        alarms_store.acknowledge(conn, 1, Actor("duty", "centre", "127.0.0.1"), "again", T0)
    conn.execute("ROLLBACK")
    audit = conn.execute("SELECT action, target, actor FROM audit").fetchall()
    conn.close()
    assert audit == [("alarm.acknowledged", "1", "duty")]
    _event(db, 2, "tamper", CABINET_BODY)
    _run(db)
    assert [(a[0], a[1], a[2]) for a in _alarms(db)] == [
        ("tamper", "acknowledged", 1),
        ("tamper", "open", 1),
    ]


def test_an_agent_offline_too_long_raises_once_and_online_clears(db: Path) -> None:
    conn = connect(db)
    conn.execute("UPDATE agents SET online = 0")
    conn.close()
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(seconds=30))
    assert _alarms(db) == []
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(seconds=90))
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(seconds=120))
    assert [(a[0], a[1], a[2]) for a in _alarms(db)] == [("agent_offline", "open", 1)]
    conn = connect(db)
    conn.execute(
        "UPDATE agents SET online = 1, status_time = ?",
        (format_time(T0 + timedelta(seconds=130)),),
    )
    conn.close()
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(seconds=140))
    assert [(a[0], a[1], a[2]) for a in _alarms(db)] == [("agent_offline", "cleared", 1)]


def test_agent_reset_rows_raise_once(db: Path) -> None:
    conn = connect(db)
    conn.execute(
        "INSERT INTO agent_events (at, agent, kind, epoch, old_epoch, body) "
        "VALUES (?, 'a1', 'agent_reset', 'e2', 'e1', '{}')",
        (format_time(T0),),
    )
    conn.close()
    _run(db)
    _run(db)
    assert [(a[0], a[1], a[5]) for a in _alarms(db)] == [("agent_reset", "open", "agent_event:1")]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["door_forced", "door_closed", "tamper"]), max_size=12))
def test_the_alarms_are_the_same_however_often_and_where_the_deriver_stops(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str]
) -> None:
    db = tmp_path_factory.mktemp("alarms") / "central.sqlite3"
    migrate(db)
    for seq, kind in enumerate(kinds, start=1):
        _event(db, seq, kind, CABINET_BODY)
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0)
    once = _alarms(db)
    conn = connect(db)
    conn.execute("DELETE FROM alarm_cursors")
    conn.close()
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0)
    assert _alarms(db) == once
    assert sum(a[2] for a in once) == sum(1 for k in kinds if k != "door_closed")


def _device_availability(db: Path, online: bool, seq: int) -> None:
    state = {"availability": {"epoch": "e1", "seq": seq, "time": format_time(T0), "body": {}}}
    conn = connect(db)
    conn.execute(
        "INSERT INTO devices (agent, device, class, online, last_seen, state, updated_at) "
        "VALUES ('a1', 'cab-1', 'cabinet', ?, ?, ?, ?) ON CONFLICT (agent, device) DO UPDATE "
        "SET online = excluded.online, state = excluded.state",
        (int(online), format_time(T0), json.dumps(state), format_time(T0)),
    )
    conn.close()


def test_a_device_offline_under_an_online_agent_raises_once_and_back_clears(db: Path) -> None:
    _device_availability(db, online=True, seq=1)
    _run(db)
    assert _alarms(db) == []
    _device_availability(db, online=False, seq=2)
    _run(db)
    _run(db)
    assert [(a[0], a[1], a[3], a[4]) for a in _alarms(db)] == [
        ("device_offline", "open", "cab-1", "s1")
    ]
    _device_availability(db, online=True, seq=3)
    _run(db)
    assert [(a[0], a[1], a[2]) for a in _alarms(db)] == [("device_offline", "cleared", 1)]


def test_an_offline_agents_devices_raise_nothing_of_their_own() -> None:
    assert device_offline_action(agent_online=False, device_online=False) is None
    assert device_offline_action(agent_online=True, device_online=None) is None


def test_a_store_brought_forward_raises_nothing_for_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = connect(path)
    old = sqlite_utils.Database(conn)
    alarms_version = [step.__name__ for step in MIGRATIONS].index("_v7")
    for version, step in enumerate(MIGRATIONS[:alarms_version], start=1):
        step(old)
        conn.execute(f"PRAGMA user_version={version}")
    conn.close()
    _event(path, 1, "door_forced", CABINET_BODY)
    migrate(path)
    _run(path)
    assert _alarms(path) == []
    _event(path, 2, "door_forced", CABINET_BODY)
    _run(path)
    assert [a[5] for a in _alarms(path)] == ["event:a1:e1:2"]


def test_every_alarm_change_goes_into_the_stream_feed_without_its_body(db: Path) -> None:
    _event(db, 1, "door_forced", CABINET_BODY)
    _event(db, 2, "door_forced", CABINET_BODY)
    _run(db)
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    alarms_store.acknowledge(conn, 1, Actor("duty", "centre", "127.0.0.1"), "seen", T0)
    conn.execute("COMMIT")
    conn.close()
    _event(db, 3, "door_closed", CABINET_BODY)
    _run(db)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT kind, station, audience, body FROM feed ORDER BY id").fetchall()
    finally:
        conn.close()
    changes = [(kind, station, audience) for kind, station, audience, _ in rows]
    assert changes == [
        ("alarm_raised", "s1", "health"),
        ("alarm_repeated", "s1", "health"),
        ("alarm_acknowledged", "s1", "health"),
        ("alarm_cleared", "s1", "health"),
    ]
    bodies = [json.loads(body) for *_, body in rows]
    assert [(b["alarm"], b["kind"], b["count"]) for b in bodies] == [
        (1, "door_forced", 1),
        (1, "door_forced", 2),
        (1, "door_forced", 2),
        (1, "door_forced", 2),
    ]
    assert all("board" not in json.dumps(b) for b in bodies)  # the reading's body stays out
