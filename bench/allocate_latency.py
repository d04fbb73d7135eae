"""Booking answer latency through the planning service, accepted and refused, with and without
the waitlist: what a station waits for, minus HTTP.

Each booking of a generated day goes through ``PlanningService.create`` on a real SQLite file
(request checks, allocator, store commit). With the waitlist off, a booking that cannot be
placed whole is refused (409) after the search for a later arrival that would fit; with it on,
it is stored as waitlisted. Both are timed from the call to the answer.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.day_store import store_rooms
from central.api.booking_models import BookingIn
from central.planning import PlanningError, PlanningService
from monitoring.planning_metrics import PlanningMetrics
from scheduling.generator import Day
from scheduling.model import from_minute


@dataclass(slots=True)
class Latencies:
    """Seconds per answer, by kind."""

    accepted: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def extend(self, other: Latencies) -> None:
        self.accepted.extend(other.accepted)
        self.refused.extend(other.refused)


def service_latencies(day: Day, waitlist: bool) -> Latencies:
    """Every booking of ``day``, in booking order, through a fresh planning service, booked at
    06:00 of the day. A waitlisted booking counts as refused: its station did not get rooms."""
    found = Latencies()
    with tempfile.TemporaryDirectory() as workdir:
        db = Path(workdir) / "central.sqlite3"
        store_rooms(db, day.rooms)
        service = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
        service.load()
        opening = from_minute(day.day_start + 6 * 60)
        for booking in day.bookings:
            request = BookingIn.from_booking(booking).model_copy(update={"waitlist": waitlist})
            record = request.to_record()
            started = time.perf_counter()
            try:
                booking_id = service.create(record, booking.station, "bench", opening)
            except PlanningError:
                found.refused.append(time.perf_counter() - started)
                continue
            elapsed = time.perf_counter() - started
            placed = all(
                (booking_id, person.id) not in service.planner.unassigned
                for person in booking.persons
            )
            (found.accepted if placed else found.refused).append(elapsed)
    return found
