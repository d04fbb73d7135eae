"""Opening a cabinet slot: a command to the cabinet's agent, answered with the outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Request, status
from pydantic import BaseModel, Field, StrictInt

from central.api.deps import DbDep, require_roles
from central.auth import Principal, Role
from central.commands import CommandDispatcher

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
    command = await asyncio.to_thread(
        dispatcher.send,
        agent,
        "unlock",
        args,
        ttl=UNLOCK_TTL,
        requested_by=f"{principal.role}:{principal.name}",
    )
    log.info(
        "unlock %s slot %d requested by %s (command %s)", cabinet, slot, principal.name, command.id
    )
    deadline = time.monotonic() + UNLOCK_TTL.total_seconds() + 1.0
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(dispatcher.outcome, command.id)
        if outcome is not None and outcome.status != "sent":
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
    raise HTTPException(
        status.HTTP_504_GATEWAY_TIMEOUT,
        f"the agent {agent!r} did not answer in time (command {command.id})",
    )
