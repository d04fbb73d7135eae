"""Rooms: create, list, read with state history, change (capacity, equipment, state)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from central import audit, feed
from central.api.deps import DbDep, PrincipalDep, WriteDbDep, actor_of, require_roles
from central.api.fields import Text
from central.auth import Principal, Role
from central.planning import PlanningService
from edge_agent.wire import format_time
from scheduling.rooms import (
    MAX_ADJACENT,
    MAX_CAPACITY,
    Equipment,
    Room,
    RoomError,
    RoomState,
    RoomType,
    change_state,
)

router = APIRouter(prefix="/api/v1/rooms", tags=["rooms"])

ROOM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
RoomId = Annotated[str, Path(max_length=64, pattern=ROOM_ID_PATTERN)]
AdjacentRoom = Annotated[str, Field(max_length=64, pattern=ROOM_ID_PATTERN)]
Editor = Annotated[Principal, require_roles(Role.CENTRE, Role.ADMIN)]


class RoomCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: RoomType
    capacity: StrictInt = Field(ge=1, le=MAX_CAPACITY)
    equipment: list[Equipment] = Field(default_factory=list, max_length=10)
    state: RoomState = RoomState.IN_SERVICE
    adjacent_to: list[AdjacentRoom] = Field(default_factory=list, max_length=MAX_ADJACENT)


class RoomUpdate(BaseModel):
    # Only these fields can change; anything else in the body is refused (no mass assignment).
    model_config = ConfigDict(extra="forbid")

    capacity: StrictInt | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    equipment: list[Equipment] | None = Field(default=None, max_length=10)
    state: RoomState | None = None
    adjacent_to: list[AdjacentRoom] | None = Field(default=None, max_length=MAX_ADJACENT)
    reason: Text | None = Field(default=None, max_length=500)


class StateChangePublic(BaseModel):
    before: RoomState | None
    after: RoomState
    at: str
    by: str
    reason: str | None


class RoomPublic(BaseModel):
    id: str
    type: RoomType
    capacity: int
    equipment: list[Equipment]
    state: RoomState
    adjacent_to: list[str]
    history: list[StateChangePublic] | None = None


def _load(db: sqlite3.Connection, room_id: str) -> Room | None:
    row = db.execute(
        "SELECT id, type, capacity, equipment, state, adjacent_to FROM rooms WHERE id = ?",
        (room_id,),
    ).fetchone()
    if row is None:
        return None
    return Room(
        row[0],
        RoomType(row[1]),
        int(row[2]),
        frozenset(Equipment(e) for e in json.loads(row[3])),
        RoomState(row[4]),
        frozenset(json.loads(row[5])),
    )


def _require(db: sqlite3.Connection, room_id: str) -> Room:
    room = _load(db, room_id)
    if room is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no room {room_id!r}")
    return room


def _public(room: Room, history: list[StateChangePublic] | None = None) -> RoomPublic:
    return RoomPublic(
        id=room.id,
        type=room.type,
        capacity=room.capacity,
        equipment=sorted(room.equipment),
        state=room.state,
        adjacent_to=sorted(room.adjacent_to),
        history=history,
    )


def _invalid(exc: RoomError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


def _record(
    db: sqlite3.Connection,
    room: Room,
    before: RoomState | None,
    at: str,
    by: str,
    reason: str | None,
) -> None:
    db.execute(
        "INSERT INTO room_history (room, before, after, at, by, reason) VALUES (?, ?, ?, ?, ?, ?)",
        (room.id, before, room.state, at, by, reason),
    )
    # Rooms are the centre's, not a station's: centre-wide, for admin and centre tokens.
    feed.append(
        db,
        "room_state",
        None,
        {"room": room.id, "type": room.type.value, "before": before, "after": room.state.value},
        at=at,
    )


def _room_change(before: Room, after: Room) -> audit.AuditRecord:
    # What changed, from what to what; the free-text reason stays in the room's history.
    detail: dict[str, object] = {"state": [before.state.value, after.state.value]}
    if after.capacity != before.capacity:
        detail["capacity"] = [before.capacity, after.capacity]
    if after.equipment != before.equipment:
        detail["equipment"] = [sorted(before.equipment), sorted(after.equipment)]
    if after.adjacent_to != before.adjacent_to:
        detail["adjacent_to"] = [sorted(before.adjacent_to), sorted(after.adjacent_to)]
    return audit.AuditRecord("room.changed", after.id, detail)


def _tell_planner(request: Request, room: Room) -> None:
    service: PlanningService = request.app.state.planning
    service.room_changed(
        room.id, room.type, room.capacity, room.equipment, room.state, adjacent_to=room.adjacent_to
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_room(
    request: Request, db: WriteDbDep, principal: Editor, body: RoomCreate
) -> RoomPublic:
    try:
        room = Room(
            body.id,
            body.type,
            body.capacity,
            frozenset(body.equipment),
            body.state,
            frozenset(body.adjacent_to),
        )
    except RoomError as exc:
        raise _invalid(exc) from None
    now = format_time(datetime.now(UTC))
    by = f"{principal.role}:{principal.name}"
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO rooms (id, type, capacity, equipment, state, adjacent_to, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                room.id,
                room.type,
                room.capacity,
                json.dumps(sorted(room.equipment)),
                room.state,
                json.dumps(sorted(room.adjacent_to)),
                now,
                now,
            ),
        )
        _record(db, room, None, now, by, "created")
        audit.append(
            db,
            actor_of(request, principal),
            audit.AuditRecord(
                "room.created",
                room.id,
                {"type": room.type.value, "capacity": room.capacity, "state": room.state.value},
            ),
        )
        db.execute("COMMIT")
    except sqlite3.IntegrityError:
        db.execute("ROLLBACK")
        raise HTTPException(status.HTTP_409_CONFLICT, f"room {room.id!r} exists") from None
    _tell_planner(request, room)
    return _public(room)


@router.get("")
def list_rooms(db: DbDep, _principal: PrincipalDep) -> list[RoomPublic]:
    ids = [row[0] for row in db.execute("SELECT id FROM rooms ORDER BY id")]
    return [_public(room) for room in (_load(db, i) for i in ids) if room is not None]


@router.get("/{room_id}")
def get_room(db: DbDep, _principal: PrincipalDep, room_id: RoomId) -> RoomPublic:
    room = _require(db, room_id)
    history = [
        StateChangePublic(
            before=RoomState(r[0]) if r[0] else None,
            after=RoomState(r[1]),
            at=r[2],
            by=r[3],
            reason=r[4],
        )
        for r in db.execute(
            "SELECT before, after, at, by, reason FROM room_history WHERE room = ? ORDER BY id",
            (room_id,),
        )
    ]
    return _public(room, history)


@router.patch("/{room_id}")
def update_room(
    request: Request, db: WriteDbDep, principal: Editor, room_id: RoomId, body: RoomUpdate
) -> RoomPublic:
    db.execute("BEGIN IMMEDIATE")
    try:
        room = _require(db, room_id)
        now_moment = datetime.now(UTC)
        now = format_time(now_moment)
        by = f"{principal.role}:{principal.name}"
        try:
            changed = Room(
                room.id,
                room.type,
                body.capacity if body.capacity is not None else room.capacity,
                frozenset(body.equipment) if body.equipment is not None else room.equipment,
                room.state,
                frozenset(body.adjacent_to) if body.adjacent_to is not None else room.adjacent_to,
            )
            change = None
            if body.state is not None:
                changed, change = change_state(
                    changed, body.state, at=now_moment, by=by, reason=body.reason
                )
        except RoomError as exc:
            raise _invalid(exc) from None
        db.execute(
            "UPDATE rooms SET capacity = ?, equipment = ?, state = ?, adjacent_to = ?, "
            "updated_at = ? WHERE id = ?",
            (
                changed.capacity,
                json.dumps(sorted(changed.equipment)),
                changed.state,
                json.dumps(sorted(changed.adjacent_to)),
                now,
                room.id,
            ),
        )
        if change is not None:
            _record(db, changed, change.before, now, by, change.reason)
        audit.append(db, actor_of(request, principal), _room_change(room, changed))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    # After the commit: a room out of order moves the persons planned into it.
    _tell_planner(request, changed)
    return _public(changed)
