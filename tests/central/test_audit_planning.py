"""The planning service writes its audit rows in the same transaction as the change: a refused
step or a failed store write leaves none, and the centre's own jobs act as ``central``."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from central import audit
from central import plan_upkeep as upkeep
from central.api.booking_models import BookingIn
from central.planning import PlanningError, PlanningService
from central.store import connect, migrate
from monitoring.planning_metrics import PlanningMetrics
from tests.central.test_audit_api import one_suspect_booking

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTOR = audit.Actor(name="officer wang", role="station", source="10.1.2.3")


def _service(db: Path) -> PlanningService:
    migrate(db)
    conn = connect(db)
    try:
        for room_id, kind, equipment in (
            ("I-1", "interrogation", ["recording"]),
            ("W-1", "waiting", []),
        ):
            conn.execute(
                "INSERT INTO rooms (id, type, capacity, equipment, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'in_service', '', '')",
                (room_id, kind, 4 if kind == "waiting" else 1, json.dumps(equipment)),
            )
    finally:
        conn.close()
    service = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    service.load()
    return service


def _logged(db: Path) -> list[tuple[str, str, str]]:
    conn = connect(db, readonly=True)
    try:
        return [(r.action, r.actor, r.source) for r in audit.rows(conn)]
    finally:
        conn.close()


def test_refused_or_failed_changes_leave_no_row(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    service = _service(db)
    now = datetime.now(SHANGHAI)
    body = BookingIn.model_validate(one_suspect_booking(now + timedelta(minutes=30), "C-1", None))
    booking = service.create(body.to_record(), "s1", "station:officer wang", now, actor=ACTOR)
    assert _logged(db) == [("booking.created", "officer wang", "10.1.2.3")]

    with pytest.raises(PlanningError):
        service.verified(booking, "WRONGCODE", now, actor=ACTOR)
    with pytest.raises(PlanningError):
        service.session_started(booking, "P1", now, actor=ACTOR)
    assert len(_logged(db)) == 1

    # The store refuses the step's own write: the audit row goes with it.
    conn = connect(db)
    try:
        conn.execute(
            "CREATE TRIGGER no_arrivals BEFORE UPDATE OF arrived_at ON bookings "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    finally:
        conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="disk says no"):
        service.arrived(booking, now, actor=ACTOR)
    assert len(_logged(db)) == 1


def test_the_no_show_job_acts_as_the_centre(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    service = _service(db)
    now = datetime.now(SHANGHAI)
    body = BookingIn.model_validate(one_suspect_booking(now + timedelta(minutes=5), "C-2", None))
    booking = service.create(body.to_record(), "s1", "station:officer wang", now, actor=ACTOR)
    released = upkeep.release_no_shows(service, 30, now + timedelta(hours=1))
    assert released == [booking]
    assert _logged(db) == [
        ("booking.created", "officer wang", "10.1.2.3"),
        ("booking.no_show", "central", "central"),
    ]
