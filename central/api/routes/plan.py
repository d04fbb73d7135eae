"""The plan as officers read it: a day's schedule, custody clocks, the fast-lane report, and the
plan changes the stations are told about."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from central.api.deps import DbDep, PrincipalDep, ZoneDep, require_roles
from central.api.query_times import QueryTime, day_of, lower_bound, upper_bound
from central.auth import Principal, Role
from central.planning import PlanningService, iso
from edge_agent.wire import format_time
from monitoring.figures import nearest_rank
from scheduling.custody import WHO_IS_TOLD

router = APIRouter(prefix="/api/v1", tags=["plan"])
# The schedule, clocks and plan events name persons: stations, centre and admin only. The
# fast-lane report is figures only, for operations too.
CaseReader = Annotated[Principal, require_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]


class ScheduleEntry(BaseModel):
    booking: str
    station: str
    person: str
    kind: str
    room: str
    start: str = Field(description="as planned now (a session that started: when it started)")
    end: str
    actual_start: str | None = Field(
        default=None, description="a session's recorded start; null until it starts"
    )
    actual_end: str | None = Field(
        default=None, description="a session's recorded end; null until it ends"
    )


class CustodyOut(BaseModel):
    booking: str
    person: str
    station: str
    legal_basis: str
    brought_in_at: str
    deadline: str
    elapsed_minutes: int
    remaining_minutes: int
    projected_end: str | None
    level: str
    told: str


class LaneFigures(BaseModel):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class FastLaneReport(BaseModel):
    start: str
    end: str
    booked: LaneFigures
    walk_in: LaneFigures


class PlanEvent(BaseModel):
    id: int
    at: str
    kind: str
    station: str | None
    booking: str | None
    person: str | None
    body: dict[str, Any]


@router.get("/schedule")
def schedule(
    db: DbDep,
    principal: CaseReader,
    zone: ZoneDep,
    day: Annotated[
        QueryTime,
        Query(
            alias="date",
            description="A day of the centre's time zone, or a date-time with an offset: "
            "the centre's day it falls on",
        ),
    ],
) -> list[ScheduleEntry]:
    """Every assignment starting on ``date`` in the centre's time zone."""
    start = lower_bound(day_of(day, zone), zone)
    end = upper_bound(day_of(day, zone), zone)
    # A session's actual start and end beside the planned ones: the wall draws both.
    query = (
        "SELECT a.booking, b.station, a.person, a.kind, a.room, a.start, a.end, "
        "CASE WHEN a.kind = 'session' THEN p.session_started_at END, "
        "CASE WHEN a.kind = 'session' THEN p.session_ended_at END "
        "FROM assignments a JOIN bookings b ON b.id = a.booking "
        "LEFT JOIN booking_persons p ON p.booking = a.booking AND p.person = a.person "
        "WHERE a.start >= ? AND a.start < ? AND b.status NOT IN ('cancelled', 'no_show')"
    )
    args: list[Any] = [format_time(start), format_time(end)]
    if principal.role is Role.STATION:
        query += " AND b.station = ?"
        args.append(principal.station)
    rows = db.execute(query + " ORDER BY a.start, a.room", args).fetchall()
    return [
        ScheduleEntry(
            booking=r[0],
            station=r[1],
            person=r[2],
            kind=r[3],
            room=r[4],
            start=r[5],
            end=r[6],
            actual_start=r[7],
            actual_end=r[8],
        )
        for r in rows
    ]


@router.get("/custody")
def custody(request: Request, principal: CaseReader) -> list[CustodyOut]:
    """Every person in custody, the nearest legal limit first."""
    service: PlanningService = request.app.state.planning
    return [
        CustodyOut(
            booking=e.booking,
            person=e.person,
            station=e.station,
            legal_basis=e.legal_basis,
            brought_in_at=iso(e.clock.brought_in_at),
            deadline=iso(e.clock.deadline),
            elapsed_minutes=e.clock.elapsed_minutes,
            remaining_minutes=e.clock.remaining_minutes,
            projected_end=None if e.clock.projected_end is None else iso(e.clock.projected_end),
            level=e.clock.level.value,
            told=WHO_IS_TOLD[e.clock.level],
        )
        for e in service.custody()
        if principal.may_see_station(e.station)
    ]


def _figures(values: list[float]) -> LaneFigures:
    if not values:
        return LaneFigures(count=0, median_seconds=None, p90_seconds=None)
    return LaneFigures(
        count=len(values),
        median_seconds=nearest_rank(values, 0.5),
        p90_seconds=nearest_rank(values, 0.9),
    )


@router.get("/reports/fast-lane")
def fast_lane(
    db: DbDep,
    principal: PrincipalDep,
    zone: ZoneDep,
    since: Annotated[
        QueryTime | None,
        Query(alias="from", description="A day (from its start) or a date-time with an offset"),
    ] = None,
    until: Annotated[
        QueryTime | None,
        Query(
            alias="to",
            description="A day (to its end: the whole day counts) or a date-time with an offset "
            "(exclusive); default now",
        ),
    ] = None,
) -> FastLaneReport:
    """Arrival -> entry, booked versus walk-in, for units that arrived in ``[from, to)``;
    default the last 7 days."""
    end = datetime.now(UTC) if until is None else upper_bound(until, zone)
    start = end - timedelta(days=7) if since is None else lower_bound(since, zone)
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from: must be before to")
    query = (
        "SELECT walk_in, arrived_at, entered_at FROM bookings WHERE arrived_at >= ? "
        "AND arrived_at < ? AND entered_at IS NOT NULL"
    )
    args: list[Any] = [format_time(start), format_time(end)]
    if principal.role is Role.STATION:
        query += " AND station = ?"
        args.append(principal.station)
    lanes: dict[bool, list[float]] = {True: [], False: []}
    for walk_in, arrived_at, entered_at in db.execute(query, args):
        seconds = (
            datetime.fromisoformat(entered_at) - datetime.fromisoformat(arrived_at)
        ).total_seconds()
        lanes[bool(walk_in)].append(max(0.0, seconds))
    return FastLaneReport(
        start=format_time(start),
        end=format_time(end),
        booked=_figures(lanes[False]),
        walk_in=_figures(lanes[True]),
    )


@router.get("/plan-events")
def plan_events(
    db: DbDep,
    principal: CaseReader,
    # SQLite integers are 64-bit: a larger id is no id at all.
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[PlanEvent]:
    """Plan changes, unplaceable persons and custody level changes, oldest first after ``after``
    (a station polls with the last id it saw)."""
    query = "SELECT id, at, kind, station, booking, person, body FROM plan_events WHERE id > ?"
    args: list[Any] = [after]
    if principal.role is Role.STATION:
        query += " AND station = ?"
        args.append(principal.station)
    rows = db.execute(query + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
    return [
        PlanEvent(
            id=r[0],
            at=r[1],
            kind=r[2],
            station=r[3],
            booking=r[4],
            person=r[5],
            body=json.loads(r[6]),
        )
        for r in rows
    ]
