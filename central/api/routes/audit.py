"""The audit log, for administrators: newest last, filtered, in stable cursor pages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from central.api.deps import DbDep, ZoneDep, require_roles
from central.api.query_times import QueryTime, lower_bound
from central.auth import Principal, Role
from edge_agent.wire import format_time

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Admin = Annotated[Principal, require_roles(Role.ADMIN)]


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    role: str
    source: str = Field(description="the client's address, `cli`, or `central`")
    action: str
    target: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this page is the last."
    )


@router.get("")
def list_audit(
    db: DbDep,
    _principal: Admin,
    zone: ZoneDep,
    since: Annotated[
        QueryTime | None,
        Query(
            description="Rows at or after this: a date-time with an offset, or a day "
            "(from its start in the centre's time zone)"
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z_]+(\.[a-z_]+)?$", examples=["room.changed"]),
    ] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    # 18 digits stay below SQLite's 2^63 integers.
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    sql = [
        "SELECT id, at, actor, role, source, action, target, detail, prev_hash, hash "
        "FROM audit WHERE id > ?"
    ]
    args: list[Any] = [int(cursor) if cursor else 0]
    for column, value in (
        ("at >=", None if since is None else format_time(lower_bound(since, zone))),
        ("action =", action),
        ("actor =", actor),
        ("target =", target),
    ):
        if value is not None:
            sql.append(f"AND {column} ?")
            args.append(value)
    sql.append("ORDER BY id LIMIT ?")
    args.append(limit + 1)
    rows = db.execute(" ".join(sql), args).fetchall()
    items = [
        AuditEntry(
            id=r[0],
            at=r[1],
            actor=r[2],
            role=r[3],
            source=r[4],
            action=r[5],
            target=r[6],
            detail=_detail(r[7]),
            prev_hash=r[8],
            hash=r[9],
        )
        for r in rows[:limit]
    ]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return AuditPage(items=items, next_cursor=next_cursor)


def _detail(text: str) -> dict[str, Any]:
    # A row edited by hand may hold anything; ``audit verify`` names it, the listing goes on.
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"unreadable": True}
