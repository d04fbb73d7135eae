"""Agents: online state from birth and will, what was stored, and the gaps in each sequence."""

from __future__ import annotations

import sqlite3
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel

from central.api.deps import DbDep, PrincipalDep
from central.auth import Principal, Role
from central.gaps import gap_ranges

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

# Gap listing is for people; past this many ranges the agent is plainly in trouble.
MAX_GAP_RANGES = 100

_COLUMNS = (
    "agent, station, online, session, connection, status_time, status_reason, "
    "first_seen, last_seen, last_seq, received"
)


class AgentSummary(BaseModel):
    id: str
    station: str | None
    online: bool
    session: int
    connection: int
    status_time: str | None
    status_reason: str | None
    first_seen: str | None
    last_seen: str | None
    last_seq: int
    received: int
    missing: int


class AgentDetail(AgentSummary):
    gaps: list[tuple[int, int]]
    gaps_truncated: bool


def _summary(row: sqlite3.Row | tuple[object, ...]) -> AgentSummary:
    (
        agent,
        station,
        online,
        session,
        connection,
        status_time,
        status_reason,
        first_seen,
        last_seen,
        last_seq,
        received,
    ) = row
    return AgentSummary(
        id=str(agent),
        station=station if isinstance(station, str) else None,
        online=bool(online),
        session=int(str(session)),
        connection=int(str(connection)),
        status_time=status_time if isinstance(status_time, str) else None,
        status_reason=status_reason if isinstance(status_reason, str) else None,
        first_seen=first_seen if isinstance(first_seen, str) else None,
        last_seen=last_seen if isinstance(last_seen, str) else None,
        last_seq=int(str(last_seq)),
        received=int(str(received)),
        missing=int(str(last_seq)) - int(str(received)),
    )


def _visible(principal: Principal, station: str | None) -> bool:
    return principal.role is not Role.STATION or principal.may_see_station(station)


@router.get("")
def list_agents(db: DbDep, principal: PrincipalDep) -> list[AgentSummary]:
    if principal.role is Role.STATION:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM agents WHERE station = ? ORDER BY agent",  # noqa: S608 - constant columns
            (principal.station,),
        )
    else:
        rows = db.execute(f"SELECT {_COLUMNS} FROM agents ORDER BY agent")  # noqa: S608
    return [_summary(row) for row in rows]


@router.get("/{agent_id}")
def get_agent(
    db: DbDep,
    principal: PrincipalDep,
    agent_id: Annotated[str, Path(max_length=64)],
) -> AgentDetail:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM agents WHERE agent = ?",  # noqa: S608 - constant columns
        (agent_id,),
    ).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    summary = _summary(row)
    if not _visible(principal, summary.station):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agent belongs to another station")
    gaps = gap_ranges(db, agent_id, limit=MAX_GAP_RANGES + 1) if summary.missing else []
    return AgentDetail(
        **summary.model_dump(),
        gaps=gaps[:MAX_GAP_RANGES],
        gaps_truncated=len(gaps) > MAX_GAP_RANGES,
    )
