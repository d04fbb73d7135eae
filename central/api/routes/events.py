"""Stored data messages, filtered by agent, kind and class, in stable cursor pages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from central.api.deps import DbDep, PrincipalDep
from central.auth import Role
from edge_agent.wire import MessageClass

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class EventPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    agent: str
    epoch: str | None = Field(
        description="The agent's outbox epoch; null: numbered without one (previous release)."
    )
    seq: int
    session: int
    message_class: str = Field(serialization_alias="class")
    device: str
    kind: str
    time: str
    received_at: str
    body: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this page is the last."
    )


@router.get("", response_model_by_alias=True)
def list_events(
    db: DbDep,
    principal: PrincipalDep,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    message_class: Annotated[MessageClass | None, Query(alias="class")] = None,
    # A stored id: 18 digits stay below SQLite's 64-bit integer limit.
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    if principal.role is Role.OPS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role ops may not read message contents")
    sql = [
        "SELECT e.id, e.agent, e.seq, e.session, e.class, e.device, e.kind, e.time, "
        "e.received_at, e.body, e.epoch FROM events e"
    ]
    args: list[Any] = []
    if principal.role is Role.STATION:
        if agent is not None:
            row = db.execute("SELECT station FROM agents WHERE agent = ?", (agent,)).fetchone()
            if row is not None and row[0] != principal.station:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "agent belongs to another station")
        sql.append("JOIN agents a ON a.agent = e.agent AND a.station = ?")
        args.append(principal.station)
    sql.append("WHERE e.id > ?")
    args.append(int(cursor) if cursor else 0)
    for column, value in (
        ("e.agent", agent),
        ("e.kind", kind),
        ("e.class", message_class.value if message_class else None),
    ):
        if value is not None:
            sql.append(f"AND {column} = ?")
            args.append(value)
    sql.append("ORDER BY e.id LIMIT ?")
    args.append(limit + 1)
    rows = db.execute(" ".join(sql), args).fetchall()
    items = [
        EventPublic(
            id=r[0],
            agent=r[1],
            epoch=r[10] or None,
            seq=r[2],
            session=r[3],
            message_class=r[4],
            device=r[5],
            kind=r[6],
            time=r[7],
            received_at=r[8],
            body=json.loads(r[9]),
        )
        for r in rows[:limit]
    ]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return EventPage(items=items, next_cursor=next_cursor)
