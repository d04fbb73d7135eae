"""The centre's live plan: bookings in, rooms out, every change stored and told to the stations.

One :class:`PlanningService` per central process holds the instant allocator's plan in memory
behind one lock; the store is the truth it is rebuilt from at start-up (``load``). Every change
runs allocator then store in one critical section, writing the rows of every person whose plan
moved and a ``plan_events`` row for each station affected, so the plan in memory and the plan
in the store never differ. If the store write fails, the plan is rebuilt from the store.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from central import audit, bands
from central import plan_store as store
from central.booking_record import BookingChange, BookingRecord, RecordError
from central.plan_store import StoredBooking, StoredPerson, iso
from central.store import connect, write_transaction
from edge_agent.wire import format_time
from monitoring.planning_metrics import PlanningMetrics
from scheduling import lifecycle
from scheduling.allocator import Planner
from scheduling.answers import Refusal, refusal
from scheduling.checker import Violation, check_plan
from scheduling.custody import Clock, ClockThresholds, Level, clock, level_changes
from scheduling.groups import keep_groups_whole
from scheduling.improver import apply as apply_improvement
from scheduling.improver import improve
from scheduling.lifecycle import BookingState, BookingStatus, LifecycleError, PersonState
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    Person,
    PersonKey,
    Placement,
    PlanRoom,
    Unassigned,
    from_minute,
    to_minute,
)
from scheduling.policy import Policy
from scheduling.rooms import Equipment, RoomState, RoomType

log = logging.getLogger(__name__)

__all__ = [
    "BookingAnswer",
    "CustodyEntry",
    "ErrorKind",
    "PlanningError",
    "PlanningService",
    "RosterEntry",
    "VanState",
    "iso",
]

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the door


# A booking expected this long ago is still taken (a walk-in booked at the door, a clock
# that lags); one further back is a mistake, not a request the plan can meet.
PAST_TOLERANCE = timedelta(minutes=5)
# Bookings are made before a unit sets off; a week ahead is the longest horizon a centre plans.
MAX_AHEAD = timedelta(days=7)
# The cause of a change the improver made (plan events, metrics).
IMPROVER_CAUSE = "improver"


class BookingAnswer(StrEnum):
    """How a booking request was answered (``precinct_booking_answers_total{outcome}``): every
    person placed, some waitlisted as asked, or refused because the rooms cannot take it (a
    request that is itself wrong, a past time or past the horizon, is not counted)."""

    PLACED = "placed"
    WAITLISTED = "waitlisted"
    REFUSED = "refused"


class ErrorKind(StrEnum):
    """Why the plan refuses a request; the HTTP edge maps each kind to a status."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the current state or the plan does not allow it
    INVALID = "invalid"  # the request itself cannot be met as written
    FORBIDDEN = "forbidden"


