"""Agents: online state from birth and will, what was stored per epoch, and the gaps in each.

An agent's *epoch* is the identity of its outbox file; a wiped agent starts a new one and numbers
from 1 again. ``last_seq``, ``received``, ``missing`` and ``gaps`` at the top level are those of
the current epoch; ``epochs`` lists every epoch, the current one first. Readings numbered without
an epoch (an agent of the previous release, or stored before schema version 5) show
``epoch: null``.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from central.api.deps import DbDep, PrincipalDep
from central.auth import Principal, Role
from central.gaps import gap_ranges
from central.store import LEGACY_EPOCH

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

# Gap listing is for people; past this many ranges the agent is plainly in trouble.
MAX_GAP_RANGES = 100
# Epochs listed per agent, newest first; each is a wiped or replaced disk.
MAX_EPOCHS = 20

_COLUMNS = (
    "a.agent, a.station, a.online, a.session, a.connection, a.status_time, a.status_reason, "
    "a.first_seen, a.last_seen, a.epoch, coalesce(e.first_seq, 1), coalesce(e.last_seq, 0), "
    "coalesce(e.received, 0), h.taken_at, h.received_at, h.outbox_depth, "
    "h.outbox_oldest_age_seconds, h.disk_full, h.certificate_expires"
)
_FROM = (
    "agents a LEFT JOIN agent_epochs e ON e.agent = a.agent AND e.epoch = a.epoch "
    "LEFT JOIN agent_health h ON h.agent = a.agent"
)


class AgentHealthPublic(BaseModel):
    """The agent's latest health report (docs/protocol.md, *Health*), as the agent said it."""

    time: str = Field(description="When the agent took the report (its clock).")
    received_at: str = Field(description="When the centre stored it.")
    outbox_depth: int = Field(description="Messages not yet acknowledged by the broker.")
    outbox_oldest_age_seconds: float
    disk_full: bool
    certificate_expires: str | None = Field(description="null: no client certificate.")


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
    epoch: str | None = Field(description="The current epoch; null: numbered without one.")
    last_seq: int
    received: int
    missing: int
    health: AgentHealthPublic | None = Field(
        description="The latest health report; null: none received (an older agent)."
    )


class EpochPublic(BaseModel):
    epoch: str | None = Field(description="null: numbered without an epoch (previous release).")
    current: bool
    first_seq: int
    last_seq: int
    received: int
    missing: int
    first_seen: str | None
    last_seen: str | None
    replaced_at: str | None = Field(description="When a newer epoch became current.")
    gaps: list[tuple[int, int]]
    gaps_truncated: bool


class AgentDetail(AgentSummary):
    gaps: list[tuple[int, int]]
    gaps_truncated: bool
    epochs: list[EpochPublic]
    epochs_truncated: bool


def _public_epoch(epoch: object) -> str | None:
    return None if epoch is None or epoch == LEGACY_EPOCH else str(epoch)


def _missing(first_seq: int, last_seq: int, received: int) -> int:
    return max(0, last_seq - first_seq + 1 - received)


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
        epoch,
        first_seq,
        last_seq,
        received,
        *health,
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
        epoch=_public_epoch(epoch),
        last_seq=int(str(last_seq)),
        received=int(str(received)),
        missing=_missing(int(str(first_seq)), int(str(last_seq)), int(str(received))),
        health=_health(health),
    )


def _health(columns: list[object]) -> AgentHealthPublic | None:
    taken_at, received_at, depth, age, disk_full, expires = columns
    if not isinstance(taken_at, str) or not isinstance(received_at, str):
        return None
    return AgentHealthPublic(
        time=taken_at,
        received_at=received_at,
        outbox_depth=int(str(depth)),
        outbox_oldest_age_seconds=float(str(age)),
        disk_full=bool(disk_full),
        certificate_expires=expires if isinstance(expires, str) else None,
    )


def _visible(principal: Principal, station: str | None) -> bool:
    return principal.role is not Role.STATION or principal.may_see_station(station)


def _gaps(
    db: sqlite3.Connection, agent: str, epoch: str, first_seq: int, missing: int
) -> tuple[list[tuple[int, int]], bool]:
    if not missing:
        return [], False
    gaps = gap_ranges(db, agent, epoch, above=first_seq - 1, limit=MAX_GAP_RANGES + 1)
    return gaps[:MAX_GAP_RANGES], len(gaps) > MAX_GAP_RANGES


@router.get("")
def list_agents(db: DbDep, principal: PrincipalDep) -> list[AgentSummary]:
    if principal.role is Role.STATION:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.station = ? ORDER BY a.agent",  # noqa: S608 - constant columns
            (principal.station,),
        )
    else:
        rows = db.execute(f"SELECT {_COLUMNS} FROM {_FROM} ORDER BY a.agent")  # noqa: S608
    return [_summary(row) for row in rows]


@router.get("/{agent_id}")
def get_agent(
    db: DbDep,
    principal: PrincipalDep,
    agent_id: Annotated[str, Path(max_length=64)],
) -> AgentDetail:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.agent = ?",  # noqa: S608 - constant columns
        (agent_id,),
    ).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent {agent_id!r}")
    summary = _summary(row)
    if not _visible(principal, summary.station):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "agent belongs to another station")
    current = row[9]
    epochs: list[EpochPublic] = []
    rows = db.execute(
        "SELECT epoch, first_seq, last_seq, received, first_seen, last_seen, replaced_at "
        "FROM agent_epochs WHERE agent = ? "
        "ORDER BY epoch IS NOT ?, replaced_at IS NOT NULL, replaced_at DESC, first_seen DESC "
        "LIMIT ?",
        (agent_id, current, MAX_EPOCHS + 1),
    ).fetchall()
    for epoch, first_seq, last_seq, received, first_seen, last_seen, replaced_at in rows[
        :MAX_EPOCHS
    ]:
        missing = _missing(first_seq, last_seq, received)
        gaps, truncated = _gaps(db, agent_id, epoch, first_seq, missing)
        epochs.append(
            EpochPublic(
                epoch=_public_epoch(epoch),
                current=epoch == current,
                first_seq=first_seq,
                last_seq=last_seq,
                received=received,
                missing=missing,
                first_seen=first_seen,
                last_seen=last_seen,
                replaced_at=replaced_at,
                gaps=gaps,
                gaps_truncated=truncated,
            )
        )
    current_epoch = next((e for e in epochs if e.current), None)
    return AgentDetail(
        **summary.model_dump(),
        gaps=current_epoch.gaps if current_epoch else [],
        gaps_truncated=current_epoch.gaps_truncated if current_epoch else False,
        epochs=epochs,
        epochs_truncated=len(rows) > MAX_EPOCHS,
    )
