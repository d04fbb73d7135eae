"""Opening a cabinet slot: a command to the cabinet's agent, answered with the outcome."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Request, status
from pydantic import BaseModel, Field, StrictInt

from central import audit
from central.api.deps import DbDep, actor_of, require_roles
from central.auth import Principal, Role
from central.commands import CommandDispatcher
from edge_agent.wire import Command

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/cabinets", tags=["cabinets"])

# An unlock that has not reached the board within this time must not happen later: someone
# standing at the cabinet has given up by then.
UNLOCK_TTL = timedelta(seconds=10)
_POLL_SECONDS = 0.05


class UnlockRequest(BaseModel):
    pulse_ms: StrictInt | None = Field(default=None, ge=50, le=2000)


class UnlockOutcome(BaseModel):
    command: str
    cabinet: str
    slot: int
    agent: str
    requested_by: str
    result: dict[str, Any] | None


@router.post("/{cabinet}/slots/{slot}/unlock")
async def unlock_slot(
    request: Request,
    db: DbDep,
    principal: Annotated[Principal, require_roles(Role.CENTRE, Role.ADMIN)],
    cabinet: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")],
    slot: Annotated[int, Path(ge=0, le=255)],
    body: Annotated[UnlockRequest | None, Body()] = None,
) -> UnlockOutcome:
    owners = [
        row[0]
        for row in db.execute(
            "SELECT agent FROM devices WHERE device = ? AND class = 'cabinet'", (cabinet,)
        )
    ]
    if not owners:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cabinet {cabinet!r} has reported")
    if len(owners) > 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"cabinet id {cabinet!r} is reported by several agents: {owners}",
        )
    agent = owners[0]
    args: dict[str, Any] = {"device": cabinet, "slot": slot}
    if body is not None and body.pulse_ms is not None:
        args["pulse_ms"] = body.pulse_ms
    dispatcher: CommandDispatcher = request.app.state.commands
    actor = actor_of(request, principal)

    def audited(conn: sqlite3.Connection, command: Command) -> None:
        audit.append(
            conn,
            actor,
            audit.AuditRecord(
                "cabinet.unlock", cabinet, {"slot": slot, "agent": agent, "command": command.id}
            ),
        )

    command = await asyncio.to_thread(
        dispatcher.send,
        agent,
        "unlock",
        args,
        ttl=UNLOCK_TTL,
        requested_by=f"{principal.role}:{principal.name}",
        on_record=audited,
    )
    log.info(
        "unlock %s slot %d requested by %s (command %s)", cabinet, slot, principal.name, command.id
    )
    deadline = time.monotonic() + UNLOCK_TTL.total_seconds() + 1.0
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(dispatcher.outcome, command.id)
        if outcome is not None and outcome.status != "sent":
            await _audit_result(request, actor, cabinet, command.id, outcome.status)
            if outcome.status != "ok":
                raise HTTPException(
                    status.HTTP_409_CONFLICT, f"unlock refused: {outcome.error or 'unknown error'}"
                )
            return UnlockOutcome(
                command=command.id,
                cabinet=cabinet,
                slot=slot,
                agent=agent,
                requested_by=principal.name,
                result=outcome.result,
            )
        await asyncio.sleep(_POLL_SECONDS)
    await _audit_result(request, actor, cabinet, command.id, "no_answer")
    raise HTTPException(
        status.HTTP_504_GATEWAY_TIMEOUT,
        f"the agent {agent!r} did not answer in time (command {command.id})",
    )


async def _audit_result(
    request: Request, actor: audit.Actor, cabinet: str, command: str, status_text: str
) -> None:
    """The board's answer, as a row of its own: the agent's ack was stored by ingest."""
    await asyncio.to_thread(
        audit.record,
        request.app.state.settings.db,
        actor,
        audit.AuditRecord(
            "cabinet.unlock_result", cabinet, {"command": command, "status": status_text}
        ),
    )
