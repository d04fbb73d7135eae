"""Alarms from the plan: the pure rules, the deriver over a real store file, and the planning
service's jobs writing the plan events they come from."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from central import alarms_store
from central import plan_upkeep as upkeep
from central.alarm_deriver import derive
from central.alarm_rules import DEFAULT_SEVERITY, LATCHED, PLAN_KINDS, Effect
from central.api.booking_models import BookingIn
from central.audit import Actor
from central.plan_alarm_rules import (
    PLAN_EVENT_KINDS,
    PlanEvent,
    custody_subject,
    plan_event_actions,
    violation_subject,
)
from central.plan_store import event as event_statement
from central.store import MIGRATIONS, connect, migrate
from edge_agent.wire import format_time
from scheduling.model import PlanRoom
from scheduling.rooms import Equipment, RoomType
from tests.central.test_planning_service import service_with_rooms

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 16, 0, tzinfo=SHANGHAI)
DUTY = Actor("duty", "centre", "127.0.0.1")


def _level(level: str, booking: str = "bk-1", person: str = "X") -> PlanEvent:
    return PlanEvent("custody_level", booking, person, {"person": person, "level": level})


# --- the pure rules ---------------------------------------------------------------------------


def test_red_raises_black_raises_and_ends_red_and_a_lower_level_ends_red() -> None:
    subject = custody_subject("bk-1", "X")
    [red] = plan_event_actions(_level("red"))
    assert (red.effect, red.kinds, red.subject) == (Effect.RAISE, ("custody_red",), subject)
    black, ended = plan_event_actions(_level("black"))
    assert (black.effect, black.kinds, black.subject) == (Effect.RAISE, ("custody_black",), subject)
    assert (ended.effect, ended.kinds, ended.subject) == (Effect.CLEAR, ("custody_red",), subject)
    for lower in ("green", "yellow", "orange"):
        [back] = plan_event_actions(_level(lower))
        assert (back.effect, back.kinds) == (Effect.CLEAR, ("custody_red",))
    # Another person's clock is another subject.
    assert plan_event_actions(_level("red", person="Y"))[0].subject != subject


def test_an_exit_ends_red_but_not_black_and_a_closed_booking_ends_its_persons_red() -> None:
    [exited] = plan_event_actions(PlanEvent("person_exited", "bk-1", "X", {"person": "X"}))
    assert (exited.effect, exited.kinds) == (Effect.CLEAR, ("custody_red",))
    assert "custody_black" in LATCHED  # only an acknowledgement ends it
    for closing in ("cancelled", "no_show"):
        actions = plan_event_actions(PlanEvent(closing, "bk-1", None, {}, ("X", "Y")))
        assert {(a.effect, a.kinds, a.subject) for a in actions} == {
            (Effect.CLEAR, ("van_late",), "bk-1"),
            (Effect.CLEAR, ("custody_red",), custody_subject("bk-1", "X")),
            (Effect.CLEAR, ("custody_red",), custody_subject("bk-1", "Y")),
        }


def test_a_late_van_is_one_subject_per_booking_until_it_arrives() -> None:
    [late] = plan_event_actions(PlanEvent("van_late", "bk-1", None, {"minutes_late": 20}))
    [again] = plan_event_actions(PlanEvent("van_late", "bk-1", None, {"minutes_late": 40}))
    [arrived] = plan_event_actions(PlanEvent("arrived", "bk-1", None, {}))
    assert late == again
    assert (late.effect, late.kinds, late.subject) == (Effect.RAISE, ("van_late",), "bk-1")
    assert (arrived.effect, arrived.kinds, arrived.subject) == (
        Effect.CLEAR,
        ("van_late",),
        "bk-1",
    )


@given(st.text(max_size=5), st.text(max_size=40), st.text(max_size=5), st.text(max_size=40))
def test_the_same_violation_is_the_same_subject_and_another_is_another(
    rule: str, message: str, other_rule: str, other_message: str
) -> None:
    event = PlanEvent("plan_violation", None, None, {"rule": rule, "message": message})
    [raised] = plan_event_actions(event)
    assert raised.kinds == ("plan_violation",)
    assert raised.subject == violation_subject(rule, message)
    if (rule, message) != (other_rule, other_message):
        assert violation_subject(rule, message) != violation_subject(other_rule, other_message)


plan_events = st.builds(
    PlanEvent,
    kind=st.sampled_from([*PLAN_EVENT_KINDS, "plan_changed", "unassigned", "x"]),
    booking=st.none() | st.sampled_from(["bk-1", "bk-2"]),
    person=st.none() | st.sampled_from(["X", "Y"]),
    body=st.one_of(
        st.fixed_dictionaries(
            {"level": st.sampled_from(["green", "red", "black", "purple", 3, None])}
        ),
        st.fixed_dictionaries({"rule": st.text(max_size=3), "message": st.text(max_size=10)}),
        st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=3),
    ),
    persons=st.lists(st.sampled_from(["X", "Y", "Z"]), unique=True).map(tuple),
)


@given(plan_events)
def test_every_plan_event_has_one_answer_with_one_raise_at_most(event: PlanEvent) -> None:
    actions = plan_event_actions(event)
    assert actions == plan_event_actions(event)
    assert sum(a.effect is Effect.RAISE for a in actions) <= 1
    for action in actions:
        assert set(action.kinds) <= PLAN_KINDS
        assert action.device is None
        assert action.band is None
    # The deriver keys each clear by its subject: two clears of one event never share one.
    clears = [a.subject for a in actions if a.effect is Effect.CLEAR]
    assert len(clears) == len(set(clears))
    if event.kind not in PLAN_EVENT_KINDS:
        assert actions == ()


# --- the deriver over a store file ------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "central.sqlite3"
    migrate(path)
    return path


def _plan_event(
    db: Path,
    at: datetime,
    kind: str,
    booking: str | None,
    body: dict[str, Any],
    person: str | None = None,
    station: str | None = "s1",
) -> None:
    # The statement the planning service and its jobs write with.
    statement, args = event_statement(format_time(at), kind, station, booking, body, person)
    conn = connect(db)
    conn.execute(statement, args)
    conn.close()


def _clock(db: Path, minutes: int, level: str, person: str = "X") -> None:
    at = T0 + timedelta(minutes=minutes)
    _plan_event(db, at, "custody_level", "bk-1", {"person": person, "level": level}, person)


def _alarms(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT kind, state, count, station, booking, person, agent, source, cleared_at "
            "FROM alarms ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _short(db: Path) -> list[tuple[Any, ...]]:
    return [(a[0], a[1], a[2]) for a in _alarms(db)]


def _run(db: Path, minutes: int = 60) -> None:
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(minutes=minutes))


def _ack(db: Path, alarm_id: int) -> None:
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    alarms_store.acknowledge(conn, alarm_id, DUTY, "seen", T0)
    conn.execute("COMMIT")
    conn.close()


def _reset_cursor(db: Path) -> None:
    conn = connect(db)
    conn.execute("DELETE FROM alarm_cursors WHERE name = 'plan_events'")
    conn.close()


def test_a_red_clock_raises_once_naming_booking_and_person_and_a_rerun_changes_nothing(
    db: Path,
) -> None:
    _clock(db, 0, "yellow")
    _clock(db, 10, "red")
    _run(db)
    expected = [
        ("custody_red", "open", 1, "s1", "bk-1", "X", "", "plan_event:2", None),
    ]
    assert _alarms(db) == expected
    _run(db)
    _reset_cursor(db)
    _run(db)
    assert _alarms(db) == expected


def test_black_ends_red_and_stays_through_the_exit_until_acknowledged(db: Path) -> None:
    _clock(db, 0, "red")
    _clock(db, 60, "black")
    _run(db, 61)
    assert _short(db) == [("custody_red", "cleared", 1), ("custody_black", "open", 1)]
    [red, _black] = _alarms(db)
    assert red[-1] == format_time(T0 + timedelta(minutes=60))
    _plan_event(db, T0 + timedelta(minutes=70), "person_exited", "bk-1", {"person": "X"}, "X")
    _run(db, 71)
    assert _short(db) == [("custody_red", "cleared", 1), ("custody_black", "open", 1)]
    _ack(db, 2)
    assert _short(db) == [("custody_red", "cleared", 1), ("custody_black", "acknowledged", 1)]


def test_an_exit_or_a_lower_level_ends_red_and_red_again_is_a_new_alarm(db: Path) -> None:
    _clock(db, 0, "red")
    _clock(db, 5, "orange")  # re-planned inside the limit
    _clock(db, 10, "red")
    _run(db, 11)
    assert _short(db) == [("custody_red", "cleared", 1), ("custody_red", "open", 1)]
    # Acknowledged, a red clock stays until its condition ends: here, the person's exit.
    _ack(db, 2)
    _plan_event(db, T0 + timedelta(minutes=20), "person_exited", "bk-1", {"person": "X"}, "X")
    _run(db, 21)
    assert _short(db) == [("custody_red", "cleared", 1), ("custody_red", "cleared", 1)]


def test_a_cancelled_booking_ends_its_late_van_and_its_persons_red_clocks(db: Path) -> None:
    conn = connect(db)
    conn.executemany(
        "INSERT INTO booking_persons (booking, person) VALUES ('bk-1', ?)", [("X",), ("Y",)]
    )
    conn.close()
    _plan_event(db, T0, "van_late", "bk-1", {"van": "van-7", "minutes_late": 20})
    _clock(db, 1, "red", "X")
    _clock(db, 2, "red", "Y")
    _plan_event(db, T0 + timedelta(minutes=3), "van_late", "bk-1", {"minutes_late": 40})
    _run(db, 4)
    assert _short(db) == [
        ("van_late", "open", 2),
        ("custody_red", "open", 1),
        ("custody_red", "open", 1),
    ]
    _plan_event(db, T0 + timedelta(minutes=5), "cancelled", "bk-1", {})
    _run(db, 6)
    assert {a[1] for a in _alarms(db)} == {"cleared"}
    _reset_cursor(db)
    _run(db, 7)
    assert [a[1:3] for a in _alarms(db)] == [("cleared", 2), ("cleared", 1), ("cleared", 1)]


def test_a_violation_found_again_is_a_repeat_and_after_its_acknowledgement_a_new_alarm(
    db: Path,
) -> None:
    body = {"rule": "H1", "message": "I-1: ('bk-1', 'X') and ('bk-2', 'Y') overlap"}
    _plan_event(db, T0, "plan_violation", None, body, station=None)
    _plan_event(db, T0 + timedelta(minutes=1), "plan_violation", None, body, station=None)
    _plan_event(db, T0, "plan_violation", None, {**body, "message": "another"}, station=None)
    _run(db)
    assert _short(db) == [("plan_violation", "open", 2), ("plan_violation", "open", 1)]
    assert {a[3] for a in _alarms(db)} == {None}  # centre-wide: no station's
    _ack(db, 1)
    _plan_event(db, T0 + timedelta(minutes=2), "plan_violation", None, body, station=None)
    _run(db)
    assert _short(db) == [
        ("plan_violation", "acknowledged", 2),
        ("plan_violation", "open", 1),
        ("plan_violation", "open", 1),
    ]


def test_the_plans_alarms_go_into_the_feed_for_the_centre_not_for_ops(db: Path) -> None:
    _clock(db, 0, "red")
    _run(db)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT kind, station, audience FROM feed WHERE kind LIKE 'alarm_%'"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("alarm_raised", "s1", "centre")]


def test_a_store_brought_forward_raises_nothing_for_its_plan_history(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = connect(path)
    old = sqlite_utils.Database(conn)
    before = [step.__name__ for step in MIGRATIONS].index("_v10")
    for version, step in enumerate(MIGRATIONS[:before], start=1):
        step(old)
        conn.execute(f"PRAGMA user_version={version}")
    conn.close()
    _clock(path, 0, "red")
    migrate(path)
    migrate(path)  # the migration of the cursor is safe to run again
    _run(path)
    assert _alarms(path) == []
    _clock(path, 1, "red", "Y")
    _run(path)
    assert [(a[0], a[5], a[7]) for a in _alarms(path)] == [("custody_red", "Y", "plan_event:2")]


# --- the planning service writes what the alarms come from ------------------------------------

ROOM = PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING}))


def _suspect_booking(arrival: datetime, held: timedelta, **extra: Any) -> BookingIn:
    return BookingIn.model_validate(
        {
            "case_id": "C1",
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": arrival.isoformat(),
            "session_minutes": 60,
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": (arrival - held).isoformat(),
                    "legal_basis": "criminal_summons",
                }
            ],
            **extra,
        }
    )


def test_a_red_clock_from_the_escalation_job_is_an_alarm_until_the_person_exits(
    tmp_path: Path,
) -> None:
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, [ROOM])
    # 11 h 15 of 12 gone: too late to plan a session (H5), so waitlisted, and the clock red.
    request = _suspect_booking(T0, timedelta(hours=11, minutes=15), waitlist=True, walk_in=True)
    booking = service.create(request.to_record(), "s1", "test", T0)
    changed = upkeep.escalate_clocks(service, T0)
    assert [(b, p, level.value) for b, p, level in changed] == [(booking, "X", "red")]
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0)
    assert [(a[0], a[1], a[3], a[4], a[5]) for a in _alarms(db)] == [
        ("custody_red", "open", "s1", booking, "X")
    ]
    # The next run finds the same level: nothing new.
    assert upkeep.escalate_clocks(service, T0 + timedelta(minutes=1)) == []
    service.entered(booking, T0)  # a walk-in: arrived and entered at once
    service.exited(booking, "X", T0 + timedelta(minutes=5))
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(minutes=5))
    assert _short(db) == [("custody_red", "cleared", 1)]
    conn = connect(db)
    [(body,)] = conn.execute("SELECT body FROM plan_events WHERE kind = 'person_exited'")
    conn.close()
    assert json.loads(body) == {
        "person": "X",
        "exited_at": format_time(T0 + timedelta(minutes=5)),
        "level": "red",
    }


def test_the_periodic_check_records_a_violation_again_only_after_the_repeat_interval(
    tmp_path: Path,
) -> None:
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, [ROOM])
    service.create(_suspect_booking(T0, timedelta(hours=1)).to_record(), "s1", "test", T0)
    assert upkeep.check_now(service, now=T0) == 0
    # The room broken behind the planner's back: the independent checker finds it (H9).
    service.planner.rooms["I-1"] = replace(ROOM, available=False)
    every = timedelta(minutes=15)
    for minute in range(16):
        assert upkeep.check_now(service, every, T0 + timedelta(minutes=minute)) == 1
    conn = connect(db)
    recorded = conn.execute(
        "SELECT at, body FROM plan_events WHERE kind = 'plan_violation' ORDER BY id"
    ).fetchall()
    conn.close()
    assert [at for at, _ in recorded] == [
        format_time(T0),
        format_time(T0 + timedelta(minutes=15)),
    ]
    assert json.loads(recorded[0][1])["rule"] == "H9"
    derive(db, DEFAULT_SEVERITY, 60.0, now=T0 + timedelta(minutes=16))
    assert _short(db) == [("plan_violation", "open", 2)]
