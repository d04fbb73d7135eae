"""The escort vans on the duty room's map: latest fix, recent track, the unit carried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from central import vans as van_reads
from central.api.deps import DbDep, SettingsDep, require_roles
from central.auth import Principal, Role
from central.planning import PlanningService

router = APIRouter(prefix="/api/v1", tags=["vans"])
# Where a van carrying people is: stations (their own vans), centre and admin; not operations.
VanReader = Annotated[Principal, require_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]


class Fix(BaseModel):
    time: str = Field(description="the fix time")
    lat: float
    lon: float
    speed_mps: float | None
    course: float | None


class TrackPoint(BaseModel):
    time: str
    lat: float
    lon: float


class Carried(BaseModel):
    booking: str
    station: str
    planned: str = Field(
        description="when the plan expects the unit (its stored ETA, or as booked)"
    )
    eta: str | None = Field(description="from the latest fix; null without centre_lat/centre_lon")
    distance_m: float | None
    late: bool = Field(description="ETA more than late_van_minutes after the planned time")


class VanOut(BaseModel):
    agent: str
    device: str
    station: str | None
    online: bool | None
    fix: Fix | None
    track: list[TrackPoint] = Field(description="oldest first, at most one point a second")
    booking: Carried | None = Field(description="the awaited booking this van carries")


@router.get("/vans")
def list_vans(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: VanReader,
    minutes: Annotated[int, Query(ge=1, le=24 * 60, description="track length")] = 15,
) -> list[VanOut]:
    """Every van's GPS: where it is, its track over the last ``minutes``, the unit it carries."""
    service: PlanningService = request.app.state.planning
    now = datetime.now(UTC)
    station = principal.station or "" if principal.role is Role.STATION else None
    found = van_reads.vans(
        db,
        service.van_states(),
        now,
        minutes,
        settings.van_rules(),
        timedelta(minutes=settings.late_van_minutes),
        station,
    )
    return [
        VanOut(
            agent=v.agent,
            device=v.device,
            station=v.station,
            online=v.online,
            fix=None if v.fix is None else Fix(**{k: v.fix[k] for k in Fix.model_fields}),
            track=[TrackPoint(time=p.time, lat=p.lat, lon=p.lon) for p in v.track],
            booking=None
            if v.booking is None
            else Carried(
                booking=v.booking.booking,
                station=v.booking.station,
                planned=v.booking.planned,
                eta=v.booking.eta,
                distance_m=v.booking.distance_m,
                late=v.booking.late,
            ),
        )
        for v in found
    ]
