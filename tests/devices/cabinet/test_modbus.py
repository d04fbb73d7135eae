"""The Modbus RTU path end to end: the driver and device against a pymodbus board model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devices.base import CommandRejected, DeviceConfig
from devices.cabinet import create_device
from devices.cabinet.config import CabinetOptions
from devices.cabinet.device import CabinetDevice
from devices.cabinet.errors import BoardSilentError, BoardStatusError, Status
from devices.cabinet.modbus_driver import ModbusDriver, ModbusLinkRegistry
from devices.cabinet.modbus_sim import ModbusBoardModel, ModbusBoardServer
from tests.devices.cabinet.support import RecordingHealth, Running, eventually

SLOTS = 4


@pytest.fixture
def model() -> ModbusBoardModel:
    return ModbusBoardModel(address=7, slots=SLOTS)


@pytest.fixture
async def server(model: ModbusBoardModel) -> AsyncIterator[ModbusBoardServer]:
    async with ModbusBoardServer([model]) as running:
        yield running


def _driver(url: str, retries: int = 2) -> ModbusDriver:
    return ModbusDriver(
        url,
        7,
        slots=SLOTS,
        request_timeout=0.1,
        retries=retries,
        busy_delay=0.01,
        open_timeout=2.0,
        links=ModbusLinkRegistry(),
    )


def _device(url: str) -> CabinetDevice:
    options = CabinetOptions(
        protocol="modbus",
        address=7,
        slots=SLOTS,
        poll_interval=0.02,
        request_timeout=0.1,
        retries=1,
        busy_delay=0.01,
    )
    return CabinetDevice("mb-1", options, _driver(url, retries=1), None)


async def test_status_and_door_events_reach_the_sink(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    async with Running(_device(server.url)) as running:
        sink = running.sink
        await eventually(lambda: bool(sink.kinds("slot_status")), "first status")
        first = sink.kinds("slot_status")[0].body["slots"]
        assert first[0] == {
            "slot": 1,
            "door_open": False,
            "unlocked": False,
            "item_present": None,
            "fault": False,
            "forced": False,
        }

        model.force_door(2)
        await eventually(
            lambda: [r.kind for r in sink.events()] == ["door_forced"], "the forced door"
        )
        await eventually(
            lambda: sink.kinds("slot_status")[-1].body["slots"][1]["forced"], "forced in the status"
        )
        assert await running.device.command("unlock", {"slot": 3, "pulse_ms": 300}) == {
            "slot": 3,
            "unlocked": True,
        }
        model.open_door(3)
        model.close_door(2)
        await eventually(lambda: len(sink.events()) == 3, "two more events")
        kinds = {(r.kind, r.body["slot"]) for r in sink.events()[1:]}
        assert kinds == {("door_opened", 3), ("door_closed", 2)}
        assert [r.body["seq"] for r in sink.events()] == [1, 2, 3]
        assert not sink.kinds("inventory")  # no RFID on a Modbus lock board
    assert model.unlocks == [0, 0, 1, 0]
    assert model.pulse_ms == 300
    assert running.health.availability == [True]


async def test_a_lost_write_reply_unlocks_exactly_once(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    health = RecordingHealth()
    async with _driver(server.url) as driver:
        driver.health = health
        model.drop_next = 1
        await driver.unlock(1, 500)
        # The write reply is lost and the counter moved: the write is not sent again.
        assert model.unlocks == [1, 0, 0, 0]
        await driver.unlock(1, 500)
    assert model.unlocks == [2, 0, 0, 0]
    assert health.errors["timeout"] == 1


async def test_a_write_that_never_arrived_is_sent_again(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    async with _driver(server.url) as driver:
        await driver.unlock(2, 500)
        model.silent = True
        with pytest.raises(BoardSilentError):
            await driver.unlock(2, 500)
        model.silent = False
        await driver.unlock(2, 500)
    assert model.unlocks == [0, 2, 0, 0]


async def test_busy_is_retried_then_refused(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    async with _driver(server.url) as driver:
        model.busy_next = 1
        await driver.unlock(4, 500)
        assert model.unlocks == [0, 0, 0, 1]
        model.busy_next = 10
        with pytest.raises(BoardStatusError) as caught:
            await driver.unlock(4, 500)
    assert caught.value.status is Status.BUSY
    assert model.unlocks == [0, 0, 0, 1]


async def test_bad_requests_are_refused(server: ModbusBoardServer, model: ModbusBoardModel) -> None:
    device = _device(server.url)
    with pytest.raises(CommandRejected, match="no slot 5"):
        await device.command("unlock", {"slot": 5})
    async with _driver(server.url) as driver:
        with pytest.raises(BoardStatusError) as caught:
            await driver.unlock(5, 500)
    assert caught.value.status is Status.BAD_PARAMETER
    assert model.unlocks == [0, 0, 0, 0]


async def test_a_silent_board_is_missing_then_back(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    async with Running(_device(server.url)) as running:
        await eventually(lambda: running.health.availability == [True], "online")
        model.silent = True
        await eventually(lambda: running.health.availability == [True, False], "missing")
        model.silent = False
        await eventually(lambda: running.health.availability == [True, False, True], "back")


async def test_create_device_builds_the_modbus_path(
    server: ModbusBoardServer, model: ModbusBoardModel
) -> None:
    device = create_device(
        DeviceConfig(
            "cabinet",
            "mb-2",
            server.url,
            {"protocol": "modbus", "address": 7, "slots": SLOTS, "request_timeout": 0.2},
        )
    )
    assert isinstance(device.driver, ModbusDriver)
    assert await device.command("unlock", {"slot": 1, "device": "mb-2"}) == {
        "slot": 1,
        "unlocked": True,
    }
    assert model.unlocks == [1, 0, 0, 0]
