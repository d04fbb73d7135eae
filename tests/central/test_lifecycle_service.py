"""Random lifecycle steps through the planning service on a real SQLite file: after every step,
taken or refused, the independent checker passes the plan and the store holds the plan in memory."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from central.api.booking_models import BookingIn
from central.planning import ErrorKind, PlanningError, PlanningService
from central.store import connect
from scheduling.lifecycle import BookingStatus
from scheduling.model import PlanRoom, from_minute
from scheduling.rooms import Equipment, RoomType
from tests.central.test_planning_service import memory_plan, service_with_rooms, stored_plan

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ROOMS = [
    PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING})),
    PlanRoom("Q-1", RoomType.INQUIRY, 1, frozenset({Equipment.RECORDING})),
    PlanRoom("W-1", RoomType.WAITING, 4, frozenset()),
]
PERSONS = ("S", "W")
STEPS = ("arrived", "verified", "entered", "start", "end", "exit", "cancel", "no_show")


def request(case: str, walk_in: bool) -> BookingIn:
    return BookingIn.model_validate(
        {
            "station": "s1",
            "case_id": case,
            "case_type": "theft",
            "officers": 4,
            "expected_arrival": (T0 + timedelta(minutes=30)).isoformat(),
            "session_minutes": 45,
            "walk_in": walk_in,
            "waitlist": True,
            "persons": [
                {
                    "id": "S",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": T0.isoformat(),
                    "legal_basis": "criminal_summons",
                },
                {
                    "id": "W",
                    "role": "witness",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": T0.isoformat(),
                    "legal_basis": "voluntary",
                },
            ],
        }
    )


def code_of(db: Path, booking: str) -> str:
    conn = connect(db)
    try:
        return str(conn.execute("SELECT code FROM bookings WHERE id = ?", (booking,)).fetchone()[0])
    finally:
        conn.close()


def take(service: PlanningService, booking: str, step: str, person: str, now: datetime) -> None:
    match step:
        case "arrived":
            service.arrived(booking, now)
        case "verified":
            service.verified(booking, code_of(service.db, booking), now)
        case "entered":
            service.entered(booking, now)
        case "start":
            service.session_started(booking, person, now)
        case "end":
            service.session_ended(booking, person, now)
        case "exit":
            service.exited(booking, person, now)
        case "cancel":
            service.close(booking, BookingStatus.CANCELLED, now)
        case _:
            service.close(booking, BookingStatus.NO_SHOW, now)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.booleans(), min_size=2, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(STEPS),
            st.sampled_from(PERSONS),
            st.integers(0, 40),
        ),
        max_size=30,
    ),
)
# A session that ends later than planned, before the overrun job extended it: the next
# session in its room was planned from its planned end, and must move.
@example(
    [True, False],
    [(0, "entered", "S", 0), (0, "start", "S", 0), (1, "arrived", "S", 29), (0, "end", "S", 17)],
)
def test_the_checker_passes_after_every_lifecycle_step(
    walk_ins: list[bool], steps: list[tuple[int, str, str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "central.sqlite3"
        service = service_with_rooms(db, ROOMS)
        bookings = [
            service.create(request(f"C-{i}", walk_in).to_record(), "s1", "test", T0)
            for i, walk_in in enumerate(walk_ins)
        ]
        now = T0
        for index, step, person, minutes in steps:
            now += timedelta(minutes=minutes)
            booking = bookings[index % len(bookings)]
            kind = None
            try:
                take(service, booking, step, person, now)
            except PlanningError as exc:
                kind = exc.kind
            assert kind in (None, ErrorKind.CONFLICT, ErrorKind.NOT_FOUND)
            assert service.check() == [], (step, booking, person)
            assert stored_plan(db) == memory_plan(service)
        # What the store holds rebuilds the same plan.
        plan = memory_plan(service)
        service.load()
        assert memory_plan(service) == plan


def test_an_exit_stops_the_clock_and_keeps_its_last_level(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, ROOMS)
    booking = service.create(request("C-1", True).to_record(), "s1", "test", T0)
    service.entered(booking, T0 + timedelta(minutes=30))
    assert {e.person for e in service.custody(T0 + timedelta(hours=1))} == {"S"}
    service.session_started(booking, "S", T0 + timedelta(hours=1))
    # Seven of twelve hours gone: yellow when the suspect leaves, mid-session.
    out = T0 + timedelta(hours=7)
    service.exited(booking, "S", out)
    assert service.custody(out) == []
    conn = connect(db)
    try:
        level, ended = conn.execute(
            "SELECT level, session_ended_at FROM booking_persons WHERE booking = ? AND person = ?",
            (booking, "S"),
        ).fetchone()
    finally:
        conn.close()
    assert level == "yellow"
    assert datetime.fromisoformat(ended) == out
    session = service.planner.session_of((booking, "S"))
    assert session is not None
    assert from_minute(session.end) == out  # the room is free from the exit
    service.load()
    assert service.custody(out) == []


def test_an_early_end_moves_the_next_session_up_and_tells_its_station(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, ROOMS)
    first = service.create(request("C-1", True).to_record(), "s1", "test", T0)
    # Ready when the first is (both walk in): the second waits behind it. Ready earlier, it
    # would take the first's slot at booking time (the insertion).
    second = service.create(
        request("C-2", True).model_copy(update={"station": "s2"}).to_record(), "s2", "test", T0
    )
    ran = service.planner.session_of((first, "S"))
    waits = service.planner.session_of((second, "S"))
    assert ran is not None
    assert waits is not None
    assert (waits.room, waits.start) == (ran.room, ran.end)  # one interrogation room
    witness = service.planner.session_of((second, "W"))
    service.entered(first, from_minute(ran.start) - timedelta(minutes=5))
    service.session_started(first, "S", from_minute(ran.start))
    ended = from_minute(ran.start) + timedelta(minutes=15)
    service.session_ended(first, "S", ended)
    moved = service.planner.session_of((second, "S"))
    assert moved is not None
    assert from_minute(moved.start) == ended  # the room needs no cleaning
    assert moved.end - moved.start == waits.end - waits.start
    # The witness's inquiry room was not freed: the witness stays where planned (S5).
    assert service.planner.session_of((second, "W")) == witness
    assert service.check() == []
    assert stored_plan(db) == memory_plan(service)
    conn = connect(db)
    try:
        told = [
            (r[0], json.loads(r[1]))
            for r in conn.execute(
                "SELECT station, body FROM plan_events WHERE booking = ? AND kind = 'plan_changed'",
                (second,),
            )
        ]
    finally:
        conn.close()
    assert [(station, body["cause"]) for station, body in told] == [("s2", "session_ended")]
    assert [p["person"] for p in told[0][1]["persons"]] == ["S"]
