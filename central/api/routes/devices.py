"""Devices as the centre last saw them: availability and the latest reading of each kind.

Operations see every device's health (class, online, last seen, and when each kind of reading
last arrived) but no reading's body: cabinet inventories and heart rates are message contents.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from central.api.deps import DbDep, PrincipalDep
from central.auth import Role

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


class DevicePublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    agent: str
    id: str
    device_class: str | None = Field(serialization_alias="class")
    online: bool | None
    last_seen: str | None
    state: dict[str, Any] = Field(
        description="kind -> {seq, time, body}; without body for the ops role"
    )


@router.get("", response_model_by_alias=True)
def list_devices(
    db: DbDep,
    principal: PrincipalDep,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    device_class: Annotated[str | None, Query(alias="class", max_length=64)] = None,
) -> list[DevicePublic]:
    sql = [
        "SELECT d.agent, d.device, d.class, d.online, d.last_seen, d.state FROM devices d "
        "JOIN agents a ON a.agent = d.agent WHERE 1 = 1"
    ]
    args: list[Any] = []
    if principal.role is Role.STATION:
        sql.append("AND a.station = ?")
        args.append(principal.station)
    if agent is not None:
        sql.append("AND d.agent = ?")
        args.append(agent)
    if device_class is not None:
        sql.append("AND d.class = ?")
        args.append(device_class)
    sql.append("ORDER BY d.agent, d.device")
    with_bodies = principal.role is not Role.OPS
    return [
        DevicePublic(
            agent=r[0],
            id=r[1],
            device_class=r[2],
            online=None if r[3] is None else bool(r[3]),
            last_seen=r[4],
            state=json.loads(r[5]) if with_bodies else _health_only(json.loads(r[5])),
        )
        for r in db.execute(" ".join(sql), args)
    ]


def _health_only(state: dict[str, Any]) -> dict[str, Any]:
    return {
        kind: {key: value for key, value in entry.items() if key != "body"}
        for kind, entry in state.items()
        if isinstance(entry, dict)
    }
