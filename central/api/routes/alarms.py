"""Alarms: listed by state, station, kind and time; acknowledged with a note."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from central import alarms_store
from central.alarm_rules import ALARM_KINDS, PERSON_KINDS, AlarmState, Severity
from central.alarms_store import AlarmNotFoundError, AlreadyAcknowledgedError
from central.api.deps import DbDep, PrincipalDep, WriteDbDep, ZoneDep, actor_of
from central.api.fields import Text
from central.api.query_times import QueryTime, lower_bound
from central.audit import Actor
from central.auth import Principal, Role
from central.store import write_transaction
from edge_agent.wire import format_time

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

# 18 digits stay below SQLite's 2^63 integers.
AlarmId = Annotated[int, Path(ge=1, le=10**18 - 1)]
_KIND_PATTERN = "^(" + "|".join(ALARM_KINDS) + ")$"
# The plan's and the presence alarms are about bookings and persons: ops sees none of them, as
# it sees no bookings, clocks, plan events or persons.
_NOT_FOR_OPS = tuple(sorted(PERSON_KINDS))


def _hidden(principal: Principal) -> tuple[str, ...]:
    return _NOT_FOR_OPS if principal.role is Role.OPS else ()


class Alarm(BaseModel):
    id: int
    kind: str
    severity: Severity
    state: AlarmState
    agent: str = Field(description="empty for an alarm raised from the plan")
    epoch: str | None
    device: str | None
    band: str | None
    station: str | None
    person: str | None = Field(description="null for an ops token")
    booking: str | None = Field(description="null for an ops token")
    raised_at: str = Field(description="the reading time of what raised it")
    count: int = Field(description="raises while it was active (1: once)")
    last_at: str
    acked_by: str | None = Field(description="`role:name` of the token that acknowledged it")
    acked_at: str | None
    ack_note: str | None
    cleared_at: str | None
    source: str = Field(
        description="what raised it: `event:AGENT:EPOCH:SEQ`, `plan_event:ID` and the like"
    )
    body: dict[str, Any] | None = Field(
        default=None, description="the raising reading's body; absent for an ops token"
    )


class AlarmPage(BaseModel):
    items: list[Alarm]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this page is the last."
    )


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[Text, Field(min_length=1, max_length=500)]


def _body(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _alarm(row: sqlite3.Row | tuple[Any, ...], principal: Principal) -> Alarm:
    (
        alarm_id,
        kind,
        severity,
        state,
        agent,
        epoch,
        device,
        band,
        station,
        person,
        booking,
        raised_at,
        _derived_at,
        count,
        last_at,
        acked_by,
        acked_at,
        ack_note,
        cleared_at,
        source,
        body,
    ) = row
    ops = principal.role is Role.OPS
    return Alarm(
        id=alarm_id,
        kind=kind,
        severity=Severity(severity),
        state=AlarmState(state),
        agent=agent,
        epoch=epoch,
        device=device,
        band=band,
        station=station,
        person=None if ops else person,
        booking=None if ops else booking,
        raised_at=raised_at,
        count=count,
        last_at=last_at,
        acked_by=acked_by,
        acked_at=acked_at,
        ack_note=ack_note,
        cleared_at=cleared_at,
        source=source,
        **({} if ops else {"body": _body(body)}),
    )


_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


@router.get("", response_model_exclude_unset=True)
def list_alarms(
    db: DbDep,
    principal: PrincipalDep,
    zone: ZoneDep,
    state: Annotated[AlarmState | None, Query()] = None,
    station: Annotated[str | None, Query(max_length=64, pattern=_NAME)] = None,
    kind: Annotated[str | None, Query(max_length=64, pattern=_KIND_PATTERN)] = None,
    since: Annotated[
        QueryTime | None,
        Query(
            description="Raised at or after this: a date-time with an offset, or a day "
            "(from its start in the centre's time zone)"
        ),
    ] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlarmPage:
    """Oldest first. A station token sees only its own station's alarms; ops no alarm raised
    from the plan (custody clocks, plan violations, late vans)."""
    if principal.role is Role.STATION:
        if station is not None and station != principal.station:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "another station's alarms")
        station = principal.station or ""
    sql = [f"SELECT {alarms_store.COLUMNS} FROM alarms WHERE id > ?"]  # noqa: S608
    args: list[Any] = [int(cursor) if cursor else 0]
    for column, value in (
        ("state =", None if state is None else state.value),
        ("station =", station),
        ("kind =", kind),
        ("raised_at >=", None if since is None else format_time(lower_bound(since, zone))),
    ):
        if value is not None:
            sql.append(f"AND {column} ?")
            args.append(value)
    hidden = _hidden(principal)
    if hidden:
        sql.append(f"AND kind NOT IN ({', '.join('?' for _ in hidden)})")
        args.extend(hidden)
    sql.append("ORDER BY id LIMIT ?")
    args.append(limit + 1)
    rows = db.execute(" ".join(sql), args).fetchall()
    items = [_alarm(r, principal) for r in rows[:limit]]
    return AlarmPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


@router.post("/{alarm_id}/ack", response_model_exclude_unset=True)
def acknowledge_alarm(
    request: Request,
    db: WriteDbDep,
    principal: PrincipalDep,
    alarm_id: AlarmId,
    body: Acknowledgement,
) -> Alarm:
    """Acknowledge with a note (who and when are recorded, and go to the audit log)."""
    scope = principal.station or "" if principal.role is Role.STATION else None
    try:
        _acknowledge(
            db, alarm_id, actor_of(request, principal), body.note, scope, _hidden(principal)
        )
    except AlarmNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}") from None
    except AlreadyAcknowledgedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"alarm {alarm_id} {exc}") from None
    found = db.execute(
        f"SELECT {alarms_store.COLUMNS} FROM alarms WHERE id = ?",  # noqa: S608
        (alarm_id,),
    ).fetchone()
    return _alarm(found, principal)


def _acknowledge(
    db: sqlite3.Connection,
    alarm_id: int,
    actor: Actor,
    note: str,
    station: str | None,
    hidden: tuple[str, ...],
) -> None:
    with write_transaction(db):
        _visible(db, alarm_id, hidden)
        alarms_store.acknowledge(db, alarm_id, actor, note, datetime.now(UTC), station)


def _visible(db: sqlite3.Connection, alarm_id: int, hidden: tuple[str, ...]) -> None:
    """An alarm of a kind hidden from the token is not found, as if there were none."""
    found = db.execute("SELECT kind FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
    if found is not None and found[0] in hidden:
        raise AlarmNotFoundError(alarm_id)
