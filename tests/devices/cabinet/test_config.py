"""create_device: the options of a ``[[devices]]`` table, checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devices.base import DeviceConfig, DeviceConfigError
from devices.cabinet import CabinetDevice, create_device
from devices.cabinet.modbus_driver import ModbusDriver
from devices.cabinet.scp1_driver import Scp1Driver


def _config(tmp_path: Path, transport: str = "/dev/ttyUSB0", **options: Any) -> DeviceConfig:
    return DeviceConfig("cabinet", "cab-a", transport, {"state_dir": str(tmp_path), **options})


def test_defaults_build_an_scp1_cabinet(tmp_path: Path) -> None:
    device = create_device(_config(tmp_path))
    assert isinstance(device, CabinetDevice)
    assert device.id == "cab-a"
    assert isinstance(device.driver, Scp1Driver)
    assert (device.driver.port, device.driver.address) == ("/dev/ttyUSB0", 1)
    assert device.options.state_dir == tmp_path


def test_every_option(tmp_path: Path) -> None:
    device = create_device(
        _config(
            tmp_path,
            "socket://10.0.0.5:4001",
            protocol="scp1",
            address=12,
            slots=24,
            baudrate=19200,
            poll_interval=0.5,
            request_timeout=1,
            retries=3,
            busy_retries=1,
            busy_delay=0.2,
            open_timeout=3,
            pulse_ms=800,
            inventory_interval=120,
            status_interval=600,
        )
    )
    options = device.options
    assert (options.address, options.slots, options.baudrate, options.pulse_ms) == (
        12,
        24,
        19200,
        800,
    )
    assert options.request_timeout == 1.0
    assert isinstance(options.request_timeout, float)
    assert isinstance(device.driver, Scp1Driver)
    assert device.driver.retries == 3


def test_modbus_needs_slots_but_no_state_dir() -> None:
    config = DeviceConfig("cabinet", "mb", "/dev/ttyUSB1", {"protocol": "modbus", "slots": 8})
    assert isinstance(create_device(config).driver, ModbusDriver)
    with pytest.raises(DeviceConfigError) as caught:
        create_device(DeviceConfig("cabinet", "mb", "/dev/ttyUSB1", {"protocol": "modbus"}))
    assert caught.value.key == "slots"


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"colour": "grey"}, "colour", "unknown option"),
        ({"protocol": "wiegand"}, "protocol", "not one of scp1, modbus"),
        ({"address": 0}, "address", "outside 1..247"),
        ({"address": 248}, "address", "outside 1..247"),
        ({"address": "1"}, "address", "must be an integer, not str"),
        ({"address": True}, "address", "must be an integer, not bool"),
        ({"slots": 1.5}, "slots", "must be an integer"),
        ({"baudrate": 12}, "baudrate", "outside"),
        ({"retries": -1}, "retries", "outside 0..10"),
        ({"pulse_ms": 5000}, "pulse_ms", "outside 50..2000"),
        ({"poll_interval": "1s"}, "poll_interval", "must be a number of seconds"),
        ({"poll_interval": 0}, "poll_interval", "outside"),
        ({"request_timeout": False}, "request_timeout", "must be a number"),
        ({"state_dir": 3}, "state_dir", "must be a directory path"),
        ({"state_dir": ""}, "state_dir", "must be a directory path"),
    ],
)
def test_bad_options_name_their_key(
    tmp_path: Path, options: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(DeviceConfigError, match=message) as caught:
        create_device(_config(tmp_path, **options))
    assert caught.value.key == key


def test_scp1_needs_a_state_dir() -> None:
    with pytest.raises(DeviceConfigError) as caught:
        create_device(DeviceConfig("cabinet", "cab", "/dev/ttyUSB0", {}))
    assert caught.value.key == "state_dir"


def test_the_transport_must_be_named(tmp_path: Path) -> None:
    with pytest.raises(DeviceConfigError) as caught:
        create_device(_config(tmp_path, transport="  "))
    assert caught.value.key == "transport"
