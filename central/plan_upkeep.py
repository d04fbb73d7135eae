"""The plan's upkeep, run by the planning jobs: no-shows, overruns, custody clocks, the
improver, the periodic check, retention. Each reads what it acts on from the store or the live
plan, so nothing depends on a job having run before a restart."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from central.planning import PlanningError, PlanningService, event_statement, iso
from central.store import connect
from central.van_eta import VanRules, van_position
from edge_agent.wire import FIX_KIND, format_time
from scheduling.checker import check_plan
from scheduling.custody import Level
from scheduling.improver import apply as apply_improvement
from scheduling.improver import improve
from scheduling.lifecycle import EXPECTED, BookingStatus
from scheduling.model import from_minute, to_minute

log = logging.getLogger(__name__)

# Which bookings each job looks at; the lifecycle's rules decide what it may do with them.
_EXPECTED = tuple(sorted(status.value for status in EXPECTED))
_CAME = tuple(sorted(status.value for status in BookingStatus if status.arrived))


def release_no_shows(
    service: PlanningService, grace_minutes: int, now: datetime | None = None
) -> list[str]:
    """Booked units not arrived ``grace_minutes`` after their expected arrival are released;
    their rooms go to the waitlist."""
    moment = now or datetime.now(UTC)
    cutoff = format_time(from_minute(to_minute(moment) - grace_minutes))
    conn = connect(service.db, readonly=True)
    try:
        due = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM bookings WHERE status IN (?, ?) AND "
                "arrived_at IS NULL AND expected_arrival < ? ORDER BY expected_arrival",
                (*_EXPECTED, cutoff),
            )
        ]
    finally:
        conn.close()
    released = []
    for booking_id in due:
        try:
            service.close(booking_id, BookingStatus.NO_SHOW, moment)
            released.append(booking_id)
        except PlanningError:
            continue
    return released


def handle_overruns(
    service: PlanningService, step_minutes: int = 15, now: datetime | None = None
) -> list[str]:
    """Sessions running past their planned end are extended by ``step_minutes`` from now;
    what they collide with is planned again and the stations told."""
    moment = now or datetime.now(UTC)
    minute = to_minute(moment)
    conn = connect(service.db, readonly=True)
    try:
        running = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT p.booking, p.person FROM booking_persons p JOIN bookings b "
                "ON b.id = p.booking WHERE p.session_started_at IS NOT NULL AND "
                "p.session_ended_at IS NULL AND b.status IN (?, ?, ?)",
                _CAME,
            )
        ]
    finally:
        conn.close()
    overrunning = []
    with service.change("overrun"):
        for key in running:
            session = service.planner.session_of(key)
            if session is not None and session.end <= minute:
                service.planner.extend_session(key, minute + step_minutes, minute)
                overrunning.append(f"{key[0]}/{key[1]}")
    return overrunning


def purge(service: PlanningService, retention_days: int, now: datetime | None = None) -> int:
    """Delete bookings closed more than ``retention_days`` ago, with their rows."""
    moment = now or datetime.now(UTC)
    cutoff = format_time(moment - timedelta(days=retention_days))
    with service.lock:
        conn = connect(service.db)
        try:
            conn.execute("BEGIN IMMEDIATE")
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM bookings WHERE closed_at IS NOT NULL AND closed_at < ?",
                    (cutoff,),
                )
            ]
            for table, column in (
                ("assignments", "booking"),
                ("booking_persons", "booking"),
                ("bookings", "id"),
            ):
                conn.executemany(
                    f"DELETE FROM {table} WHERE {column} = ?",  # noqa: S608
                    [(booking_id,) for booking_id in old],
                )
            conn.execute("DELETE FROM plan_events WHERE at < ?", (cutoff,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
    return len(old)


def improve_plan(
    service: PlanningService,
    budget_seconds: float,
    window_minutes: int,
    now: datetime | None = None,
) -> int:
    """Run the CP-SAT improver on a copy of the plan, outside the lock; apply the result
    if the plan has not changed meanwhile and the independent checker passes it.
    Returns the number of persons moved."""
    minute = to_minute(now or datetime.now(UTC))
    with service.lock:
        copy = service.planner.copy()
    result = improve(copy, minute, budget_seconds, window_minutes)
    if result is None:
        return 0
    with service.change("improver"):
        if service.planner.version != copy.version:
            log.info("improver result dropped: the plan changed while it ran")
            return 0
        trial = service.planner.copy()
        apply_improvement(trial, result)
        violations = check_plan(
            trial.rooms, trial.bookings, trial.all_assignments(), trial.policy, trial.fixed, minute
        )
        if violations:
            for violation in violations:
                log.error("improver result refused: %s %s", violation.rule, violation.message)
                service.metrics.plan_violations.labels(violation.rule).inc()
            return 0
        apply_improvement(service.planner, result)
    log.info(
        "improver: %d persons moved, cost %d -> %d in %.1f s",
        len(result.changes),
        result.cost_before,
        result.cost_after,
        result.seconds,
    )
    return len(result.changes)


def check_now(service: PlanningService) -> int:
    """The periodic independent check of the live plan; returns the violations found."""
    violations = service.check()
    for violation in violations:
        log.error("plan checker: %s", violation)
        service.metrics.plan_violations.labels(violation.partition(":")[0]).inc()
    return len(violations)


def escalate_clocks(
    service: PlanningService, now: datetime | None = None
) -> list[tuple[str, str, Level]]:
    """Recompute every clock; record level changes as events; re-plan red ones first."""
    moment = now or datetime.now(UTC)
    entries = service.custody(moment)
    conn = connect(service.db, readonly=True)
    try:
        stored = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                "SELECT booking, person, level FROM booking_persons WHERE level IS NOT NULL"
            )
        }
    finally:
        conn.close()
    counts = dict.fromkeys(Level, 0)
    changed: list[tuple[str, str, Level]] = []
    for entry in entries:
        counts[entry.clock.level] += 1
        if stored.get((entry.booking, entry.person)) != entry.clock.level.value:
            changed.append((entry.booking, entry.person, entry.clock.level))
    for level, count in counts.items():
        service.metrics.custody_level.labels(level.value).set(count)
    if not changed:
        return []
    red = [(b, p) for b, p, level in changed if level is Level.RED]
    with service.change("custody_red") as change:
        at = format_time(moment)
        by_key = {(e.booking, e.person): e for e in entries}
        for booking_id, person, level in changed:
            entry = by_key[(booking_id, person)]
            change.statements.append(
                (
                    "UPDATE booking_persons SET level = ? WHERE booking = ? AND person = ?",
                    (level.value, booking_id, person),
                )
            )
            if level is Level.GREEN and (booking_id, person) not in stored:
                continue  # a clock starting green is news to no one
            change.statements.append(
                event_statement(
                    at,
                    "custody_level",
                    entry.station,
                    booking_id,
                    {
                        "person": person,
                        "level": level.value,
                        "deadline": iso(entry.clock.deadline),
                        "remaining_minutes": entry.clock.remaining_minutes,
                    },
                    person=person,
                )
            )
            service.metrics.level_changes.labels(level.value).inc()
        for key in red:
            service.planner.replan_first(key, to_minute(moment))
    return changed


def track_vans(
    service: PlanningService, rules: VanRules, late_minutes: int, now: datetime | None = None
) -> list[str]:
    """Booked units whose van is inside the centre's geofence arrive; units whose van will be
    more than ``late_minutes`` later than planned are planned from its ETA."""
    moment = now or datetime.now(UTC)
    conn = connect(service.db, readonly=True)
    try:
        rows = conn.execute(
            "SELECT id, body, expected_arrival, eta FROM bookings WHERE status IN "
            "(?, ?) AND arrived_at IS NULL",
            _EXPECTED,
        ).fetchall()
        fixes: dict[str, tuple[datetime, object]] = {}
        for device, state in conn.execute(
            "SELECT device, state FROM devices WHERE class = 'gps' OR class IS NULL"
        ):
            latest = _latest_fix(state)
            if latest is not None and (device not in fixes or latest[0] > fixes[device][0]):
                fixes[device] = latest
    finally:
        conn.close()
    done = []
    for booking_id, body, expected, eta in rows:
        van = json.loads(body).get("van")
        if van not in fixes:
            continue
        fix_time, fix = fixes[van]
        position = van_position(fix, fix_time, moment, rules)
        if position is None:
            continue
        try:
            if position.arrived:
                service.arrived(booking_id, min(fix_time, moment))
                done.append(f"{booking_id} arrived")
            elif position.eta > datetime.fromisoformat(eta or expected) + timedelta(
                minutes=late_minutes
            ) and service.expect(booking_id, position.eta, moment):
                done.append(f"{booking_id} late, ETA {format_time(position.eta)}")
        except PlanningError as exc:
            log.info("van of booking %s: %s", booking_id, exc.message)
    return done


def _latest_fix(state: str) -> tuple[datetime, object] | None:
    try:
        entry = json.loads(state).get(FIX_KIND)
        moment = datetime.fromisoformat(entry["time"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if moment.tzinfo is None:
        return None
    return moment, entry.get("body")
