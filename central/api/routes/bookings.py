"""Bookings: create (answered with the plan), read, change, cancel, and the arrival lifecycle."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from central.api.booking_models import (
    AssignmentOut,
    BookingIn,
    BookingOut,
    BookingPatch,
    PersonProgress,
    UnassignedOut,
)
from central.api.deps import DbDep, actor_of, require_roles
from central.api.fields import Instant, Text
from central.api.problems import BookingRefusal, ProblemError
from central.audit import Actor
from central.auth import Principal, Role
from central.booking_record import BookingRecord
from central.planning import ErrorKind, PlanningError, PlanningService
from scheduling.lifecycle import BookingStatus

router = APIRouter(
    prefix="/api/v1/bookings",
    tags=["bookings"],
    responses={
        409: {
            "description": "The plan cannot take it (`persons`: the rule each person broke, "
            "H1-H10; `suggested_arrival`; `partial_plan`: who fits now and the others from "
            "when), or the step is not allowed in the booking's or the person's current "
            "state (`state` names it, and so does `detail`)",
            "model": BookingRefusal,
        }
    },
)

BookingId = Annotated[str, Path(max_length=64, pattern=r"^bk-[0-9a-f]{12}$")]
PersonId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
# Bookings hold personal data (who, sex, age, legal basis): operations staff do not read them.
Booker = Annotated[Principal, require_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]


class Moment(BaseModel):
    """When a step happened; now if left out (the door terminal's clock may lag)."""

    model_config = ConfigDict(extra="forbid")

    at: Instant | None = None

    def moment(self) -> datetime:
        return self.at or datetime.now(UTC)


class Verification(Moment):
    code: Text = Field(min_length=4, max_length=16)


class EntryOut(BaseModel):
    id: str
    arrival_to_entry_seconds: float


def planning(request: Request) -> PlanningService:
    service: PlanningService = request.app.state.planning
    return service


STATUS_OF = {
    ErrorKind.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorKind.CONFLICT: status.HTTP_409_CONFLICT,
    ErrorKind.INVALID: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ErrorKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
}


def answer(exc: PlanningError) -> HTTPException:
    code = STATUS_OF[exc.kind]
    if exc.state is not None:
        # An illegal lifecycle step: the detail names the state, and so does ``state``.
        return ProblemError(code, exc.message, state=exc.state)
    if exc.detail is None:
        return HTTPException(code, exc.message)
    # When coming later would let every person in: what the station can book instead.
    if exc.partial_plan is None:
        return ProblemError(
            code, exc.message, persons=exc.detail, suggested_arrival=exc.suggested_arrival
        )
    # A booking refused whole: also who fits now and, for the others, from when.
    return ProblemError(
        code,
        exc.message,
        persons=exc.detail,
        suggested_arrival=exc.suggested_arrival,
        partial_plan=exc.partial_plan,
    )


def load_booking(
    db: sqlite3.Connection, booking_id: str, principal: Principal, with_request: bool = True
) -> BookingOut:
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT * FROM bookings WHERE id = ?", (booking_id,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no booking {booking_id!r}")
    if not principal.may_see_station(row["station"]):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "booking belongs to another station")
    assignments = [
        AssignmentOut(
            booking=r["booking"],
            person=r["person"],
            kind=r["kind"],
            room=r["room"],
            start=r["start"],
            end=r["end"],
        )
        for r in db.execute(
            "SELECT * FROM assignments WHERE booking = ? ORDER BY start, person", (booking_id,)
        )
    ]
    persons = db.execute(
        "SELECT * FROM booking_persons WHERE booking = ? ORDER BY person", (booking_id,)
    ).fetchall()
    unassigned = [
        UnassignedOut(
            person=r["person"], rule=r["unassigned_rule"], reason=r["unassigned_reason"] or ""
        )
        for r in persons
        if r["unassigned_rule"]
    ]
    progress = [
        PersonProgress(
            id=r["person"],
            session_started_at=r["session_started_at"],
            session_ended_at=r["session_ended_at"],
            exited_at=r["exited_at"],
        )
        for r in persons
    ]
    return BookingOut(
        id=row["id"],
        code=row["code"],
        station=row["station"],
        case_id=row["case_id"],
        status=row["status"],
        walk_in=bool(row["walk_in"]),
        expected_arrival=row["expected_arrival"],
        eta=row["eta"],
        arrived_at=row["arrived_at"],
        verified_at=row["verified_at"],
        entered_at=row["entered_at"],
        assignments=assignments,
        unassigned=unassigned,
        persons=progress,
        request=BookingIn.from_record(BookingRecord.from_json(row["body"]))
        if with_request
        else None,
    )