class PlanningError(Exception):
    """A request the plan cannot take. ``state`` names the lifecycle state that refused a
    step; ``detail`` lists the rule each person broke when a booking cannot be placed."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        detail: Any = None,
        suggested_arrival: str | None = None,
        state: str | None = None,
        partial_plan: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.suggested_arrival = suggested_arrival
        self.state = state
        self.partial_plan = partial_plan

    @classmethod
    def illegal(cls, exc: LifecycleError) -> PlanningError:
        return cls(ErrorKind.CONFLICT, exc.message, state=exc.state.value)


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """A person of an open booking as the plan sees them: who, their plan, their clock (None
    for a basis without a limit, and once they left)."""

    booking: str
    station: str
    case_id: str
    person: Person
    session: Assignment | None
    waiting: Assignment | None
    unassigned: Unassigned | None
    clock: Clock | None


@dataclass(frozen=True, slots=True)
class CustodyEntry:
    booking: str
    person: str
    station: str
    legal_basis: str
    clock: Clock


@dataclass(frozen=True, slots=True)
class VanState:
    """A booked unit not yet arrived whose escort van has reported a fix."""

    booking: str
    van: str
    planned: datetime  # when the plan expects the unit: its van's stored ETA, or as booked
    fix_time: datetime
    fix: object  # the fix reading's body, as the van's agent sent it
    station: str = ""  # the booking's station


Snapshot = dict[PersonKey, tuple[tuple[Assignment, ...], Unassigned | None]]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class PlanningService:
    def __init__(
        self,
        db: Path,
        metrics: PlanningMetrics,
        policy: Policy | None = None,
        thresholds: ClockThresholds | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.policy = policy or Policy()
        self.thresholds = thresholds or ClockThresholds()
        self.planner = Planner([], self.policy)
        # Persons out of the handling area whose booking is still open: no custody clock.
        self.outside: set[PersonKey] = set()
        self.lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(cause)`` after each stored change that moved the plan (its version),
        outside the lock, in the thread that made it; the improver's own results are not told
        (it is what a listener would run)."""
        self._listeners.append(listener)

    # --- start-up --------------------------------------------------------------------------

    def load(self) -> None:
        """Rebuild the plan from the store: rooms, active bookings, their stored assignments."""
        with self.lock:
            conn = connect(self.db)
            try:
                self._load(conn)
            finally:
                conn.close()

    def _load(self, conn: sqlite3.Connection) -> None:
        planner = Planner(store.rooms(conn), self.policy)
        exited: set[PersonKey] = set()
        for stored in store.active_bookings(conn):
            try:
                booking = _planning_booking(stored, _record(stored))
            except RecordError:
                # A stored body this release cannot read must not keep the centre from starting;
                # its rows stay in the store for a person to look at.
                log.exception(
                    "booking %s: stored record unreadable; left out of the plan", stored.id
                )
                continue
            unassigned, fixed = [], []
            for person in store.persons(conn, stored.id):
                key = (stored.id, person.person)
                if person.exited_at:
                    exited.add(key)
                if person.unassigned_rule:
                    unassigned.append(
                        Unassigned(
                            stored.id,
                            person.person,
                            person.unassigned_rule,
                            person.unassigned_reason or "",
                        )
                    )
                if person.session_started_at:
                    fixed.append(key)
            planner.restore(booking, store.assignments(conn, stored.id), unassigned, fixed)
        self.planner = planner
        self.outside = exited
        self.metrics.unassigned.set(len(planner.unassigned))
        log.info(
            "plan rebuilt from the store: %d rooms, %d active bookings, %d persons unassigned",
            len(planner.rooms),
            len(planner.bookings),
            len(planner.unassigned),
        )

    # --- the write path --------------------------------------------------------------------

    @contextmanager
    def change(self, cause: str, actor: audit.Actor | None = None) -> Iterator[PlanChange]:
        """Lock, let the caller change the plan and stage rows (``statements``) and audit
        records (``audit``, written as ``actor``, the centre itself by default), then store it
        all at once; any exception undoes the change by rebuilding the plan from the store."""
        with self.lock:
            started = time.perf_counter()
            change = PlanChange(self._snapshot())
            version = self.planner.version
            # Opened only to store: a refusal (nothing changed) touches no file.
            conn: sqlite3.Connection | None = None
            try:
                yield change
                self.metrics.allocate_seconds.labels(cause).observe(time.perf_counter() - started)
                conn = connect(self.db)
                conn.execute("BEGIN IMMEDIATE")
                store.execute(conn, change.statements)
                self._store_plan(conn, change, cause)
                for entry in change.audit:
                    audit.append(conn, actor or audit.SYSTEM, entry)
                conn.execute("COMMIT")
            except BaseException:
                if conn is not None and conn.in_transaction:
                    conn.execute("ROLLBACK")
                # Whatever the allocator did is undone by reloading what the store holds; a
                # refusal before any change (a 404, a wrong code) leaves nothing to undo.
                if self.planner.version != version:
                    conn = conn or connect(self.db)
                    self._load(conn)
                raise
            finally:
                if conn is not None:
                    conn.close()
            self.metrics.unassigned.set(len(self.planner.unassigned))
            moved = self.planner.version != version
        if moved and cause != IMPROVER_CAUSE:
            for listener in self._listeners:
                listener(cause)

    def _snapshot(self) -> Snapshot:
        planner = self.planner
        keys = set(planner.assignments) | set(planner.unassigned)
        return {
            key: (tuple(planner.assignments.get(key, ())), planner.unassigned.get(key))
            for key in keys
        }

    def _store_plan(self, conn: sqlite3.Connection, change: PlanChange, cause: str) -> None:
        after = self._snapshot()
        moved = {
            key
            for key in set(change.before) | set(after)
            if change.before.get(key) != after.get(key) and key[0] not in change.history_kept
        }
        now = format_time(datetime.now(UTC))
        told: dict[str, list[dict[str, Any]]] = {}
        for key in sorted(moved):
            booking_id, person = key
            assignments, unassigned = after.get(key, ((), None))
            store.replace_assignments(conn, key, assignments)
            store.set_unassigned(conn, key, unassigned)
            if booking_id in change.quiet or booking_id not in self.planner.bookings:
                continue
            told.setdefault(booking_id, []).append(
                {
                    "person": person,
                    "assignments": [_assignment_json(a) for a in assignments],
                    "unassigned": None
                    if unassigned is None
                    else {"rule": unassigned.rule, "reason": unassigned.reason},
                }
            )
        for booking_id, persons in told.items():
            kind = "unassigned" if any(p["unassigned"] for p in persons) else "plan_changed"
            self._event(conn, now, kind, booking_id, None, {"cause": cause, "persons": persons})
        if moved and cause not in ("booking",):
            self.metrics.replans.labels(cause).inc()
            self._check(conn, now)

    def _event(
        self,
        conn: sqlite3.Connection,
        at: str,
        kind: str,
        booking: str | None,
        person: str | None,
        body: dict[str, Any],
    ) -> None:
        planned = self.planner.bookings.get(booking) if booking else None
        station = planned.station if planned is not None else None
        store.execute(conn, [store.event(at, kind, station, booking, body, person)])

    def _check(self, conn: sqlite3.Connection, at: str) -> None:
        """Run the independent checker over the whole plan; a violation is counted and recorded
        (it would be a defect of the allocator: the plan is still stored, and the centre told)."""
        planner = self.planner
        now = to_minute(datetime.now(UTC))
        for violation in check_plan(
            planner.rooms,
            planner.bookings,
            planner.all_assignments(),
            planner.policy,
            planner.fixed,
            now,
        ):
            log.error("plan checker: %s %s", violation.rule, violation.message)
            self.metrics.plan_violations.labels(violation.rule).inc()
            self._event(
                conn,
                at,
                "plan_violation",
                None,
                None,
                {"rule": violation.rule, "message": violation.message},
            )

    # --- bookings --------------------------------------------------------------------------

    def create(
        self,
        record: BookingRecord,
        station: str,
        by: str,
        now: datetime | None = None,
        *,
        actor: audit.Actor | None = None,
    ) -> str:
        """Place a new booking and store it; refused (conflict) if a person cannot be placed,
        unless it asks for the waitlist. Returns the booking's id."""
        moment = now or datetime.now(UTC)
        _within_horizon(record, moment)
        _not_past(record, moment)
        booking_id = "bk-" + secrets.token_hex(6)
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        booking = record.to_booking(booking_id, station)
        with self.change("booking", actor) as change:
            # Tried on a copy: a refusal leaves the live plan as it was, with nothing to undo.
            attempt = self.planner.copy()
            placement = attempt.add_booking(booking, to_minute(moment))
            if not placement.complete and not record.waitlist:
                refused = refusal(self.planner, attempt, booking, to_minute(moment))
                self.metrics.booking_answers.labels(BookingAnswer.REFUSED).inc()
                raise PlanningError(
                    ErrorKind.CONFLICT,
                    _refusal(placement),
                    [
                        {"person": u.person, "rule": u.rule, "reason": u.reason}
                        for u in refused.unplaced
                    ],
                    suggested_arrival=None
                    if refused.suggested_arrival is None
                    else iso(refused.suggested_arrival),
                    partial_plan=_partial_plan_json(refused),
                )
            placement.unassigned.extend(
                keep_groups_whole(attempt, [(booking_id, p.id) for p in booking.persons])
            )
            self.planner = attempt
            status = lifecycle.booked(placement.complete)
            change.statements.append(
                store.insert_booking(
                    booking_id,
                    code,
                    station,
                    record.case_id,
                    status,
                    record.walk_in,
                    record.expected_arrival,
                    record.to_json(),
                    by,
                    moment,
                )
            )
            change.statements.extend(
                store.insert_person(booking_id, person.id) for person in booking.persons
            )
            change.quiet.add(booking_id)
            change.audit.append(
                audit.AuditRecord(
                    "booking.created",
                    booking_id,
                    {
                        "station": station,
                        "status": status.value,
                        "persons": len(booking.persons),
                        "walk_in": record.walk_in,
                    },
                )
            )
            if placement.unassigned:
                change.statements.append(
                    store.event(
                        format_time(moment),
                        "unassigned",
                        station,
                        booking_id,
                        {
                            "cause": "booking",
                            "persons": [
                                {"person": u.person, "rule": u.rule, "reason": u.reason}
                                for u in placement.unassigned
                            ],
                        },
                    )
                )
        # Counted once stored: a commit the full store refused answered nothing.
        answer = BookingAnswer.PLACED if placement.complete else BookingAnswer.WAITLISTED
        self.metrics.booking_answers.labels(answer).inc()
        return booking_id

    def update(
        self,
        booking_id: str,
        changed: BookingChange,
        now: datetime | None = None,
        *,
        actor: audit.Actor | None = None,
    ) -> None:
        """A station changes its booking: its persons are planned again (S5: only them)."""
        moment = now or datetime.now(UTC)
        with self.change("booking_changed", actor) as change:
            stored, state = self._state(booking_id)
            try:
                updated = _record(stored).changed(changed)
            except RecordError as exc:
                raise PlanningError(ErrorKind.INVALID, str(exc)) from None
            _within_horizon(updated, moment)
            if changed.expected_arrival is not None and state.arrived_at is None:
                _not_past(updated, moment)
            self.planner.replace_booking(_planning_booking(stored, updated), to_minute(moment))
            complete = not self._unassigned_of(booking_id)
            status = self._step(change, state, lambda s: lifecycle.placed(s, complete), moment)
            change.statements.append(
                store.update_body(booking_id, updated.to_json(), updated.expected_arrival, moment)
            )
            # The names of the fields changed, never their values (they describe persons).
            change.audit.append(
                audit.AuditRecord(
                    "booking.changed",
                    booking_id,
                    {"fields": changed.names(), "status": status.status.value},
                )
            )

    def close(
        self,
        booking_id: str,
        closing: BookingStatus,
        now: datetime | None = None,
        *,
        actor: audit.Actor | None = None,
    ) -> None:
        """Cancel or release as a no-show: the rooms go back, the waitlist gets a chance."""
        moment = now or datetime.now(UTC)
        status = BookingStatus(closing).value
        with self.change("released", actor) as change:
            stored, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.close(s, closing, moment), moment)
            at = format_time(moment)
            self.planner.remove_booking(booking_id)
            change.statements.append(store.delete_assignments(booking_id))
            change.statements.append(store.event(at, status, stored.station, booking_id, {}))
            change.history_kept.add(booking_id)
            change.statements += bands.release_statements(booking_id, None, moment, bands.CLOSED)
            action = f"booking.{'cancelled' if closing is BookingStatus.CANCELLED else 'no_show'}"
            change.audit.append(audit.AuditRecord(action, booking_id, {"at": at}))
            self._retry_waitlist(change, moment)
        if closing is BookingStatus.NO_SHOW:
            self.metrics.no_shows.inc()

    def _retry_waitlist(self, change: PlanChange, moment: datetime) -> None:
        waiting = {key[0] for key in self.planner.unassigned}
        if not waiting:
            return
        retried = list(self.planner.unassigned)
        self.planner.place_unassigned(to_minute(moment))
        keep_groups_whole(self.planner, retried)
        self._placed_whole(change, waiting, moment)

    # --- lifecycle -------------------------------------------------------------------------

    def arrived(self, booking_id: str, at: datetime, *, actor: audit.Actor | None = None) -> None:
        with self.change("arrival", actor) as change:
            stored, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.arrive(s, at), at)
            self._arrive(change, booking_id, stored, at)

    def _arrive(
        self, change: PlanChange, booking_id: str, stored: StoredBooking, at: datetime
    ) -> None:
        stamp = format_time(at)
        change.audit.append(audit.AuditRecord("booking.arrived", booking_id, {"at": stamp}))
        # Ends a late van's alarm. Dated when recorded: an arrival entered late with an earlier
        # time still ends the alarms raised before it was entered.
        change.statements.append(
            store.event(_recorded(at), "arrived", stored.station, booking_id, {"at": stamp})
        )
        booking = _planning_booking(stored, _record(stored), arrived_at=at)
        planned = self.planner.bookings.get(booking_id)
        if planned is not None and planned.expected_arrival != booking.expected_arrival:
            # Early or late: plan the persons from the real arrival (S5: only them).
            self.planner.replace_booking(booking, to_minute(at))

    def expect(self, booking_id: str, eta: datetime, now: datetime | None = None) -> bool:
        """The van will arrive at ``eta``: the booking's persons are planned from then (S5:
        only them), and the station told. False if it has arrived or nothing changes."""
        moment = now or datetime.now(UTC)
        with self.change("late_van") as change:
            stored, state = self._state(booking_id)
            if state.arrived_at is not None:
                return False
            booking = _planning_booking(stored, _record(stored), eta=eta)
            planned = self.planner.bookings.get(booking_id)
            if planned is None or planned.expected_arrival == booking.expected_arrival:
                return False
            change.statements.append(store.set_eta(booking_id, eta, moment))
            # Its own event (the re-plan's plan_changed says only what moved): the late van
            # is an alarm until the booking arrives.
            booked = stored.expected_arrival
            change.statements.append(
                store.event(
                    format_time(moment),
                    "van_late",
                    stored.station,
                    booking_id,
                    {
                        "van": _record(stored).van,
                        "eta": format_time(eta),
                        "expected_arrival": booked,
                        "minutes_late": int((eta - _parse(booked)).total_seconds() // 60),
                    },
                )
            )
            self.planner.replace_booking(booking, to_minute(moment))
        return True

    def verified(
        self, booking_id: str, code: str, at: datetime, *, actor: audit.Actor | None = None
    ) -> None:
        with self.change("verified", actor) as change:
            stored, state = self._state(booking_id)
            if not secrets.compare_digest(code.strip().upper(), stored.code):
                raise PlanningError(
                    ErrorKind.CONFLICT, "the booking code does not match this booking"
                )
            after = self._step(change, state, lambda s: lifecycle.verify(s, at), at)
            if state.arrived_at is None and after.arrived_at is not None:
                self._arrive(change, booking_id, stored, at)
            change.audit.append(
                audit.AuditRecord("booking.verified", booking_id, {"at": format_time(at)})
            )

    def entered(self, booking_id: str, at: datetime, *, actor: audit.Actor | None = None) -> float:
        """Entry into the handling area; returns arrival -> entry in seconds."""
        with self.change("entered", actor) as change:
            stored, state = self._state(booking_id)
            after = self._step(change, state, lambda s: lifecycle.enter(s, at), at)
            if state.arrived_at is None:
                self._arrive(change, booking_id, stored, at)
            arrived = after.arrived_at or at
            seconds = max(0.0, (at - arrived).total_seconds())
            change.audit.append(
                audit.AuditRecord("booking.entered", booking_id, {"at": format_time(at)})
            )
        lane = "walk_in" if state.walk_in else "booked"
        self.metrics.arrival_to_entry.labels(lane).observe(seconds)
        return seconds

    def session_started(
        self, booking_id: str, person: str, at: datetime, *, actor: audit.Actor | None = None
    ) -> None:
        with self.change("session_started", actor) as change:
            _row, state = self._state(booking_id)
            key = self._person_key(booking_id, person)
            self._step(change, state, lambda s: lifecycle.start_session(s, person, at), at)
            if self.planner.session_of(key) is None:
                raise PlanningError(ErrorKind.CONFLICT, f"{person} has no planned session")
            # Early or late, the real start replaces the planned one (S5: what it collides
            # with is planned again, nothing else).
            self.planner.start_session(key, to_minute(at), to_minute(at))
            change.audit.append(_person_record("person.session_started", booking_id, person, at))

    def session_ended(
        self, booking_id: str, person: str, at: datetime, *, actor: audit.Actor | None = None
    ) -> None:
        with self.change("session_ended", actor) as change:
            _row, state = self._state(booking_id)
            key = self._person_key(booking_id, person)
            self._step(change, state, lambda s: lifecycle.end_session(s, person, at), at)
            self._session_over(change, key, at)
            change.audit.append(_person_record("person.session_ended", booking_id, person, at))

    def exited(
        self, booking_id: str, person: str, at: datetime, *, actor: audit.Actor | None = None
    ) -> None:
        """A person leaves: their clock stops, a session still running ends now, and the last
        one out takes the booking out of the live plan (its rows stay as history)."""
        with self.change("exited", actor) as change:
            stored, state = self._state(booking_id)
            key = self._person_key(booking_id, person)
            after = self._step(change, state, lambda s: lifecycle.exit_area(s, person, at), at)
            if state.person(person).status is lifecycle.PersonStatus.IN_SESSION:
                # Out without a recorded end: the session ended at the exit.
                self._session_over(change, key, at)
            planned = self.planner.person(key)
            limit = self.policy.limit_minutes(planned.legal_basis)
            level = None
            if limit is not None:
                # The clock stops here: its last level is what the history keeps.
                final = clock(to_minute(at), planned.brought_in_at, limit, None, self.thresholds)
                level = final.level.value
                change.statements.append(store.set_level(booking_id, person, final.level))
            # The band comes off at the door: it is free for the next person.
            change.statements += bands.release_statements(booking_id, person, at, bands.EXITED)
            # Ends the person's red-clock alarm; dated when recorded (see _arrive).
            change.statements.append(
                store.event(
                    _recorded(at),
                    "person_exited",
                    stored.station,
                    booking_id,
                    {"person": person, "exited_at": format_time(at), "level": level},
                    person=person,
                )
            )
            closed = after.status is BookingStatus.EXITED
            record = _person_record("person.exited", booking_id, person, at)
            change.audit.append(replace(record, detail={**record.detail, "booking_closed": closed}))
            if closed:
                self.planner.remove_booking(booking_id)
                change.history_kept.add(booking_id)
                self._retry_waitlist(change, at)
        self.outside.add(key)

    def _session_over(self, change: PlanChange, key: PersonKey, at: datetime) -> None:
        """A session ended at ``at``, perhaps before its planned end: the room is free from
        then (after its cleaning). The waitlist gets the first chance, then the sessions that
        can now start earlier move up (S1); no one else moves (S5)."""
        self.planner.end_session(key, to_minute(at))
        self._retry_waitlist(change, at)
        session = self.planner.session_of(key)
        if session is not None:
            # Those out of the area keep whatever plan is left to them: no one waits for it.
            self.planner.move_up(session.room, to_minute(at), skip=self.outside)

    def _step(
        self,
        change: PlanChange,
        state: BookingState,
        step: Callable[[BookingState], BookingState],
        now: datetime,
    ) -> BookingState:
        """Apply one lifecycle rule and stage what it changed; a refusal names the state."""
        try:
            after = step(state)
        except LifecycleError as exc:
            raise PlanningError.illegal(exc) from None
        change.statements.extend(store.state(state, after, now))
        return after

    # --- upkeep: what the periodic jobs ask of the plan --------------------------------------

    def release_no_shows(self, grace_minutes: int, now: datetime | None = None) -> list[str]:
        """Booked units not arrived ``grace_minutes`` after their expected arrival are released
        as no-shows; their rooms go to the waitlist. Returns the bookings released."""
        moment = now or datetime.now(UTC)
        conn = connect(self.db, readonly=True)
        try:
            due = store.due_no_shows(conn, from_minute(to_minute(moment) - grace_minutes))
        finally:
            conn.close()
        released = []
        for booking_id in due:
            try:
                self.close(booking_id, BookingStatus.NO_SHOW, moment)
                released.append(booking_id)
            except PlanningError:
                continue  # arrived or closed meanwhile: the lifecycle said no
        return released

    def extend_overruns(self, step_minutes: int = 15, now: datetime | None = None) -> list[str]:
        """Sessions running past their planned end are extended by ``step_minutes`` from now;
        what they collide with is planned again and the stations told. Returns
        ``booking/person`` of each session extended."""
        minute = to_minute(now or datetime.now(UTC))
        conn = connect(self.db, readonly=True)
        try:
            running = store.running_sessions(conn)
        finally:
            conn.close()
        overrunning = []
        with self.change("overrun"):
            for key in running:
                session = self.planner.session_of(key)
                if session is not None and session.end <= minute:
                    self.planner.extend_session(key, minute + step_minutes, minute)
                    overrunning.append(f"{key[0]}/{key[1]}")
        return overrunning

    def escalate(self, now: datetime | None = None) -> list[tuple[str, str, Level]]:
        """Recompute every custody clock: count persons per level, record each level change
        (a ``custody_level`` event, but not for a clock starting green) and re-plan red persons
        first. Returns the changes."""
        moment = now or datetime.now(UTC)
        entries = {(e.booking, e.person): e for e in self.custody(moment)}
        conn = connect(self.db, readonly=True)
        try:
            stored = store.stored_levels(conn)
        finally:
            conn.close()
        counts = dict.fromkeys(Level, 0)
        for entry in entries.values():
            counts[entry.clock.level] += 1
        for level, count in counts.items():
            self.metrics.custody_level.labels(level.value).set(count)
        changes = level_changes(((k, e.clock.level) for k, e in entries.items()), stored)
        if not changes:
            return []
        with self.change("custody_red") as change:
            at = format_time(moment)
            for changed in changes:
                if changed.key in self.outside:
                    continue  # left while the clocks were read: the exit stopped the clock
                (booking_id, person), entry = changed.key, entries[changed.key]
                change.statements.append(store.set_level(booking_id, person, changed.level))
                if not changed.news:
                    continue
                change.statements.append(
                    store.event(
                        at,
                        "custody_level",
                        entry.station,
                        booking_id,
                        {
                            "person": person,
                            "level": changed.level.value,
                            "deadline": iso(entry.clock.deadline),
                            "remaining_minutes": entry.clock.remaining_minutes,
                        },
                        person=person,
                    )
                )
                self.metrics.level_changes.labels(changed.level.value).inc()
            for changed in changes:
                if changed.level is Level.RED:
                    self.planner.replan_first(changed.key, to_minute(moment))
        return [(c.key[0], c.key[1], c.level) for c in changes]

    def improve(
        self, budget_seconds: float, window_minutes: int, now: datetime | None = None
    ) -> int:
        """Run the CP-SAT improver on a copy of the plan, outside the lock; apply the result
        if the plan has not changed meanwhile and the independent checker passes it.
        Returns the number of persons moved."""
        minute = to_minute(now or datetime.now(UTC))
        with self.lock:
            copy = self.planner.copy()
        result = improve(copy, minute, budget_seconds, window_minutes)
        if result is None:
            return 0
        with self.change(IMPROVER_CAUSE) as change:
            if self.planner.version != copy.version:
                log.info("improver result dropped: the plan changed while it ran")
                return 0
            trial = self.planner.copy()
            apply_improvement(trial, result)
            violations = check_plan(
                trial.rooms,
                trial.bookings,
                trial.all_assignments(),
                trial.policy,
                trial.fixed,
                minute,
            )
            if violations:
                for violation in violations:
                    log.error("improver result refused: %s %s", violation.rule, violation.message)
                    self.metrics.plan_violations.labels(violation.rule).inc()
                return 0
            waiting = {key[0] for key in self.planner.unassigned}
            apply_improvement(self.planner, result)
            self._placed_whole(change, waiting, now or datetime.now(UTC))
        log.info(
            "improver: %d persons moved, cost %d -> %d in %.1f s",
            len(result.changes),
            result.cost_before,
            result.cost_after,
            result.seconds,
        )
        return len(result.changes)

    def _placed_whole(self, change: PlanChange, waiting: set[str], moment: datetime) -> None:
        """Bookings of ``waiting`` (some person unplaced) that a change placed whole: a
        waitlisted booking not yet come is confirmed, as when the waitlist is retried."""
        for booking_id in sorted(waiting - {key[0] for key in self.planner.unassigned}):
            _row, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.placed(s, True), moment)

    def check_and_record(self, repeat_after: timedelta, now: datetime | None = None) -> int:
        """The periodic independent check: every violation found is logged and counted, and
        recorded as a ``plan_violation`` plan event unless the same one (rule and message) was
        recorded less than ``repeat_after`` ago. A violation that stays is then one alarm
        counted again now and then, not a plan event and a stream event every run. Returns
        how many were found."""
        moment = now or datetime.now(UTC)
        with self.lock:
            found = self._violations(moment)
            if found:
                conn = connect(self.db)
                try:
                    with write_transaction(conn):
                        seen = store.recent_violations(conn, moment - repeat_after)
                        for violation in found:
                            if (violation.rule, violation.message) in seen:
                                continue
                            seen.add((violation.rule, violation.message))
                            self._event(
                                conn,
                                format_time(moment),
                                "plan_violation",
                                None,
                                None,
                                {"rule": violation.rule, "message": violation.message},
                            )
                finally:
                    conn.close()
        for violation in found:
            log.error("plan checker: %s %s", violation.rule, violation.message)
            self.metrics.plan_violations.labels(violation.rule).inc()
        return len(found)

    def purge(self, closed_before: datetime) -> int:
        """Delete bookings closed before ``closed_before``, with their rows, and plan events
        older than it; returns the bookings deleted. Nothing in the live plan is closed."""
        with self.lock:
            conn = connect(self.db)
            try:
                with write_transaction(conn):
                    deleted = store.purge(conn, closed_before)
            finally:
                conn.close()
        return deleted

    def van_states(self) -> list[VanState]:
        """Booked units not yet arrived whose van (``van`` of the booking) has reported a fix,
        with the latest one; the van job decides from these whether a unit arrived or is late."""
        conn = connect(self.db, readonly=True)
        try:
            awaited = store.awaited(conn)
            fixes = store.latest_fixes(conn)
        finally:
            conn.close()
        found = []
        for stored in awaited:
            try:
                van = _record(stored).van
            except RecordError:
                log.exception(
                    "booking %s: stored record unreadable; its van not followed", stored.id
                )
                continue
            if van is None or van not in fixes:
                continue
            fix_time, fix = fixes[van]
            planned = _parse(stored.eta or stored.expected_arrival)
            found.append(VanState(stored.id, van, planned, fix_time, fix, stored.station))
        return found

    # --- rooms -----------------------------------------------------------------------------

    def room_changed(
        self,
        room_id: str,
        room_type: RoomType,
        capacity: int,
        equipment: Iterable[Equipment],
        state: RoomState,
        now: datetime | None = None,
        adjacent_to: Iterable[str] = (),
    ) -> None:
        moment = now or datetime.now(UTC)
        room = PlanRoom(
            room_id,
            room_type,
            capacity,
            frozenset(equipment),
            state is RoomState.IN_SERVICE,
            frozenset(adjacent_to),
        )
        with self.change("room_changed"):
            self.planner.set_room(room, to_minute(moment))

    # --- reads -----------------------------------------------------------------------------

    def custody(self, now: datetime | None = None) -> list[CustodyEntry]:
        minute = to_minute(now or datetime.now(UTC))
        with self.lock:
            planner = self.planner
            found = []
            for booking in planner.bookings.values():
                for person in booking.persons:
                    limit = self.policy.limit_minutes(person.legal_basis)
                    if limit is None or (booking.id, person.id) in self.outside:
                        continue
                    session = planner.session_of((booking.id, person.id))
                    projected = None if session is None else session.end + self.policy.exit_minutes
                    found.append(
                        CustodyEntry(
                            booking.id,
                            person.id,
                            booking.station,
                            person.legal_basis.value,
                            clock(minute, person.brought_in_at, limit, projected, self.thresholds),
                        )
                    )
        found.sort(key=lambda e: e.clock.remaining_minutes)
        return found

    def roster(self, now: datetime | None = None) -> list[RosterEntry]:
        """Every person of every open booking, with their plan and clock, in booking order."""
        minute = to_minute(now or datetime.now(UTC))
        with self.lock:
            planner = self.planner
            found = []
            for booking in planner.bookings.values():
                for person in booking.persons:
                    key = (booking.id, person.id)
                    session = planner.session_of(key)
                    waiting = next(
                        (
                            a
                            for a in planner.assignments.get(key, ())
                            if a.kind is AssignmentKind.WAITING
                        ),
                        None,
                    )
                    limit = self.policy.limit_minutes(person.legal_basis)
                    running = limit is not None and key not in self.outside
                    projected = None if session is None else session.end + self.policy.exit_minutes
                    found.append(
                        RosterEntry(
                            booking.id,
                            booking.station,
                            booking.case_id,
                            person,
                            session,
                            waiting,
                            planner.unassigned.get(key),
                            clock(minute, person.brought_in_at, limit, projected, self.thresholds)
                            if running and limit is not None
                            else None,
                        )
                    )
        return found

    def check(self) -> list[str]:
        with self.lock:
            return [f"{v.rule}: {v.message}" for v in self._violations(datetime.now(UTC))]

    def _violations(self, now: datetime) -> list[Violation]:
        """The checker over the live plan; the caller holds the lock."""
        planner = self.planner
        return check_plan(
            planner.rooms,
            planner.bookings,
            planner.all_assignments(),
            planner.policy,
            planner.fixed,
            to_minute(now),
        )

    # --- helpers ---------------------------------------------------------------------------

    def _state(self, booking_id: str) -> tuple[StoredBooking, BookingState]:
        """The stored booking and its lifecycle state; refused unless it is open."""
        conn = connect(self.db, readonly=True)
        try:
            stored = store.booking(conn, booking_id)
            persons = store.persons(conn, booking_id)
        finally:
            conn.close()
        if stored is None:
            raise PlanningError(ErrorKind.NOT_FOUND, f"no booking {booking_id!r}")
        state = _booking_state(stored, _record(stored), persons)
        try:
            lifecycle.require_open(state)
        except LifecycleError as exc:
            raise PlanningError.illegal(exc) from None
        return stored, state

    def _unassigned_of(self, booking_id: str) -> list[Unassigned]:
        return [u for key, u in self.planner.unassigned.items() if key[0] == booking_id]

    def _person_key(self, booking_id: str, person: str) -> PersonKey:
        booking = self.planner.bookings.get(booking_id)
        if booking is None or all(p.id != person for p in booking.persons):
            raise PlanningError(
                ErrorKind.NOT_FOUND, f"no person {person!r} in booking {booking_id}"
            )
        return (booking_id, person)


