"""The improver runs soon after the plan changes (one run for a burst of changes), and every
``improve_interval`` otherwise: the timer's rule, the setting, and the planning service with
its real scheduler improving a badly placed booking without waiting for the interval."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from central.api.booking_models import BookingIn
from central.booking_record import BookingChange
from central.improve_timer import ImproveTimer
from central.plan_jobs import start_plan_jobs
from central.planning import PlanningService
from central.settings import CentralSettings
from central.store import connect, migrate
from monitoring.planning_metrics import PlanningMetrics
from scheduling.model import Assignment

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_burst_of_changes_asks_for_one_run_after_the_last() -> None:
    timer = ImproveTimer(10, 300, T0)
    assert timer.changed(at(1)) == at(11)
    assert timer.changed(at(4)) == at(14)
    assert timer.changed(at(9)) == at(19)


def test_changes_never_put_the_idle_run_off() -> None:
    timer = ImproveTimer(10, 300, T0)
    assert timer.changed(at(295)) == at(300)
    timer.started(at(300))
    assert timer.finished(at(302)) is None  # the change was before the run: it saw it
    assert timer.changed(at(305)) == at(315)


def test_a_change_during_a_run_asks_for_the_next_when_it_ends() -> None:
    timer = ImproveTimer(10, 300, T0)
    timer.started(at(20))
    assert timer.changed(at(21)) is None
    assert timer.finished(at(26)) == at(31)
    timer.started(at(31))
    assert timer.changed(at(32)) is None
    # A run longer than the delay: the next starts as soon as it ends.
    assert timer.finished(at(50)) == at(50)


def test_after_change_zero_leaves_the_periodic_run_alone() -> None:
    timer = ImproveTimer(0, 300, T0)
    assert timer.changed(at(1)) is None
    timer.started(at(300))
    assert timer.finished(at(301)) is None


@pytest.mark.parametrize("value", [-1.0, 3601.0])
def test_improve_after_change_is_checked(tmp_path: Path, value: float) -> None:
    with pytest.raises(ValueError, match="improve_after_change"):
        CentralSettings(db=tmp_path / "c.sqlite3", improve_after_change=value)


ROOMS = [
    ("I-1", "interrogation", 1, "[]"),
    ("W-1", "waiting", 4, "[]"),
]


def one_suspect(case: str, arrival: datetime) -> dict[str, Any]:
    return {
        "case_id": case,
        "case_type": "theft",
        "officers": 2,
        "expected_arrival": arrival.isoformat(),
        "session_minutes": 120,
        "persons": [
            {
                "id": "X",
                "role": "suspect",
                "minor": False,
                "sex": "male",
                "brought_in_at": (arrival - timedelta(minutes=30)).isoformat(),
                "legal_basis": "criminal_summons_serious",
            }
        ],
    }


def session(service: PlanningService, booking: str) -> Assignment:
    with service.lock:
        found = service.planner.session_of((booking, "X"))
    assert found is not None
    return found


async def test_a_badly_placed_booking_is_improved_soon_after_it_is_made(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    migrate(db)
    conn = connect(db)
    stamp = datetime.now(UTC).isoformat()
    conn.executemany(
        "INSERT INTO rooms (id, type, capacity, equipment, state, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'in_service', ?, ?)",
        [(*room, stamp, stamp) for room in ROOMS],
    )
    conn.close()
    service = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    service.load()
    settings = CentralSettings(
        db=db,
        plan_interval=0,
        improve_interval=3600,  # the periodic run is an hour away: only a change brings one
        improve_after_change=1,
        improve_budget=1,
    )
    jobs = start_plan_jobs(settings, service)
    try:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # The later unit takes the only room from 3 h 10. The other unit, booked for 8 h, then
        # says it comes in 1 h 30 (2 h sessions): re-planned alone (S5), it no longer fits
        # before the later unit and is planned after it, 3 h 30 of waiting, where questioning it
        # first would keep the later unit waiting 30 minutes.
        late = await asyncio.to_thread(
            service.create,
            BookingIn(**one_suspect("C-late", now + timedelta(hours=3))).to_record(),
            "station-1",
            "test",
        )
        body = one_suspect("C-early", now + timedelta(hours=8))
        body["persons"][0]["brought_in_at"] = (now + timedelta(minutes=60)).isoformat()
        early = await asyncio.to_thread(
            service.create, BookingIn(**body).to_record(), "station-1", "test"
        )
        assert session(service, early).start > session(service, late).start
        await asyncio.to_thread(
            service.update, early, BookingChange(expected_arrival=now + timedelta(minutes=90))
        )
        booked = time.monotonic()
        assert session(service, early).start > session(service, late).start  # as re-planned
        # after_change + budget, and room for a loaded machine.
        limit = settings.improve_after_change + settings.improve_budget + 15
        while session(service, early).start > session(service, late).start:
            assert time.monotonic() - booked < limit, "not improved after the booking"
            await asyncio.sleep(0.05)
        assert session(service, early).end <= session(service, late).start
        job = jobs.get_job("improve")
        assert job is not None
        # The run after the change leaves the next periodic run an interval away.
        assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=50)
    finally:
        jobs.shutdown(wait=False)