def _owned(db: sqlite3.Connection, booking_id: str, principal: Principal) -> None:
    row = db.execute("SELECT station FROM bookings WHERE id = ?", (booking_id,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no booking {booking_id!r}")
    if not principal.may_see_station(row[0]):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "booking belongs to another station")


def act(
    request: Request,
    db: sqlite3.Connection,
    principal: Principal,
    booking_id: str,
    step: Callable[[PlanningService, Actor], object],
) -> BookingOut:
    """A change to one booking by someone allowed to act on it, answered with the booking; the
    step gets the service and who acts, for the audit log."""
    _owned(db, booking_id, principal)
    try:
        step(planning(request), actor_of(request, principal))
    except PlanningError as exc:
        raise answer(exc) from None
    return load_booking(db, booking_id, principal, with_request=False)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_booking(request: Request, db: DbDep, principal: Booker, body: BookingIn) -> BookingOut:
    if principal.role is Role.STATION:
        if body.station is not None and body.station != principal.station:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "a station books for its own station only"
            )
        station = principal.station
    else:
        station = body.station
    if station is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "station: required when the centre books for a station",
        )
    try:
        booking_id = planning(request).create(
            body.to_record(),
            station,
            f"{principal.role}:{principal.name}",
            actor=actor_of(request, principal),
        )
    except PlanningError as exc:
        raise answer(exc) from None
    return load_booking(db, booking_id, principal, with_request=False)


@router.post("/verify")
def verify_by_code(
    request: Request, db: DbDep, principal: Booker, body: Verification
) -> BookingOut:
    """The fast lane at the door: the unit gives its booking code, nothing else."""
    row = db.execute(
        "SELECT id FROM bookings WHERE code = ?", (body.code.strip().upper(),)
    ).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no booking with this code")
    booking_id = str(row[0])
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.verified(booking_id, body.code, body.moment(), actor=actor),
    )


@router.get("")
def list_bookings(
    db: DbDep,
    principal: Booker,
    status_filter: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[BookingOut]:
    clauses, args = [], []
    if principal.role is Role.STATION:
        clauses.append("station = ?")
        args.append(principal.station)
    if status_filter is not None:
        clauses.append("status = ?")
        args.append(status_filter)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    ids = [
        r[0]
        for r in db.execute(
            f"SELECT id FROM bookings {where} ORDER BY expected_arrival DESC LIMIT ?",  # noqa: S608
            (*args, limit),
        )
    ]
    return [load_booking(db, booking_id, principal, with_request=False) for booking_id in ids]


@router.get("/{booking_id}")
def get_booking(db: DbDep, principal: Booker, booking_id: BookingId) -> BookingOut:
    return load_booking(db, booking_id, principal)


@router.patch("/{booking_id}")
def update_booking(
    request: Request, db: DbDep, principal: Booker, booking_id: BookingId, body: BookingPatch
) -> BookingOut:
    act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.update(booking_id, body.to_change(), actor=actor),
    )
    return load_booking(db, booking_id, principal)


@router.delete("/{booking_id}")
def cancel_booking(
    request: Request, db: DbDep, principal: Booker, booking_id: BookingId
) -> BookingOut:
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.close(booking_id, BookingStatus.CANCELLED, actor=actor),
    )


@router.post("/{booking_id}/no-show")
def no_show(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    body: Moment | None = None,
) -> BookingOut:
    at = (body or Moment()).moment()
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.close(booking_id, BookingStatus.NO_SHOW, at, actor=actor),
    )


@router.post("/{booking_id}/arrived")
def arrived(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    body: Moment | None = None,
) -> BookingOut:
    at = (body or Moment()).moment()
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.arrived(booking_id, at, actor=actor),
    )


@router.post("/{booking_id}/verified")
def verified(
    request: Request, db: DbDep, principal: Booker, booking_id: BookingId, body: Verification
) -> BookingOut:
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.verified(booking_id, body.code, body.moment(), actor=actor),
    )


@router.post("/{booking_id}/entered")
def entered(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    body: Moment | None = None,
) -> EntryOut:
    _owned(db, booking_id, principal)
    try:
        seconds = planning(request).entered(
            booking_id, (body or Moment()).moment(), actor=actor_of(request, principal)
        )
    except PlanningError as exc:
        raise answer(exc) from None
    return EntryOut(id=booking_id, arrival_to_entry_seconds=seconds)


@router.post("/{booking_id}/persons/{person}/session-started")
def session_started(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    person: PersonId,
    body: Moment | None = None,
) -> BookingOut:
    at = (body or Moment()).moment()
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.session_started(booking_id, person, at, actor=actor),
    )


@router.post("/{booking_id}/persons/{person}/session-ended")
def session_ended(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    person: PersonId,
    body: Moment | None = None,
) -> BookingOut:
    at = (body or Moment()).moment()
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.session_ended(booking_id, person, at, actor=actor),
    )


@router.post("/{booking_id}/persons/{person}/exited")
def exited(
    request: Request,
    db: DbDep,
    principal: Booker,
    booking_id: BookingId,
    person: PersonId,
    body: Moment | None = None,
) -> BookingOut:
    at = (body or Moment()).moment()
    return act(
        request,
        db,
        principal,
        booking_id,
        lambda service, actor: service.exited(booking_id, person, at, actor=actor),
    )