@dataclass(slots=True)
class PlanChange:
    before: Snapshot
    statements: list[store.Statement] = field(default_factory=list)
    # Bookings whose own request caused the change: no event to themselves.
    quiet: set[str] = field(default_factory=set)
    # Bookings leaving the live plan: their stored rows stay.
    history_kept: set[str] = field(default_factory=set)
    # What the audit log says about this change: ids, states and counts, no personal data.
    audit: list[audit.AuditRecord] = field(default_factory=list)


def _recorded(at: datetime) -> str:
    """The time a step is recorded: now, or ``at`` when that is later. An alarm that the step
    ends is ended even when the step is entered after the fact with an earlier time."""
    return format_time(max(at, datetime.now(UTC)))


def _person_record(action: str, booking_id: str, person: str, at: datetime) -> audit.AuditRecord:
    # The person id is the booking's own reference (the API's path id), not a name.
    return audit.AuditRecord(action, booking_id, {"person": person, "at": format_time(at)})


def _assignment_json(assignment: Assignment) -> dict[str, str]:
    return {
        "kind": assignment.kind.value,
        "room": assignment.room,
        "start": iso(assignment.start),
        "end": iso(assignment.end),
    }


def _partial_plan_json(answer: Refusal) -> dict[str, Any]:
    """The best partial plan of a refused booking: who fits now, and the others from when."""
    fits_now: dict[str, list[dict[str, str]]] = {}
    for assignment in answer.fits_now:
        fits_now.setdefault(assignment.person, []).append(_assignment_json(assignment))
    return {
        "fits_now": [
            {"person": person, "assignments": assignments}
            for person, assignments in fits_now.items()
        ],
        "fits_later": [
            {
                "person": later.person,
                "arrival": None if later.arrival is None else iso(later.arrival),
            }
            for later in answer.fits_later
        ],
    }


