"""Alarms about the person behind a band, derived over a real store file: a band's alarm names
who wore it then, a person heard in another room than their session's, or not heard at all."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.alarm_deriver import derive
from central.alarm_rules import DEFAULT_SEVERITY
from central.presence import PresencePolicy
from central.store import connect, migrate
from edge_agent.wire import format_time

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
POLICY = PresencePolicy(timedelta(seconds=5), 3)
BOOKING = "bk-0123456789ab"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "central.sqlite3"
    migrate(path)
    conn = connect(path)
    conn.execute(
        "INSERT INTO agents (agent, station, online, status_time, epoch) VALUES "
        "('floor-2', 'centre', 1, ?, 'e1')",
        (format_time(T0),),
    )
    conn.execute(
        "INSERT INTO bookings (id, code, station, case_id, status, walk_in, expected_arrival, "
        "body, created_by, created_at, updated_at, entered_at) VALUES "
        "(?, 'ABCDEFGH', 's9', 'C-1', 'in_area', 0, ?, '{}', 't', ?, ?, ?)",
        (BOOKING, format_time(T0), format_time(T0), format_time(T0), format_time(T0)),
    )
    conn.execute(
        "INSERT INTO booking_persons (booking, person, session_started_at) VALUES (?, 'S1', ?)",
        (BOOKING, format_time(T0 + timedelta(minutes=1))),
    )
    conn.execute(
        "INSERT INTO assignments (booking, person, kind, room, start, end) VALUES "
        "(?, 'S1', 'session', 'int-2', ?, ?)",
        (BOOKING, format_time(T0 + timedelta(minutes=1)), format_time(T0 + timedelta(hours=1))),
    )
    conn.close()
    return path


def _bind(db: Path, band: str, at: datetime, until: datetime | None = None) -> None:
    conn = connect(db)
    conn.execute(
        "INSERT INTO band_bindings (band, booking, person, station, bound_at, bound_by, "
        "unbound_at, unbound_reason) VALUES (?, ?, 'S1', 's9', ?, 'centre:desk', ?, ?)",
        (
            band,
            BOOKING,
            format_time(at),
            None if until is None else format_time(until),
            None if until is None else "removed",
        ),
    )
    conn.close()


def _event(db: Path, seq: int, kind: str, body: dict[str, Any], at: datetime) -> None:
    conn = connect(db)
    conn.execute(
        "INSERT INTO events (agent, epoch, seq, session, class, device, kind, time, received_at, "
        "body) VALUES ('floor-2', 'e1', ?, 1, 'event', 'band-7', ?, ?, ?, ?)",
        (seq, kind, format_time(at), format_time(at), json.dumps(body)),
    )
    conn.close()


def _heard(db: Path, agent: str, room: str, rssi: float, at: datetime) -> None:
    state = {
        "presence": {
            "seq": 1,
            "time": format_time(at),
            "body": {
                "present": True,
                "rssi": rssi,
                "last_seen": at.isoformat(),
                "adverts": 10,
                "scanner": "hci0",
                "room": room,
            },
        }
    }
    conn = connect(db)
    conn.execute(
        "INSERT INTO devices (agent, device, class, online, last_seen, state, updated_at) "
        "VALUES (?, 'band-7', 'wristband', NULL, ?, ?, ?) ON CONFLICT (agent, device) DO UPDATE "
        "SET state = excluded.state",
        (agent, format_time(at), json.dumps(state), format_time(at)),
    )
    conn.close()


def _alarms(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT kind, state, count, person, booking, station, band FROM alarms ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _run(db: Path, now: datetime) -> None:
    derive(db, DEFAULT_SEVERITY, 60.0, now=now, presence_policy=POLICY)


def test_a_band_alarm_names_who_wore_the_band_when_it_was_read(db: Path) -> None:
    bound = T0 + timedelta(minutes=1)
    _bind(db, "band-7", bound, until=T0 + timedelta(minutes=30))
    _event(db, 1, "strap_opened", {"event_seq": 1}, bound - timedelta(seconds=1))  # not yet on
    _event(db, 2, "battery_low", {"percent": 9}, bound + timedelta(minutes=2))
    _heard(db, "floor-2", "int-2", -50.0, bound + timedelta(minutes=2))
    _run(db, bound + timedelta(minutes=2, seconds=1))
    alarms = _alarms(db)
    assert ("strap_opened", "open", 1, None, None, "centre", "band-7") in alarms
    assert ("battery_low", "open", 1, "S1", BOOKING, "s9", "band-7") in alarms


def test_a_person_heard_in_another_room_during_the_session_is_one_alarm_until_back(
    db: Path,
) -> None:
    start = T0 + timedelta(minutes=1)
    _bind(db, "band-7", start)
    # The corridor scanner hears it weaker than the wrong room's: the room wins.
    _heard(db, "corridor", "corridor", -85.0, start + timedelta(minutes=5))
    _heard(db, "floor-2", "int-1", -48.0, start + timedelta(minutes=5))
    for second in (1, 2, 3):
        _run(db, start + timedelta(minutes=5, seconds=second))
    assert _alarms(db) == [("wrong_room", "open", 1, "S1", BOOKING, "s9", "band-7")]
    conn = sqlite3.connect(db)
    body = json.loads(conn.execute("SELECT body FROM alarms").fetchone()[0])
    conn.close()
    assert (body["planned_room"], body["heard_room"], body["heard_by"]) == (
        "int-2",
        "int-1",
        "floor-2",
    )

    _heard(db, "floor-2", "int-2", -45.0, start + timedelta(minutes=6))
    _run(db, start + timedelta(minutes=6, seconds=1))
    assert _alarms(db) == [("wrong_room", "cleared", 1, "S1", BOOKING, "s9", "band-7")]
    # Each change of room went to the stream once, for the person's station.
    assert _moves(db) == [("s9", "S1", "int-1"), ("s9", "S1", "int-2")]
    # Silence: placed nowhere, told once more.
    _run(db, start + timedelta(minutes=7))
    _run(db, start + timedelta(minutes=8))
    assert _moves(db)[-1] == ("s9", "S1", None)
    assert len(_moves(db)) == 3


def _moves(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT station, json_extract(body, '$.person'), json_extract(body, '$.room') "
            "FROM feed WHERE kind = 'person_room' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_a_band_nobody_hears_is_an_alarm_cleared_when_heard_or_taken_off(db: Path) -> None:
    bound = T0 + timedelta(minutes=1)
    _bind(db, "band-7", bound)
    _run(db, bound + POLICY.window)  # within the window: nothing yet
    assert _alarms(db) == []
    _run(db, bound + POLICY.window + timedelta(seconds=1))
    _run(db, bound + POLICY.window + timedelta(seconds=2))
    assert _alarms(db) == [("person_not_heard", "open", 1, "S1", BOOKING, "s9", "band-7")]

    heard = bound + timedelta(minutes=1)
    _heard(db, "floor-2", "int-2", -50.0, heard)
    _run(db, heard + timedelta(seconds=1))
    assert _alarms(db)[-1][:2] == ("person_not_heard", "cleared")

    # Silent again, then the band comes off: the second alarm ends with the binding.
    _run(db, heard + POLICY.window + timedelta(seconds=1))
    assert [a[:2] for a in _alarms(db)] == [
        ("person_not_heard", "cleared"),
        ("person_not_heard", "open"),
    ]
    conn = connect(db)
    conn.execute("UPDATE band_bindings SET unbound_at = ?", (format_time(heard),))
    conn.close()
    _run(db, heard + POLICY.window + timedelta(seconds=2))
    _run(db, heard + POLICY.window + timedelta(seconds=3))
    assert [a[:2] for a in _alarms(db)] == [
        ("person_not_heard", "cleared"),
        ("person_not_heard", "cleared"),
    ]


def test_no_session_no_wrong_room(db: Path) -> None:
    conn = connect(db)
    conn.execute("UPDATE booking_persons SET session_ended_at = ?", (format_time(T0),))
    conn.close()
    _bind(db, "band-7", T0)
    _heard(db, "floor-2", "int-1", -40.0, T0 + timedelta(minutes=2))
    _run(db, T0 + timedelta(minutes=2, seconds=1))
    assert _alarms(db) == []
