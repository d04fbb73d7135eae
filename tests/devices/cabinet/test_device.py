"""The cabinet device against the board model on a real pty: what reaches the agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.base import CommandRejected, DeviceReading
from devices.cabinet.bus import BusRegistry
from devices.cabinet.simulator import BoardModel, PtyBus
from tests.devices.cabinet.support import Running, eventually, make_device
from tests.tmpfs import fill, free, small_tmpfs


def _seqs(readings: list[DeviceReading]) -> list[int]:
    return [r.body["seq"] for r in readings if r.event]


def _cursor(state_dir: Path) -> int:
    (path,) = state_dir.glob("*.cursor.json")
    document = json.loads(path.read_text())
    assert isinstance(document["last_seq"], int)
    return document["last_seq"]


async def test_status_inventory_and_events_reach_the_sink(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        sink = running.sink
        await eventually(
            lambda: bool(sink.kinds("slot_status") and sink.kinds("inventory")),
            "first status and inventory",
        )
        status = sink.kinds("slot_status")[0]
        assert status.event is False
        assert status.device == "cab-1"
        assert status.time.tzinfo is not None
        assert status.body["slots"][0] == {
            "slot": 1,
            "door_open": False,
            "unlocked": False,
            "item_present": True,
            "fault": False,
            "forced": False,
        }
        inventory = sink.kinds("inventory")[0]
        assert inventory.event is False
        assert [(t["slot"], t["epc"]) for t in inventory.body["tags"]] == [
            (n, board.slots[n].tags[0].hex().upper()) for n in (1, 2, 3, 4)
        ]

        epc = bytes.fromhex("E2801160AABBCCDD00112233")
        board.force_door(2)
        board.tamper()
        board.power_fail()
        board.add_tag(3, epc)
        board.remove_tag(1, board.slots[1].tags[0])
        await eventually(lambda: len(sink.events()) == 5, "five events")
        # The forced door shows in the slot status, and a tag event refreshed the inventory.
        await eventually(
            lambda: any(r.body["slots"][1]["forced"] for r in sink.kinds("slot_status")),
            "forced flag",
        )
        await eventually(
            lambda: any(
                t["epc"] == epc.hex().upper() for t in sink.kinds("inventory")[-1].body["tags"]
            ),
            "inventory with the new tag",
        )
        board.close_door(2)
        await eventually(lambda: len(sink.events()) == 6, "six events")
        events = sink.events()
        assert [r.kind for r in events] == [
            "door_forced",
            "tamper",
            "power_fail",
            "tag_added",
            "tag_removed",
            "door_closed",
        ]
        assert events[0].body["slot"] == 2
        assert events[3].body["epc"] == epc.hex().upper()
        assert all(r.event for r in events)
        await eventually(lambda: not board.events, "events acknowledged")
    assert _cursor(tmp_path) == 6
    assert running.health.availability == [True]
    assert running.health.frames > 0


async def test_unchanged_status_is_sent_again_only_after_its_interval(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    device = make_device(pty_bus.path, buses, tmp_path, status_interval=0.3)
    async with Running(device) as running:
        await eventually(lambda: len(running.sink.kinds("slot_status")) == 1, "first status")
        await eventually(lambda: board.requests > 20, "a few polls")
        assert len(running.sink.kinds("slot_status")) == 1
        await eventually(lambda: len(running.sink.kinds("slot_status")) == 2, "a repeat", within=2)


async def test_unlock_command(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        device = running.device
        result = await device.command("unlock", {"slot": 3, "device": "cab-1"})
        assert result == {"slot": 3, "unlocked": True}
        assert board.unlocks == {3: 1}
        await eventually(
            lambda: any(r.body["slots"][2]["unlocked"] for r in running.sink.kinds("slot_status")),
            "status showing the unlocked slot",
        )
        board.open_door(3)
        await eventually(
            lambda: [r.kind for r in running.sink.events()] == ["door_opened"],
            "a legitimate opening",
        )


async def test_a_retried_unlock_unlocks_exactly_once(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    device = make_device(pty_bus.path, buses, tmp_path)
    async with device.driver:
        board.faults.drop_next = 2
        assert await device.command("unlock", {"slot": 1, "pulse_ms": 2000}) == {
            "slot": 1,
            "unlocked": True,
        }
    assert board.unlocks == {1: 1}
    assert board.cache_hits == 2


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("unlock", {"slot": 5}, "no slot 5"),
        ("unlock", {"slot": 0}, "no slot 0"),
        ("unlock", {"slot": "1"}, "no slot '1'"),
        ("unlock", {"slot": True}, "no slot True"),
        ("unlock", {}, "no slot None"),
        ("unlock", {"slot": 1, "pulse_ms": 10}, "pulse_ms 10"),
        ("unlock", {"slot": 1, "pulse_ms": 2.5}, "pulse_ms 2.5"),
        ("clear_tamper", {}, "no command 'clear_tamper'"),
    ],
)
async def test_bad_commands_are_rejected_before_the_board_is_asked(
    pty_bus: PtyBus,
    board: BoardModel,
    buses: BusRegistry,
    tmp_path: Path,
    name: str,
    args: dict[str, object],
    message: str,
) -> None:
    device = make_device(pty_bus.path, buses, tmp_path)
    async with device.driver:
        await device.poll_once(lambda reading: None)
        requests = board.requests
        with pytest.raises(CommandRejected, match=message):
            await device.command(name, args)
    assert board.requests == requests


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("busy", "busy"),
        ("fault", "hardware_fault"),
        ("silent", "did not answer"),
    ],
)
async def test_board_refusals_become_command_rejected(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path, fault: str, message: str
) -> None:
    board.faults.busy_next = 100 if fault == "busy" else 0
    board.set_fault(2, fault == "fault")
    board.faults.silent = fault == "silent"
    device = make_device(pty_bus.path, buses, tmp_path)
    async with device.driver:
        with pytest.raises(CommandRejected, match=message):
            await device.command("unlock", {"slot": 2})
    assert board.unlocks == {}


async def test_a_command_works_without_the_polling_loop(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    device = make_device(pty_bus.path, buses, tmp_path)
    assert await device.command("unlock", {"slot": 1}) == {"slot": 1, "unlocked": True}
    assert board.unlocks == {1: 1}
    assert not device.driver.is_open


async def test_an_unreachable_port_rejects_commands(buses: BusRegistry, tmp_path: Path) -> None:
    device = make_device("/dev/precinct-no-such-port", buses, tmp_path)
    with pytest.raises(CommandRejected, match="not reachable"):
        await device.command("unlock", {"slot": 1})


async def test_a_silent_board_is_reported_missing_then_back(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    async with Running(make_device(pty_bus.path, buses, tmp_path, retries=1)) as running:
        health = running.health
        await eventually(lambda: health.availability == [True], "online")
        board.faults.silent = True
        await eventually(lambda: health.availability == [True, False], "missing")
        assert health.errors["timeout"] >= 2
        board.force_door(4)  # happens while nobody can ask
        board.faults.silent = False
        await eventually(lambda: health.availability == [True, False, True], "back", within=5)
        await eventually(
            lambda: [r.kind for r in running.sink.events()] == ["door_forced"],
            "the forced door, late but not lost",
        )


async def test_restart_with_the_cursor_loses_nothing_and_repeats_nothing(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    board.next_event_seq = 65533  # cross the 16-bit wrap on the way
    for slot in (1, 2, 3):
        board.force_door(slot)
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as first:
        await eventually(lambda: len(first.sink.events()) == 3, "first three events")
        await eventually(lambda: not board.events, "acknowledged")
    assert _seqs(first.sink.readings) == [65533, 65534, 65535]

    # While the agent is down: more events, one of them left unacknowledged on purpose.
    for slot in (1, 2, 3):
        board.close_door(slot)
    board.tamper()
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as second:
        await eventually(lambda: len(second.sink.events()) == 4, "the events of the downtime")
        await eventually(lambda: not board.events, "acknowledged again")
    assert _seqs(second.sink.readings) == [0, 1, 2, 3]
    assert [r.kind for r in second.sink.events()] == ["door_closed"] * 3 + ["tamper"]
    assert _cursor(tmp_path) == 3


async def test_events_the_sink_refuses_stay_on_the_board(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    for _ in range(5):
        board.tamper()
    device = make_device(pty_bus.path, buses, tmp_path)
    running = Running(device)
    running.sink.fail_after = 2  # the first poll's slot status never gets this far
    running.start()
    assert running.task is not None
    with pytest.raises(RuntimeError, match="refuses"):
        await running.task
    running.task = None
    assert _seqs(running.sink.readings) == [1, 2]
    assert _cursor(tmp_path) == 2
    assert [e.seq for e in board.events] == [1, 2, 3, 4, 5]  # nothing acknowledged yet

    # The supervisor restarts the same device: the rest arrives once, then is acknowledged.
    running.sink.fail_after = None
    running.start()
    await eventually(lambda: len(running.sink.events()) == 5, "the refused events")
    await eventually(lambda: not board.events, "acknowledged")
    await running.stop()
    assert _seqs(running.sink.readings) == [1, 2, 3, 4, 5]


async def test_events_refused_by_a_full_disk_are_read_again_and_the_device_keeps_running(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    for _ in range(3):
        board.tamper()
    running = Running(make_device(pty_bus.path, buses, tmp_path))
    running.sink.refuse_events = True
    async with running:
        await eventually(lambda: running.sink.refused >= 3, "several polls refused")
        assert running.task is not None
        assert not running.task.done()  # no driver fault, no restart
        assert [e.seq for e in board.events] == [1, 2, 3]  # the board still holds them
        running.sink.refuse_events = False
        await eventually(lambda: len(running.sink.events()) == 3, "the refused events")
        await eventually(lambda: not board.events, "acknowledged")
    assert _seqs(running.sink.readings) == [1, 2, 3]
    assert running.health.availability == [True]


async def test_a_cursor_that_cannot_be_saved_on_a_full_disk_stops_nothing(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "state", "1m") as state:
        running = Running(make_device(pty_bus.path, buses, state))
        async with running:
            board.tamper()
            await eventually(lambda: len(running.sink.events()) == 1, "the first event")
            fill(state)
            board.tamper()
            board.force_door(1)
            await eventually(lambda: len(running.sink.events()) == 3, "events on a full disk")
            await eventually(lambda: not board.events, "acknowledged")
            assert running.task is not None
            assert not running.task.done()
            free(state)
            board.tamper()
            await eventually(lambda: len(running.sink.events()) == 4, "after the disk had room")
            await eventually(lambda: _cursor(state) == 4, "the cursor saved again")
    assert _seqs(running.sink.readings) == [1, 2, 3, 4]
    assert running.health.availability == [True]


async def test_many_events_arrive_in_order_in_batches(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    for n in range(40):
        board.force_door(n % 4 + 1)
        board.close_door(n % 4 + 1)
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        await eventually(lambda: len(running.sink.events()) == 80, "80 events")
    assert _seqs(running.sink.readings) == list(range(1, 81))


async def test_lost_board_events_are_reported_as_a_gap(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    board.event_capacity = 4
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        board.tamper()
        await eventually(lambda: len(running.sink.events()) == 1, "first event")
        board.faults.silent = True
        await eventually(lambda: running.health.availability[-1:] == [False], "missing")
        for _ in range(10):
            board.power_fail()
        board.faults.silent = False
        await eventually(lambda: len(running.sink.events()) == 5, "what the board kept")
    assert running.health.errors["event_gap"] == 1
    assert _seqs(running.sink.readings) == [1, 8, 9, 10, 11]


async def test_an_unknown_event_type_is_passed_on(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    board.push_event(42, 3, b"\x01\x02")
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        await eventually(lambda: len(running.sink.events()) == 1, "the event")
    (reading,) = running.sink.events()
    assert reading.kind == "board_event"
    assert reading.body["type"] == 42
    assert reading.body["data"] == "0102"


@pytest.mark.parametrize("first_seq", [40000, 32760, 1])
async def test_a_new_agent_finds_the_oldest_buffered_event(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path, first_seq: int
) -> None:
    # No cursor on disk, and board numbers anywhere in the 16-bit space.
    board.next_event_seq = first_seq
    for slot in (1, 2, 3):
        board.force_door(slot)
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        await eventually(lambda: len(running.sink.events()) == 3, "the buffered events")
        board.close_door(1)
        await eventually(lambda: len(running.sink.events()) == 4, "a later event")
    assert _seqs(running.sink.readings) == [(first_seq + n) % 65536 for n in range(4)]
    assert "event_gap" not in running.health.errors


async def test_a_new_agent_waits_for_the_first_event_of_an_empty_board(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path
) -> None:
    board.next_event_seq = 50000
    async with Running(make_device(pty_bus.path, buses, tmp_path)) as running:
        await eventually(lambda: board.requests > 10, "a few polls")
        board.tamper()
        await eventually(lambda: len(running.sink.events()) == 1, "the first event")
    assert _seqs(running.sink.readings) == [50000]
    assert _cursor(tmp_path) == 50000


@pytest.mark.parametrize("noticed", ["missing", "periodic"])
async def test_a_board_that_numbers_its_events_again_loses_nothing(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry, tmp_path: Path, noticed: str
) -> None:
    device = make_device(pty_bus.path, buses, tmp_path, retries=0, status_interval=0.3)
    async with Running(device) as running:
        for _ in range(5):
            board.tamper()
        await eventually(lambda: len(running.sink.events()) == 5, "five events")
        await eventually(lambda: not board.events, "acknowledged")
        requests = board.requests
        await eventually(lambda: board.requests > requests + 6, "a few more polls")
        if noticed == "missing":
            board.faults.silent = True
            await eventually(lambda: running.health.availability[-1:] == [False], "missing")
        # The board restarts and numbers from 1 again: both events are "behind" cursor 5.
        board.next_event_seq = 1
        board.power_fail()
        board.force_door(2)
        board.faults.silent = False
        await eventually(lambda: len(running.sink.events()) == 7, "the renumbered events")
    assert _seqs(running.sink.readings) == [1, 2, 3, 4, 5, 1, 2]
    assert [r.kind for r in running.sink.events()[5:]] == ["power_fail", "door_forced"]
    assert running.health.errors["event_renumbered"] == 1
    assert _cursor(tmp_path) == 2
