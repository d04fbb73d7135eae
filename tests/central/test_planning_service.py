"""The planning service on a real SQLite file: a generated day booked through it, the plan
rebuilt from the store, the improver applied only when the checker agrees."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bench.day_store import store_rooms
from central import plan_upkeep as upkeep
from central.api.booking_models import BookingIn
from central.planning import ErrorKind, PlanningError, PlanningService
from central.store import connect
from monitoring.planning_metrics import PlanningMetrics
from scheduling.checker import check_plan
from scheduling.generator import generate_day
from scheduling.lifecycle import BookingStatus
from scheduling.model import from_minute


def service_with_rooms(db: Path, rooms: list) -> PlanningService:  # type: ignore[type-arg]
    store_rooms(db, rooms)
    service = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    service.load()
    return service


def stored_plan(db: Path) -> set[tuple[str, str, str, str, str, str]]:
    """The stored plan of the open bookings (an exited booking's rows stay as history)."""
    conn = connect(db)
    try:
        return {
            tuple(r)
            for r in conn.execute(
                "SELECT a.booking, a.person, a.kind, a.room, a.start, a.end FROM assignments a "
                "JOIN bookings b ON b.id = a.booking WHERE b.closed_at IS NULL"
            )
        }
    finally:
        conn.close()


def memory_plan(service: PlanningService) -> set[tuple[str, str, str, str, str, str]]:
    from central.planning import iso

    return {
        (a.booking, a.person, a.kind.value, a.room, iso(a.start), iso(a.end))
        for a in service.planner.all_assignments()
    }


def test_a_generated_day_through_the_service_survives_a_restart(tmp_path: Path) -> None:
    day = generate_day(100, 16, seed=4)
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, day.rooms)
    opening = from_minute(day.day_start + 6 * 60)
    created = refused = 0
    for booking in day.bookings:
        request = BookingIn.from_booking(booking)
        try:
            service.create(
                request.model_copy(update={"waitlist": True}).to_record(),
                booking.station,
                "test",
                opening,
            )
            created += 1
        except PlanningError:
            refused += 1
    assert created == len(day.bookings)
    planner = service.planner
    assert (
        check_plan(planner.rooms, planner.bookings, planner.all_assignments(), planner.policy) == []
    )
    assert stored_plan(db) == memory_plan(service)
    unassigned = dict(planner.unassigned)

    again = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    again.load()
    assert memory_plan(again) == memory_plan(service)
    assert set(again.planner.unassigned) == set(unassigned)

    moved = upkeep.improve_plan(again, 3.0, 24 * 60, opening)
    assert moved > 0
    assert stored_plan(db) == memory_plan(again)
    planner = again.planner
    assert (
        check_plan(planner.rooms, planner.bookings, planner.all_assignments(), planner.policy) == []
    )
    conn = connect(db)
    causes = [
        json.loads(r[0])["cause"]
        for r in conn.execute(
            "SELECT body FROM plan_events WHERE kind IN ('plan_changed', 'unassigned')"
        )
    ]
    conn.close()
    assert "improver" in causes


def test_a_refused_booking_leaves_no_trace(tmp_path: Path) -> None:
    day = generate_day(10, 4, seed=1)
    db = tmp_path / "central.sqlite3"
    service = service_with_rooms(db, day.rooms)
    booking = day.bookings[0]
    request = BookingIn.from_booking(booking).model_copy(update={"officers": 1})
    with pytest.raises(PlanningError) as refused:
        service.create(request.to_record(), "s1", "test", from_minute(day.day_start))
    assert refused.value.kind is ErrorKind.CONFLICT
    assert "H6" in refused.value.message
    assert stored_plan(db) == set()
    assert service.planner.bookings == {}


