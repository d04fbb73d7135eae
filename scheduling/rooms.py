"""Rooms of the case-handling centre: type, capacity, equipment and availability state.

Pure rules, no I/O: the central service stores rooms and calls these to validate a room and to
change its state; every state change becomes a history entry with who and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class RoomType(StrEnum):
    INTERROGATION = "interrogation"  # 讯问室, suspects
    INQUIRY = "inquiry"  # 询问室, witnesses and victims
    WAITING = "waiting"  # 候问室
    MINORS = "minors"  # 未成年人询问室
    ONE_STOP = "one_stop"  # 一站式询问救助室, minor victims of sexual abuse
    SOBERING = "sobering"  # 醒酒室
    IDENTIFICATION = "identification"  # 辨认室
    MEDICAL = "medical"  # medical and drug tests


class Equipment(StrEnum):
    RECORDING = "recording"  # audio-video recording
    INTERPRETER = "interpreter"  # interpreter link
    ONE_WAY_GLASS = "one_way_glass"


class RoomState(StrEnum):
    IN_SERVICE = "in_service"
    CLEANING = "cleaning"
    OUT_OF_ORDER = "out_of_order"


# Rooms whose sessions must be recorded in full, so the room cannot exist without recording.
REQUIRES_RECORDING = frozenset({RoomType.INTERROGATION, RoomType.ONE_STOP})
MAX_CAPACITY = 50
MAX_ADJACENT = 20


class RoomError(ValueError):
    """A room or a change that breaks a rule; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    type: RoomType
    capacity: int
    equipment: frozenset[Equipment]
    state: RoomState = RoomState.IN_SERVICE
    # Rooms next to this one (S4); either room naming the other is enough, and a name may be
    # of a room created later.
    adjacent_to: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.capacity <= MAX_CAPACITY:
            raise RoomError("capacity", f"must be 1..{MAX_CAPACITY}")
        if self.id in self.adjacent_to:
            raise RoomError("adjacent_to", "a room is not adjacent to itself")
        if len(self.adjacent_to) > MAX_ADJACENT:
            raise RoomError("adjacent_to", f"at most {MAX_ADJACENT} rooms")
        if self.type in REQUIRES_RECORDING and Equipment.RECORDING not in self.equipment:
            raise RoomError("equipment", f"a {self.type} room needs audio-video recording")

    @property
    def available(self) -> bool:
        return self.state is RoomState.IN_SERVICE


@dataclass(frozen=True, slots=True)
class StateChange:
    room: str
    before: RoomState
    after: RoomState
    at: datetime
    by: str
    reason: str | None


def change_state(
    room: Room, state: RoomState, *, at: datetime, by: str, reason: str | None = None
) -> tuple[Room, StateChange | None]:
    """The room in ``state`` and the history entry; no entry when nothing changes."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: state changes carry aware times")
    if state is RoomState.OUT_OF_ORDER and not (reason and reason.strip()):
        raise RoomError("reason", "taking a room out of order needs a reason")
    if state is room.state:
        return room, None
    return replace(room, state=state), StateChange(room.id, room.state, state, at, by, reason)
