"""The centre's live plan: bookings in, rooms out, every change stored and told to the stations.

One :class:`PlanningService` per central process holds the instant allocator's plan in memory
behind one lock; the store is the truth it is rebuilt from at start-up (``load``). Every change
runs allocator then store in one critical section, writing the rows of every person whose plan
moved and a ``plan_events`` row for each station affected, so the plan in memory and the plan
in the store never differ. If the store write fails, the plan is rebuilt from the store.
"""

from __future__ import annotations

import json
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
from central.api.booking_models import BookingIn, BookingPatch
from central.store import connect
from edge_agent.wire import format_time
from monitoring.planning_metrics import PlanningMetrics
from scheduling import lifecycle
from scheduling.allocator import Planner
from scheduling.checker import Violation, check_plan
from scheduling.custody import Clock, ClockThresholds, clock
from scheduling.lifecycle import BookingState, BookingStatus, LifecycleError, PersonState
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    Minute,
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

ACTIVE = tuple(status.value for status in BookingStatus if not status.closed)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the door


# A booking expected this long ago is still taken (a walk-in booked at the door, a clock
# that lags); one further back is a mistake, not a request the plan can meet.
PAST_TOLERANCE = timedelta(minutes=5)


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
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.suggested_arrival = suggested_arrival
        self.state = state

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


Snapshot = dict[PersonKey, tuple[tuple[Assignment, ...], Unassigned | None]]