def _refusal(placement: Placement) -> str:
    rules = sorted({u.rule for u in placement.unassigned})
    people = ", ".join(f"{u.person} ({u.rule}: {u.reason})" for u in placement.unassigned)
    return f"cannot place every person without breaking {', '.join(rules)}: {people}"


def _not_past(record: BookingRecord, now: datetime) -> None:
    """A booking for a time gone by is a mistake to say so, not a request the rooms refuse."""
    if record.expected_arrival < now - PAST_TOLERANCE:
        raise PlanningError(
            ErrorKind.INVALID,
            f"expected_arrival: {format_time(record.expected_arrival)} is in the past "
            f"(now {format_time(now)}); a unit already here is booked with walk_in and "
            "expected_arrival now",
        )


def _within_horizon(record: BookingRecord, now: datetime) -> None:
    if record.expected_arrival - now > MAX_AHEAD:
        raise PlanningError(ErrorKind.INVALID, "expected_arrival: more than 7 days ahead")


def _record(stored: StoredBooking) -> BookingRecord:
    return BookingRecord.from_json(stored.body)


def _planning_booking(
    stored: StoredBooking,
    record: BookingRecord,
    *,
    arrived_at: datetime | None = None,
    eta: datetime | None = None,
) -> Booking:
    """The booking as the plan uses it: arriving when it arrived, or when its van will (the
    moments given, else those stored)."""
    booking = record.to_booking(stored.id, stored.station)
    actual = arrived_at or _stored_time(stored.arrived_at) or eta or _stored_time(stored.eta)
    if actual is not None:
        booking = replace(booking, expected_arrival=to_minute(actual))
    return booking


