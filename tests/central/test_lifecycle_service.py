"""Random lifecycle steps through the planning service on a real SQLite file: after every step,
taken or refused, the independent checker passes the plan and the store holds the plan in memory."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
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
