"""The people in the centre's care: plan, custody clock, band and open alarms of each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from central import persons as roster
from central import presence
from central.api.deps import DbDep, SettingsDep, require_roles
from central.auth import Principal, Role
from central.planning import PlanningService, iso
from scheduling.custody import WHO_IS_TOLD

router = APIRouter(prefix="/api/v1", tags=["persons"])
# Persons are personal data: stations (their own), centre and admin; never operations.
PersonReader = Annotated[Principal, require_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]


class PlannedSession(BaseModel):
    room: str
    start: str
    end: str


class CustodyClock(BaseModel):
    legal_basis: str
    brought_in_at: str
    deadline: str
    remaining_minutes: int
    projected_end: str | None
    level: str = Field(description="green, yellow, orange, red or black")
    told: str


class BandState(BaseModel):
    band: str
    bound_at: str
    room: str | None = Field(
        description="the room whose scanner heard the band last and strongest; null when no "
        "scanner that covers a room heard it within presence_missed intervals"
    )
    heard_by: str | None = Field(description="the agent whose scanner placed it")
    rssi: float | None
    last_heard: str | None = Field(description="the latest advertisement or value from it")
    heart_rate: int | None
    heart_rate_at: str | None
    battery: int | None = Field(description="percent")
    battery_at: str | None


class OpenAlarm(BaseModel):
    id: int
    kind: str
    severity: str
    state: str
    raised_at: str
    count: int


class PersonOut(BaseModel):
    booking: str
    person: str
    station: str
    case_id: str
    role: str
    minor: bool
    sex: str
    booking_status: str
    in_area: bool
    entered_at: str | None
    session_started_at: str | None
    session_ended_at: str | None
    planned_session: PlannedSession | None
    waiting_room: str | None
    unassigned_rule: str | None
    custody: CustodyClock | None = Field(description="null for a basis without a time limit")
    band: BandState | None
    alarms: list[OpenAlarm] = Field(description="the active alarms naming this person")


def _out(view: roster.PersonView) -> PersonOut:
    entry = view.entry
    clock = entry.clock
    session = roster.planned(entry)
    band = view.band
    return PersonOut(
        booking=entry.booking,
        person=entry.person.id,
        station=entry.station,
        case_id=entry.case_id,
        role=entry.person.role.value,
        minor=entry.person.minor,
        sex=entry.person.sex.value,
        booking_status=view.booking_status,
        in_area=view.inside,
        entered_at=view.entered_at,
        session_started_at=view.session_started_at,
        session_ended_at=view.session_ended_at,
        planned_session=None if session is None else PlannedSession(**session),
        waiting_room=None if entry.waiting is None else entry.waiting.room,
        unassigned_rule=None if entry.unassigned is None else entry.unassigned.rule,
        custody=None
        if clock is None
        else CustodyClock(
            legal_basis=entry.person.legal_basis.value,
            brought_in_at=iso(clock.brought_in_at),
            deadline=iso(clock.deadline),
            remaining_minutes=clock.remaining_minutes,
            projected_end=None if clock.projected_end is None else iso(clock.projected_end),
            level=clock.level.value,
            told=WHO_IS_TOLD[clock.level],
        ),
        band=None
        if band is None
        else BandState(
            band=band.band,
            bound_at=band.bound_at,
            room=band.room,
            heard_by=band.heard_by,
            rssi=band.rssi,
            last_heard=band.last_heard,
            heart_rate=band.heart_rate,
            heart_rate_at=band.heart_rate_at,
            battery=band.battery,
            battery_at=band.battery_at,
        ),
        alarms=[
            OpenAlarm(
                id=a.id,
                kind=a.kind,
                severity=a.severity,
                state=a.state,
                raised_at=a.raised_at,
                count=a.count,
            )
            for a in view.alarms
        ],
    )


@router.get("/persons")
def list_persons(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: PersonReader,
    in_area: Annotated[
        bool | None,
        Query(
            description="true: only those inside the handling area; false: only those not "
            "(yet) inside; left out: every person of an open booking who has not exited"
        ),
    ] = None,
) -> list[PersonOut]:
    """The people in the centre's care, the nearest legal limit first: the custody wall."""
    service: PlanningService = request.app.state.planning
    now = datetime.now(UTC)
    policy = presence.PresencePolicy(
        timedelta(seconds=settings.presence_interval), settings.presence_missed
    )
    station = principal.station or "" if principal.role is Role.STATION else None
    views = roster.persons(db, service.roster(now), now, policy, station, in_area)
    return [_out(v) for v in views]