def _stored_time(text: str | None) -> datetime | None:
    return None if not text else _parse(text)


def _booking_state(
    stored: StoredBooking, record: BookingRecord, persons: Iterable[StoredPerson]
) -> BookingState:
    """The lifecycle state of a stored booking."""
    about = {p.id: p for p in record.to_booking(stored.id, stored.station).persons}
    entered = stored.entered_at is not None
    states = []
    for p in persons:
        known = about.get(p.person)
        guardian = None if known is None or known.guardian_at is None else known.guardian_at
        started = _stored_time(p.session_started_at)
        ended = _stored_time(p.session_ended_at)
        exited = _stored_time(p.exited_at)
        states.append(
            PersonState(
                p.person,
                lifecycle.person_status(entered, started, ended, exited),
                minor=known is not None and known.minor,
                guardian_at=None if guardian is None else from_minute(guardian),
                session_started_at=started,
                session_ended_at=ended,
                exited_at=exited,
            )
        )
    return BookingState(
        stored.id,
        stored.status,
        tuple(states),
        walk_in=stored.walk_in,
        arrived_at=_stored_time(stored.arrived_at),
        verified_at=_stored_time(stored.verified_at),
        entered_at=_stored_time(stored.entered_at),
        closed_at=_stored_time(stored.closed_at),
    )