def test_an_overrunning_session_pushes_the_next_and_old_bookings_are_purged(tmp_path: Path) -> None:
    from datetime import timedelta

    from scheduling.model import PlanRoom
    from scheduling.rooms import Equipment, RoomType

    db = tmp_path / "central.sqlite3"
    rooms = [
        PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING})),
        PlanRoom("W-1", RoomType.WAITING, 4, frozenset()),
    ]
    service = service_with_rooms(db, rooms)
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def one(case: str, station: str) -> BookingIn:
        return BookingIn.model_validate(
            {
                "station": station,
                "case_id": case,
                "case_type": "theft",
                "officers": 2,
                "expected_arrival": start.isoformat(),
                "session_minutes": 60,
                "persons": [
                    {
                        "id": "X",
                        "role": "suspect",
                        "minor": False,
                        "sex": "male",
                        "brought_in_at": (start - timedelta(hours=1)).isoformat(),
                        "legal_basis": "criminal_summons_serious",
                    }
                ],
            }
        )

    first = service.create(one("A", "s1").to_record(), "s1", "test", start)
    second = service.create(one("B", "s2").to_record(), "s2", "test", start)
    planned = service.planner.session_of((second, "X"))
    assert planned is not None
    service.arrived(first, start)
    service.verified(first, _code(db, first), start)
    with pytest.raises(PlanningError) as early:
        service.session_started(first, "X", start + timedelta(minutes=5))
    assert early.value.kind is ErrorKind.CONFLICT
    assert early.value.state == "verified"
    service.entered(first, start + timedelta(minutes=5))
    service.session_started(first, "X", start + timedelta(minutes=10))
    # Still running 20 minutes after its planned end.
    late = start + timedelta(minutes=90)
    assert upkeep.handle_overruns(service, 15, late) == [f"{first}/X"]
    moved = service.planner.session_of((second, "X"))
    assert moved is not None
    assert moved.start >= planned.start + 25
    conn = connect(db)
    told = [
        (r[0], json.loads(r[1])["cause"])
        for r in conn.execute("SELECT station, body FROM plan_events WHERE kind = 'plan_changed'")
    ]
    conn.close()
    assert ("s2", "overrun") in told
    assert service.check() == []

    service.close(second, BookingStatus.CANCELLED, late)
    assert upkeep.purge(service, 30, late + timedelta(days=29)) == 0
    assert upkeep.purge(service, 30, late + timedelta(days=31)) == 1
    conn = connect(db)
    left = {r[0] for r in conn.execute("SELECT id FROM bookings")}
    conn.close()
    assert left == {first}


def _code(db: Path, booking_id: str) -> str:
    conn = connect(db)
    try:
        return str(
            conn.execute("SELECT code FROM bookings WHERE id = ?", (booking_id,)).fetchone()[0]
        )
    finally:
        conn.close()


def test_a_waitlisted_booking_the_improver_places_whole_is_confirmed(tmp_path: Path) -> None:
    from scheduling.model import PlanRoom
    from scheduling.rooms import Equipment, RoomState, RoomType

    db = tmp_path / "central.sqlite3"
    rooms = [
        PlanRoom("I-1", RoomType.INTERROGATION, 1, frozenset({Equipment.RECORDING})),
        PlanRoom("W-1", RoomType.WAITING, 4, frozenset()),
    ]
    service = service_with_rooms(db, rooms)
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    service.room_changed(
        "I-1", RoomType.INTERROGATION, 1, [Equipment.RECORDING], RoomState.OUT_OF_ORDER, start
    )
    request = BookingIn.model_validate(
        {
            "station": "s1",
            "case_id": "A",
            "case_type": "theft",
            "officers": 2,
            "expected_arrival": start.isoformat(),
            "session_minutes": 60,
            "waitlist": True,
            "persons": [
                {
                    "id": "X",
                    "role": "suspect",
                    "minor": False,
                    "sex": "male",
                    "brought_in_at": start.isoformat(),
                    "legal_basis": "criminal_summons_serious",
                }
            ],
        }
    )
    booking = service.create(request.to_record(), "s1", "test", start)
    assert _status(db, booking) == BookingStatus.WAITLISTED
    # Back in service: nothing retries the waitlist then, the improver's pass places them.
    service.room_changed(
        "I-1", RoomType.INTERROGATION, 1, [Equipment.RECORDING], RoomState.IN_SERVICE, start
    )
    assert (booking, "X") in service.planner.unassigned

    assert service.improve(2.0, 24 * 60, start) > 0

    assert service.planner.session_of((booking, "X")) is not None
    assert _status(db, booking) == BookingStatus.CONFIRMED
    assert stored_plan(db) == memory_plan(service)
    assert service.check() == []


def _status(db: Path, booking_id: str) -> str:
    conn = connect(db)
    try:
        return str(
            conn.execute("SELECT status FROM bookings WHERE id = ?", (booking_id,)).fetchone()[0]
        )
    finally:
        conn.close()
