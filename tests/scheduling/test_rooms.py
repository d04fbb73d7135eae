"""Room rules (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduling.rooms import Equipment, Room, RoomError, RoomState, RoomType, change_state

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=SHANGHAI)


def test_interrogation_and_one_stop_rooms_need_recording() -> None:
    Room("I-101", RoomType.INTERROGATION, 3, frozenset({Equipment.RECORDING}))
    for room_type in (RoomType.INTERROGATION, RoomType.ONE_STOP):
        with pytest.raises(RoomError) as caught:
            Room("X", room_type, 3, frozenset({Equipment.ONE_WAY_GLASS}))
        assert caught.value.field == "equipment"
    Room("W-1", RoomType.WAITING, 8, frozenset())


@pytest.mark.parametrize("capacity", [0, -1, 51])
def test_capacity_is_bounded(capacity: int) -> None:
    with pytest.raises(RoomError, match="capacity"):
        Room("Q-1", RoomType.INQUIRY, capacity, frozenset())


def test_state_changes_are_recorded_with_who_and_why() -> None:
    room = Room("Q-1", RoomType.INQUIRY, 2, frozenset())
    cleaning, change = change_state(room, RoomState.CLEANING, at=NOW, by="centre:li")
    assert cleaning.state is RoomState.CLEANING
    assert not cleaning.available
    assert change is not None
    assert (change.before, change.after, change.by) == (
        RoomState.IN_SERVICE,
        RoomState.CLEANING,
        "centre:li",
    )
    same, none = change_state(cleaning, RoomState.CLEANING, at=NOW, by="centre:li")
    assert none is None
    assert same == cleaning
    with pytest.raises(RoomError, match="reason"):
        change_state(room, RoomState.OUT_OF_ORDER, at=NOW, by="centre:li")
    broken, change = change_state(
        room, RoomState.OUT_OF_ORDER, at=NOW, by="centre:li", reason="recorder fault"
    )
    assert broken.state is RoomState.OUT_OF_ORDER
    assert change is not None
    assert change.reason == "recorder fault"
    with pytest.raises(ValueError, match="naive"):
        change_state(
            room,
            RoomState.CLEANING,
            at=datetime(2026, 1, 1),  # noqa: DTZ001
            by="x",
        )