def iso(minute: Minute) -> str:
    return format_time(from_minute(minute))


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
        planner = Planner(_rooms(conn), self.policy)
        exited: set[PersonKey] = set()
        marks = ",".join("?" * len(ACTIVE))
        rows = conn.execute(
            f"SELECT id, station, body, arrived_at, eta FROM bookings "  # noqa: S608
            f"WHERE status IN ({marks})",
            ACTIVE,
        ).fetchall()
        for booking_id, station, body, arrived_at, eta in rows:
            try:
                booking = _planning_booking(booking_id, station, body, arrived_at, eta)
            except ValueError:
                # A stored body this release cannot read must not keep the centre from starting;
                # its rows stay in the store for a person to look at.
                log.exception(
                    "booking %s: stored request unreadable; left out of the plan", booking_id
                )
                continue
            assignments = [
                Assignment(
                    r[0],
                    r[1],
                    AssignmentKind(r[2]),
                    r[3],
                    to_minute(_parse(r[4])),
                    to_minute(_parse(r[5])),
                )
                for r in conn.execute(
                    "SELECT booking, person, kind, room, start, end FROM "
                    "assignments WHERE booking = ?",
                    (booking_id,),
                )
            ]
            unassigned, fixed = [], []
            for person, started, rule, reason, exited_at in conn.execute(
                "SELECT person, session_started_at, unassigned_rule, unassigned_reason, "
                "exited_at FROM booking_persons WHERE booking = ?",
                (booking_id,),
            ):
                if exited_at:
                    exited.add((booking_id, person))
                if rule:
                    unassigned.append(Unassigned(booking_id, person, rule, reason or ""))
                if started:
                    fixed.append((booking_id, person))
            planner.restore(booking, assignments, unassigned, fixed)
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
            conn = connect(self.db)
            try:
                yield change
                self.metrics.allocate_seconds.labels(cause).observe(time.perf_counter() - started)
                conn.execute("BEGIN IMMEDIATE")
                for statement, args in change.statements:
                    conn.execute(statement, args)
                self._store_plan(conn, change, cause)
                for entry in change.audit:
                    audit.append(conn, actor or audit.SYSTEM, entry)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # Whatever the allocator did is undone by reloading what the store holds; a
                # refusal before any change (a 404, a wrong code) leaves nothing to undo.
                if self.planner.version != version:
                    self._load(conn)
                raise
            finally:
                conn.close()
            self.metrics.unassigned.set(len(self.planner.unassigned))

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
            conn.execute("DELETE FROM assignments WHERE booking = ? AND person = ?", key)
            conn.executemany(
                "INSERT INTO assignments (booking, person, kind, room, start, end) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (a.booking, a.person, a.kind, a.room, iso(a.start), iso(a.end))
                    for a in assignments
                ],
            )
            conn.execute(
                "UPDATE booking_persons SET unassigned_rule = ?, unassigned_reason = ? "
                "WHERE booking = ? AND person = ?",
                (
                    unassigned.rule if unassigned else None,
                    unassigned.reason if unassigned else None,
                    booking_id,
                    person,
                ),
            )
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
        conn.execute(
            "INSERT INTO plan_events (at, kind, station, booking, person, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (at, kind, station, booking, person, json.dumps(body, ensure_ascii=False)),
        )

    def _check(self, conn: sqlite3.Connection, at: str) -> None:
        """Run the independent checker over the whole plan; a violation is counted and recorded
        (it would be a defect of the allocator: the plan is still stored, and the centre told)."""
        for violation in self._violations(datetime.now(UTC)):
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
        request: BookingIn,
        station: str,
        by: str,
        now: datetime | None = None,
        *,
        actor: audit.Actor | None = None,
    ) -> str:
        moment = now or datetime.now(UTC)
        try:
            request.check_horizon(moment)
        except ValueError as exc:
            raise PlanningError(ErrorKind.INVALID, str(exc)) from None
        _not_past(request, moment)
        booking_id = "bk-" + secrets.token_hex(6)
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        booking = request.to_booking(booking_id, station)
        with self.change("booking", actor) as change:
            placement = self.planner.add_booking(booking, to_minute(moment))
            if not placement.complete and not request.waitlist:
                self.planner.remove_booking(booking_id)
                later = self.planner.suggest_arrival(booking, to_minute(moment))
                raise PlanningError(
                    ErrorKind.CONFLICT,
                    _refusal(placement),
                    [
                        {"person": u.person, "rule": u.rule, "reason": u.reason}
                        for u in placement.unassigned
                    ],
                    suggested_arrival=None if later is None else iso(later),
                )
            status = lifecycle.booked(placement.complete).value
            at = format_time(moment)
            change.statements.append(
                (
                    "INSERT INTO bookings (id, code, station, case_id, status, walk_in, "
                    "expected_arrival, body, created_by, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        booking_id,
                        code,
                        station,
                        request.case_id,
                        status,
                        int(request.walk_in),
                        format_time(request.expected_arrival),
                        request.model_dump_json(),
                        by,
                        at,
                        at,
                    ),
                )
            )
            change.statements.extend(
                (
                    "INSERT INTO booking_persons (booking, person) VALUES (?, ?)",
                    (booking_id, person.id),
                )
                for person in booking.persons
            )
            change.quiet.add(booking_id)
            change.audit.append(
                audit.AuditRecord(
                    "booking.created",
                    booking_id,
                    {
                        "station": station,
                        "status": status,
                        "persons": len(booking.persons),
                        "walk_in": request.walk_in,
                    },
                )
            )
            if placement.unassigned:
                change.statements.append(
                    event_statement(
                        at,
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
        return booking_id

    def update(
        self,
        booking_id: str,
        patch: BookingPatch,
        now: datetime | None = None,
        *,
        actor: audit.Actor | None = None,
    ) -> None:
        moment = now or datetime.now(UTC)
        with self.change("booking_changed", actor) as change:
            row, state = self._state(booking_id)
            data = BookingIn.model_validate_json(row["body"]).model_dump(mode="json")
            data.update(patch.model_dump(mode="json", exclude_none=True))
            try:
                updated = BookingIn.model_validate(data)
                updated.check_horizon(moment)
            except ValueError as exc:
                raise PlanningError(ErrorKind.INVALID, _first_error(exc)) from None
            if patch.expected_arrival is not None and state.arrived_at is None:
                _not_past(updated, moment)
            booking = _planning_booking(
                booking_id, row["station"], updated.model_dump_json(), row["arrived_at"], row["eta"]
            )
            self.planner.replace_booking(booking, to_minute(moment))
            complete = not self._unassigned_of(booking_id)
            status = self._step(change, state, lambda s: lifecycle.placed(s, complete), moment)
            change.statements.append(
                (
                    "UPDATE bookings SET body = ?, expected_arrival = ?, updated_at = ? "
                    "WHERE id = ?",
                    (
                        updated.model_dump_json(),
                        format_time(updated.expected_arrival),
                        format_time(moment),
                        booking_id,
                    ),
                )
            )
            # The names of the fields changed, never their values (they describe persons).
            fields = sorted(patch.model_dump(exclude_none=True))
            change.audit.append(
                audit.AuditRecord(
                    "booking.changed", booking_id, {"fields": fields, "status": status.status.value}
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
            row, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.close(s, closing, moment), moment)
            at = format_time(moment)
            self.planner.remove_booking(booking_id)
            change.statements.append(("DELETE FROM assignments WHERE booking = ?", (booking_id,)))
            change.statements.append(event_statement(at, status, row["station"], booking_id, {}))
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
        self.planner.place_unassigned(to_minute(moment))
        for booking_id in sorted(waiting - {key[0] for key in self.planner.unassigned}):
            _row, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.placed(s, True), moment)

    # --- lifecycle -------------------------------------------------------------------------

    def arrived(self, booking_id: str, at: datetime, *, actor: audit.Actor | None = None) -> None:
        with self.change("arrival", actor) as change:
            row, state = self._state(booking_id)
            self._step(change, state, lambda s: lifecycle.arrive(s, at), at)
            self._arrive(change, booking_id, row, at)

    def _arrive(self, change: PlanChange, booking_id: str, row: sqlite3.Row, at: datetime) -> None:
        stamp = format_time(at)
        change.audit.append(audit.AuditRecord("booking.arrived", booking_id, {"at": stamp}))
        # Ends a late van's alarm. Dated when recorded: an arrival entered late with an earlier
        # time still ends the alarms raised before it was entered.
        change.statements.append(
            event_statement(_recorded(at), "arrived", row["station"], booking_id, {"at": stamp})
        )
        booking = _planning_booking(booking_id, row["station"], row["body"], stamp)
        planned = self.planner.bookings.get(booking_id)
        if planned is not None and planned.expected_arrival != booking.expected_arrival:
            # Early or late: plan the persons from the real arrival (S5: only them).
            self.planner.replace_booking(booking, to_minute(at))

    def expect(self, booking_id: str, eta: datetime, now: datetime | None = None) -> bool:
        """The van will arrive at ``eta``: the booking's persons are planned from then (S5:
        only them), and the station told. False if it has arrived or nothing changes."""
        moment = now or datetime.now(UTC)
        with self.change("late_van") as change:
            row, state = self._state(booking_id)
            if state.arrived_at is not None:
                return False
            stamp = format_time(eta)
            booking = _planning_booking(booking_id, row["station"], row["body"], None, stamp)
            planned = self.planner.bookings.get(booking_id)
            if planned is None or planned.expected_arrival == booking.expected_arrival:
                return False
            change.statements.append(
                (
                    "UPDATE bookings SET eta = ?, updated_at = ? WHERE id = ?",
                    (stamp, format_time(moment), booking_id),
                )
            )
            # Its own event (the re-plan's plan_changed says only what moved): the late van
            # is an alarm until the booking arrives.
            booked = row["expected_arrival"]
            change.statements.append(
                event_statement(
                    format_time(moment),
                    "van_late",
                    row["station"],
                    booking_id,
                    {
                        "van": json.loads(row["body"]).get("van"),
                        "eta": stamp,
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
            row, state = self._state(booking_id)
            if not secrets.compare_digest(code.strip().upper(), row["code"]):
                raise PlanningError(
                    ErrorKind.CONFLICT, "the booking code does not match this booking"
                )
            after = self._step(change, state, lambda s: lifecycle.verify(s, at), at)
            if state.arrived_at is None and after.arrived_at is not None:
                self._arrive(change, booking_id, row, at)
            change.audit.append(
                audit.AuditRecord("booking.verified", booking_id, {"at": format_time(at)})
            )

    def entered(self, booking_id: str, at: datetime, *, actor: audit.Actor | None = None) -> float:
        """Entry into the handling area; returns arrival -> entry in seconds."""
        with self.change("entered", actor) as change:
            row, state = self._state(booking_id)
            after = self._step(change, state, lambda s: lifecycle.enter(s, at), at)
            if state.arrived_at is None:
                self._arrive(change, booking_id, row, at)
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
            self.planner.end_session(key, to_minute(at))
            # The room is free from now (after its cleaning): the waitlist gets a chance.
            self._retry_waitlist(change, at)
            change.audit.append(_person_record("person.session_ended", booking_id, person, at))

    def exited(
        self, booking_id: str, person: str, at: datetime, *, actor: audit.Actor | None = None
    ) -> None:
        """A person leaves: their clock stops, a session still running ends now, and the last
        one out takes the booking out of the live plan (its rows stay as history)."""
        with self.change("exited", actor) as change:
            row, state = self._state(booking_id)
            key = self._person_key(booking_id, person)
            after = self._step(change, state, lambda s: lifecycle.exit_area(s, person, at), at)
            if state.person(person).status is lifecycle.PersonStatus.IN_SESSION:
                # Out without a recorded end: the session ended at the exit.
                self.planner.end_session(key, to_minute(at))
            planned = self.planner.person(key)
            limit = self.policy.limit_minutes(planned.legal_basis)
            level = None
            if limit is not None:
                # The clock stops here: its last level is what the history keeps.
                final = clock(to_minute(at), planned.brought_in_at, limit, None, self.thresholds)
                level = final.level.value
                change.statements.append(
                    (
                        "UPDATE booking_persons SET level = ? WHERE booking = ? AND person = ?",
                        (level, booking_id, person),
                    )
                )
            # The band comes off at the door: it is free for the next person.
            change.statements += bands.release_statements(booking_id, person, at, bands.EXITED)
            # Ends the person's red-clock alarm; dated when recorded (see _arrive).
            change.statements.append(
                event_statement(
                    _recorded(at),
                    "person_exited",
                    row["station"],
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
        change.statements.extend(_state_statements(state, after, now))
        return after

    # --- rooms -----------------------------------------------------------------------------

    def room_changed(
        self,
        room_id: str,
        room_type: RoomType,
        capacity: int,
        equipment: Iterable[Equipment],
        state: RoomState,
        now: datetime | None = None,
    ) -> None:
        moment = now or datetime.now(UTC)
        room = PlanRoom(
            room_id, room_type, capacity, frozenset(equipment), state is RoomState.IN_SERVICE
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

    def check_and_record(self, repeat_after: timedelta, now: datetime | None = None) -> list[str]:
        """The periodic independent check: every violation found, each recorded as a
        ``plan_violation`` plan event unless the same one (rule and message) was recorded less
        than ``repeat_after`` ago. A violation that stays is then one alarm counted again now
        and then, not a plan event and a stream event every run."""
        moment = now or datetime.now(UTC)
        with self.lock:
            found = self._violations(moment)
            if not found:
                return []
            conn = connect(self.db)
            try:
                conn.execute("BEGIN IMMEDIATE")
                # Served by the index plan_events_kind (store schema 10).
                seen = {
                    _violation_key(body)
                    for (body,) in conn.execute(
                        "SELECT body FROM plan_events WHERE kind = 'plan_violation' AND at > ?",
                        (format_time(moment - repeat_after),),
                    )
                }
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
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
        return [f"{v.rule}: {v.message}" for v in found]

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

    def _state(self, booking_id: str) -> tuple[sqlite3.Row, BookingState]:
        """The stored booking and its lifecycle state; refused unless it is open."""
        conn = connect(self.db, readonly=True)
        conn.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM bookings WHERE id = ?", (booking_id,)
            ).fetchone()
            persons = conn.execute(
                "SELECT person, session_started_at, session_ended_at, exited_at "
                "FROM booking_persons WHERE booking = ?",
                (booking_id,),
            ).fetchall()
        finally:
            conn.close()
        if row is None:
            raise PlanningError(ErrorKind.NOT_FOUND, f"no booking {booking_id!r}")
        state = _booking_state(row, persons)
        try:
            lifecycle.require_open(state)
        except LifecycleError as exc:
            raise PlanningError.illegal(exc) from None
        return row, state

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
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    # Bookings whose own request caused the change: no event to themselves.
    quiet: set[str] = field(default_factory=set)
    # Bookings leaving the live plan: their stored rows stay.
    history_kept: set[str] = field(default_factory=set)
    # What the audit log says about this change: ids, states and counts, no personal data.
    audit: list[audit.AuditRecord] = field(default_factory=list)


def _person_record(action: str, booking_id: str, person: str, at: datetime) -> audit.AuditRecord:
    # The person id is the booking's own reference (the API's path id), not a name.
    return audit.AuditRecord(action, booking_id, {"person": person, "at": format_time(at)})


def _recorded(at: datetime) -> str:
    """The time a step is recorded: now, or ``at`` when that is later. An alarm that the step
    ends is ended even when the step is entered after the fact with an earlier time."""
    return format_time(max(at, datetime.now(UTC)))


def _violation_key(body: str) -> tuple[object, object]:
    try:
        data = json.loads(body)
    except ValueError:
        return (None, None)
    return (data.get("rule"), data.get("message")) if isinstance(data, dict) else (None, None)


def event_statement(
    at: str,
    kind: str,
    station: str | None,
    booking: str | None,
    body: dict[str, Any],
    person: str | None = None,
) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO plan_events (at, kind, station, booking, person, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at, kind, station, booking, person, json.dumps(body, ensure_ascii=False)),
    )


def _assignment_json(assignment: Assignment) -> dict[str, str]:
    return {
        "kind": assignment.kind.value,
        "room": assignment.room,
        "start": iso(assignment.start),
        "end": iso(assignment.end),
    }


def _refusal(placement: Placement) -> str:
    rules = sorted({u.rule for u in placement.unassigned})
    people = ", ".join(f"{u.person} ({u.rule}: {u.reason})" for u in placement.unassigned)
    return f"cannot place every person without breaking {', '.join(rules)}: {people}"


def _not_past(request: BookingIn, now: datetime) -> None:
    """A booking for a time gone by is a mistake to say so, not a request the rooms refuse."""
    if request.expected_arrival < now - PAST_TOLERANCE:
        raise PlanningError(
            ErrorKind.INVALID,
            f"expected_arrival: {format_time(request.expected_arrival)} is in the past "
            f"(now {format_time(now)}); a unit already here is booked with walk_in and "
            "expected_arrival now",
        )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return str(exc)


def _rooms(conn: sqlite3.Connection) -> list[PlanRoom]:
    return [
        PlanRoom(
            r[0],
            RoomType(r[1]),
            int(r[2]),
            frozenset(Equipment(e) for e in json.loads(r[3])),
            r[4] == RoomState.IN_SERVICE.value,
        )
        for r in conn.execute("SELECT id, type, capacity, equipment, state FROM rooms")
    ]


def _planning_booking(
    booking_id: str, station: str, body: str, arrived_at: str | None, eta: str | None = None
) -> Booking:
    """The booking as the plan uses it: arriving when it arrived, or when its van will."""
    booking = BookingIn.model_validate_json(body).to_booking(booking_id, station)
    actual = arrived_at or eta
    if actual:
        booking = replace(booking, expected_arrival=to_minute(_parse(actual)))
    return booking


def _stored_time(text: str | None) -> datetime | None:
    return None if not text else _parse(text)


def _booking_state(row: sqlite3.Row, persons: Iterable[sqlite3.Row]) -> BookingState:
    """The lifecycle state of a stored booking."""
    request = BookingIn.model_validate_json(row["body"])
    about = {p.id: p for p in request.to_booking(row["id"], row["station"]).persons}
    entered = row["entered_at"] is not None
    states = []
    for p in sorted(persons, key=lambda r: r["person"]):
        known = about.get(p["person"])
        guardian = None if known is None or known.guardian_at is None else known.guardian_at
        started = _stored_time(p["session_started_at"])
        ended = _stored_time(p["session_ended_at"])
        exited = _stored_time(p["exited_at"])
        states.append(
            PersonState(
                p["person"],
                lifecycle.person_status(entered, started, ended, exited),
                minor=known is not None and known.minor,
                guardian_at=None if guardian is None else from_minute(guardian),
                session_started_at=started,
                session_ended_at=ended,
                exited_at=exited,
            )
        )
    return BookingState(
        row["id"],
        BookingStatus(row["status"]),
        tuple(states),
        walk_in=bool(row["walk_in"]),
        arrived_at=_stored_time(row["arrived_at"]),
        verified_at=_stored_time(row["verified_at"]),
        entered_at=_stored_time(row["entered_at"]),
        closed_at=_stored_time(row["closed_at"]),
    )


def _state_statements(
    before: BookingState, after: BookingState, now: datetime
) -> list[tuple[str, tuple[Any, ...]]]:
    """The rows that store ``after`` where it differs from ``before``."""

    def stamp(moment: datetime | None) -> str | None:
        return None if moment is None else format_time(moment)

    statements: list[tuple[str, tuple[Any, ...]]] = []
    if before == after:
        return statements
    statements.append(
        (
            "UPDATE bookings SET status = ?, arrived_at = ?, verified_at = ?, entered_at = ?, "
            "closed_at = ?, updated_at = ? WHERE id = ?",
            (
                after.status.value,
                stamp(after.arrived_at),
                stamp(after.verified_at),
                stamp(after.entered_at),
                stamp(after.closed_at),
                format_time(now),
                after.id,
            ),
        )
    )
    old = {p.id: p for p in before.persons}
    for person in after.persons:
        if old.get(person.id) == person:
            continue
        statements.append(
            (
                "UPDATE booking_persons SET session_started_at = ?, session_ended_at = ?, "
                "exited_at = ? WHERE booking = ? AND person = ?",
                (
                    stamp(person.session_started_at),
                    stamp(person.session_ended_at),
                    stamp(person.exited_at),
                    after.id,
                    person.id,
                ),
            )
        )
    return statements
