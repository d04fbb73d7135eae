"""The SCP/1 driver against the board model on a real pty: retries, faults, a shared bus."""

from __future__ import annotations

import asyncio

import pytest

from devices.cabinet.bus import BusRegistry
from devices.cabinet.errors import BoardSilentError, BoardStatusError, Status, TransportError
from devices.cabinet.scp1 import EventType
from devices.cabinet.simulator import BoardModel, PtyBus
from tests.devices.cabinet.support import RecordingHealth, make_driver


async def test_info_status_and_inventory_over_a_pty(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    board.force_door(2)
    async with make_driver(pty_bus.path, buses) as driver:
        info = await driver.info()
        slots = await driver.slot_status()
        tags = await driver.inventory()
    assert (info.protocol, info.version, info.slot_count, info.model) == ("scp1", 1, 4, "SCP-SIM-4")
    assert [s.slot for s in slots] == [1, 2, 3, 4]
    assert slots[1].door_open
    assert slots[1].forced
    assert not slots[1].unlocked
    assert all(s.item_present for s in slots)
    assert sorted(t.slot for t in tags) == [1, 2, 3, 4]
    assert tags[0].epc == board.slots[1].tags[0]


async def test_a_dropped_unlock_reply_is_retried_with_the_same_seq_and_unlocks_once(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    health = RecordingHealth()
    board.faults.drop_next = 1
    async with make_driver(pty_bus.path, buses) as driver:
        driver.health = health
        await driver.unlock(2, 500)
    assert board.unlocks == {2: 1}
    assert board.cache_hits == 1
    assert board.requests == 2
    assert health.errors == {"timeout": 1}
    assert board.state(2).unlocked


async def test_a_corrupted_reply_is_dropped_counted_and_retried(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    health = RecordingHealth()
    board.faults.corrupt_next = 1
    async with make_driver(pty_bus.path, buses) as driver:
        driver.health = health
        await driver.unlock(3, 200)
    assert board.unlocks == {3: 1}
    assert board.cache_hits == 1
    assert health.errors["crc"] == 1
    assert health.errors["timeout"] == 1


async def test_garbage_before_a_reply_is_skipped_without_a_retry(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    health = RecordingHealth()
    board.faults.garbage_next = 3
    async with make_driver(pty_bus.path, buses) as driver:
        driver.health = health
        for _ in range(3):
            assert (await driver.info()).slot_count == 4
    assert board.requests == 3
    assert health.errors == {"garbage": 3}


async def test_busy_is_retried_with_a_new_seq(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    health = RecordingHealth()
    board.faults.busy_next = 2
    async with make_driver(pty_bus.path, buses, busy_retries=2) as driver:
        driver.health = health
        await driver.unlock(1, 500)
    assert board.unlocks == {1: 1}
    assert board.cache_hits == 0  # a new SEQ each time, or the cache would answer "busy" again
    assert health.errors == {"busy": 2}


async def test_busy_beyond_the_retries_is_a_status_error(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    board.faults.busy_next = 10
    async with make_driver(pty_bus.path, buses, busy_retries=1) as driver:
        with pytest.raises(BoardStatusError) as caught:
            await driver.unlock(1, 500)
    assert caught.value.status is Status.BUSY
    assert board.unlocks == {}
    assert board.requests == 2


@pytest.mark.parametrize(
    ("slot", "pulse_ms", "fault", "status"),
    [
        (9, 500, False, Status.BAD_PARAMETER),
        (1, 20, False, Status.BAD_PARAMETER),
        (1, 500, True, Status.HARDWARE_FAULT),
    ],
)
async def test_board_error_statuses(
    pty_bus: PtyBus,
    board: BoardModel,
    buses: BusRegistry,
    slot: int,
    pulse_ms: int,
    fault: bool,
    status: Status,
) -> None:
    board.set_fault(1, fault)
    async with make_driver(pty_bus.path, buses) as driver:
        with pytest.raises(BoardStatusError) as caught:
            await driver.unlock(slot, pulse_ms)
    assert caught.value.status is status
    assert board.unlocks == {}


async def test_a_silent_board_is_missing_after_every_attempt(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    board.faults.silent = True
    async with make_driver(pty_bus.path, buses, retries=2) as driver:
        with pytest.raises(BoardSilentError) as caught:
            await driver.info()
        assert caught.value.attempts == 3
        board.faults.silent = False
        assert (await driver.info()).slot_count == 4
    assert pty_bus.frames_in == 4  # three attempts while silent, then one answered
    assert board.requests == 1


async def test_events_and_acknowledgement(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    board.force_door(1)
    board.tamper()
    board.close_door(1)
    async with make_driver(pty_bus.path, buses) as driver:
        events = await driver.events_since(0)
        assert [(e.seq, e.type, e.slot) for e in events] == [
            (1, EventType.FORCED_OPEN, 1),
            (2, EventType.TAMPER, 0),
            (3, EventType.DOOR_CLOSED, 1),
        ]
        assert [e.seq for e in await driver.events_since(2)] == [3]
        await driver.ack_events(2)
        assert [e.seq for e in board.events] == [3]


async def test_inventory_reads_every_page(
    pty_bus: PtyBus, board: BoardModel, buses: BusRegistry
) -> None:
    for n in range(36):
        board.add_tag(n % 4 + 1, bytes([0xE2, n]) + bytes(10))
    async with make_driver(pty_bus.path, buses) as driver:
        tags = await driver.inventory()
    assert len(tags) == 40
    assert board.requests == 3  # pages of 16


async def test_boards_sharing_a_bus_never_collide() -> None:
    boards = [BoardModel(address, 4) for address in (1, 2, 3)]
    registry = BusRegistry()
    # A board takes 2 ms to answer; a second master talking meanwhile would be a collision.
    async with PtyBus(boards, turnaround=0.002) as bus:
        drivers = [make_driver(bus.path, registry, address) for address in (1, 2, 3)]
        for driver in drivers:
            await driver.open()
        try:

            async def hammer(index: int) -> list[int]:
                driver = drivers[index]
                counts = []
                for round_ in range(10):
                    if round_ % 3 == 0:
                        await driver.unlock(round_ % 4 + 1, 100)
                    counts.append((await driver.info()).slot_count)
                return counts

            async with asyncio.timeout(10):
                results = await asyncio.gather(*(hammer(i) for i in range(3)))
        finally:
            for driver in drivers:
                await driver.close()
    assert results == [[4] * 10] * 3
    assert bus.collisions == 0
    assert [sum(b.unlocks.values()) for b in boards] == [4, 4, 4]
    assert all(b.cache_hits == 0 for b in boards)


async def test_a_late_reply_is_skipped_as_stray(buses: BusRegistry) -> None:
    board = BoardModel(1, 4)
    health = RecordingHealth()
    # Replies take 150 ms, the deadline is 100 ms: the first attempt's reply answers the
    # retry (same SEQ), and the retry's reply arrives during the next request.
    async with PtyBus([board], turnaround=0.15) as bus, make_driver(bus.path, buses) as driver:
        driver.health = health
        assert (await driver.info()).slot_count == 4
        assert len(await driver.slot_status()) == 4
    assert health.errors.get("stray", 0) >= 1
    assert board.cache_hits >= 1


async def test_a_port_that_cannot_be_opened_is_a_transport_error(buses: BusRegistry) -> None:
    async with make_driver("/dev/precinct-no-such-port", buses) as driver:
        with pytest.raises(TransportError, match="cannot open"):
            await driver.info()


async def test_one_port_one_baud_rate(pty_bus: PtyBus, buses: BusRegistry) -> None:
    buses.acquire(pty_bus.path, 9600, 1.0)
    with pytest.raises(TransportError, match="9600"):
        buses.acquire(pty_bus.path, 115200, 1.0)


async def test_requests_need_an_open_driver(pty_bus: PtyBus, buses: BusRegistry) -> None:
    with pytest.raises(TransportError, match="not open"):
        await make_driver(pty_bus.path, buses).info()
