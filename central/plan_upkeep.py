"""The plan's upkeep, run by the planning jobs: no-shows, overruns, custody clocks, the
improver, the periodic check, retention, escort vans. Each job is one call to the planning
service's public methods (which read what they act on from the store or the live plan, so
nothing depends on a job having run before a restart), given the time it runs at."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from central.planning import PlanningError, PlanningService
from central.van_eta import VanRules, van_position
from edge_agent.wire import format_time
from scheduling.custody import Level

log = logging.getLogger(__name__)

# A plan violation still found by the periodic check is recorded again (its alarm counted once
# more, or opened again once acknowledged) at most this often; the check runs every minute.
VIOLATION_REPEAT = timedelta(minutes=15)


def release_no_shows(
    service: PlanningService, grace_minutes: int, now: datetime | None = None
) -> list[str]:
    """Booked units not arrived ``grace_minutes`` after their expected arrival are released;
    their rooms go to the waitlist."""
    return service.release_no_shows(grace_minutes, now or datetime.now(UTC))


def handle_overruns(
    service: PlanningService, step_minutes: int = 15, now: datetime | None = None
) -> list[str]:
    """Sessions running past their planned end are extended by ``step_minutes`` from now;
    what they collide with is planned again and the stations told."""
    return service.extend_overruns(step_minutes, now or datetime.now(UTC))


def purge(service: PlanningService, retention_days: int, now: datetime | None = None) -> int:
    """Delete bookings closed more than ``retention_days`` ago, with their rows."""
    return service.purge((now or datetime.now(UTC)) - timedelta(days=retention_days))


def improve_plan(
    service: PlanningService,
    budget_seconds: float,
    window_minutes: int,
    now: datetime | None = None,
) -> int:
    """The CP-SAT improver over the next ``window_minutes``; returns the persons moved."""
    return service.improve(budget_seconds, window_minutes, now or datetime.now(UTC))


def check_now(
    service: PlanningService,
    repeat_after: timedelta = VIOLATION_REPEAT,
    now: datetime | None = None,
) -> int:
    """The periodic independent check of the live plan; returns the violations found. Each is
    recorded as a ``plan_violation`` plan event (an alarm), again only after ``repeat_after``
    while it stays."""
    return service.check_and_record(repeat_after, now)


def escalate_clocks(
    service: PlanningService, now: datetime | None = None
) -> list[tuple[str, str, Level]]:
    """Recompute every clock; record level changes as events; re-plan red ones first."""
    return service.escalate(now or datetime.now(UTC))


def track_vans(
    service: PlanningService, rules: VanRules, late_minutes: int, now: datetime | None = None
) -> list[str]:
    """Booked units whose van is inside the centre's geofence arrive; units whose van will be
    more than ``late_minutes`` later than planned are planned from its ETA."""
    moment = now or datetime.now(UTC)
    done = []
    for van in service.van_states():
        position = van_position(van.fix, van.fix_time, moment, rules)
        if position is None:
            continue
        try:
            if position.arrived:
                service.arrived(van.booking, min(van.fix_time, moment))
                done.append(f"{van.booking} arrived")
            elif position.eta > van.planned + timedelta(minutes=late_minutes) and service.expect(
                van.booking, position.eta, moment
            ):
                done.append(f"{van.booking} late, ETA {format_time(position.eta)}")
        except PlanningError as exc:
            log.info("van of booking %s: %s", van.booking, exc.message)
    return done
