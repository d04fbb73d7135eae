"""Wristbands on people: bound at entry, unbound by hand (and by the centre at exit)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from central import bands
from central.api.deps import WriteDbDep, actor_of
from central.api.problems import Problem, ProblemError
from central.api.routes.bookings import Booker, BookingId, PersonId
from central.auth import Principal, Role
from central.store import write_transaction

router = APIRouter(prefix="/api/v1/bookings", tags=["bands"])

BandId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]


class BandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    band: BandId = Field(description="the wristband's device id, as its readings name it")


class BandHolder(BaseModel):
    band: str
    booking: str
    person: str


class BandRefusal(Problem):
    """A band that cannot go on: who holds it, or which band the person already wears."""

    holder: BandHolder | None = Field(
        default=None, description="who holds the band, or which band the person already wears"
    )


class BandBinding(BaseModel):
    band: str
    booking: str
    person: str
    station: str
    bound_at: str
    bound_by: str = Field(description="`role:name` of who bound it")
    unbound_at: str | None
    unbound_by: str | None
    unbound_reason: str | None = Field(
        description="`removed` (by hand), `exited` (at the person's exit) or `closed`"
    )


def _out(binding: bands.Binding) -> BandBinding:
    return BandBinding(
        band=binding.band,
        booking=binding.booking,
        person=binding.person,
        station=binding.station,
        bound_at=binding.bound_at,
        bound_by=binding.bound_by,
        unbound_at=binding.unbound_at,
        unbound_by=binding.unbound_by,
        unbound_reason=binding.unbound_reason,
    )


def _owned(db: sqlite3.Connection, booking_id: str, principal: Principal) -> None:
    row = db.execute("SELECT station FROM bookings WHERE id = ?", (booking_id,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no booking {booking_id!r}")
    if not principal.may_see_station(row[0]):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "booking belongs to another station")


def _scope(principal: Principal) -> str | None:
    return principal.station or "" if principal.role is Role.STATION else None


_REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The band is on someone else, the person already wears another band, "
        "or the person or booking cannot take one now (`holder` names the band and who "
        "wears it)",
        "model": BandRefusal,
    }
}


@router.post(
    "/{booking_id}/persons/{person}/band",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The person already wears this band"}, **_REFUSALS},
)
def bind_band(
    request: Request,
    response: Response,
    db: WriteDbDep,
    principal: Booker,
    booking_id: BookingId,
    person: PersonId,
    body: BandIn,
) -> BandBinding:
    """Put a band on a person (at entry): one band per person and one person per band."""
    _owned(db, booking_id, principal)
    try:
        with write_transaction(db):
            binding, new = bands.bind(
                db,
                booking_id,
                person,
                body.band,
                actor_of(request, principal),
                datetime.now(UTC),
                _scope(principal),
            )
    except bands.BookingNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
    except bands.BindingConflictError as exc:
        raise ProblemError(status.HTTP_409_CONFLICT, exc.message, holder=exc.holder) from None
    if not new:
        response.status_code = status.HTTP_200_OK
    return _out(binding)


@router.delete("/{booking_id}/persons/{person}/band")
def unbind_band(
    request: Request,
    db: WriteDbDep,
    principal: Booker,
    booking_id: BookingId,
    person: PersonId,
) -> BandBinding:
    """Take a person's band off; answered with the ended binding."""
    _owned(db, booking_id, principal)
    try:
        with write_transaction(db):
            binding = bands.unbind(
                db,
                booking_id,
                person,
                actor_of(request, principal),
                datetime.now(UTC),
                station_scope=_scope(principal),
            )
    except bands.BookingNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
    return _out(binding)
