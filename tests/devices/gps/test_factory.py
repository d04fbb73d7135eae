"""Building the driver from a ``[[devices]]`` table: options checked, bad keys named."""

from __future__ import annotations

from typing import Any

import pytest

from devices.base import DeviceConfig, DeviceConfigError
from devices.gps import create_device
from devices.gps.driver import GpsDevice
from edge_agent.device_supervisor import DeviceSetupError, build_devices


def _config(transport: str = "/dev/ttyUSB0", **options: Any) -> DeviceConfig:
    return DeviceConfig(kind="gps", id="van-3-gps", transport=transport, options=options)


def test_defaults() -> None:
    device = create_device(_config())
    assert isinstance(device, GpsDevice)
    assert device.id == "van-3-gps"
    settings = device.settings
    assert (settings.baudrate, settings.offline_after, settings.is_gpsd) == (9600, 10.0, False)
    assert settings.filters.max_speed == 70.0


def test_options_reach_the_settings() -> None:
    settings = create_device(
        _config(
            baudrate=4800,
            timeout=3,
            connect_timeout=1.5,
            backoff_initial=0.1,
            backoff_max=5,
            backoff_jitter=0,
            max_speed=40,
            max_hdop=False,
            min_period=0,
            filter_zero=False,
            speed_reset_after=4,
        )
    ).settings
    assert settings.baudrate == 4800
    assert settings.offline_after == 3.0
    assert (settings.backoff_initial, settings.backoff_max, settings.backoff_jitter) == (
        0.1,
        5.0,
        0.0,
    )
    assert settings.filters.max_speed == 40.0
    assert settings.filters.max_hdop is None
    assert settings.filters.min_period == 0.0
    assert settings.filters.zero is False
    assert settings.filters.speed_reset_after == 4


@pytest.mark.parametrize(
    "transport",
    [
        "/dev/ttyUSB0",
        "/dev/serial/by-id/usb-u-blox-if00",
        "socket://10.0.0.5:4001",
        "rfc2217://10.0.0.5:4002",
        "gpsd://127.0.0.1:2947",
        "gpsd://gps.local",
    ],
)
def test_transports(transport: str) -> None:
    assert create_device(_config(transport)).settings.transport == transport


def test_gpsd_default_port() -> None:
    assert create_device(_config("gpsd://gps.local")).settings.gpsd_address() == ("gps.local", 2947)


@pytest.mark.parametrize(
    "transport",
    [
        "",
        "ttyUSB0",
        "loop://",
        "socket://host",
        "gpsd://",
        "gpsd://host:port",
        "gpsd://host/dev/x",
        "http://host:80",
    ],
)
def test_bad_transports(transport: str) -> None:
    with pytest.raises(DeviceConfigError) as info:
        create_device(_config(transport))
    assert info.value.key == "transport"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"baud": 9600}, "baud"),
        ({"baudrate": "9600"}, "baudrate"),
        ({"baudrate": True}, "baudrate"),
        ({"baudrate": 0}, "baudrate"),
        ({"timeout": "10s"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_speed": -1}, "max_speed"),
        ({"max_speed": True}, "max_speed"),
        ({"min_period": [1]}, "min_period"),
        ({"filter_zero": 1}, "filter_zero"),
        ({"speed_reset_after": 0}, "speed_reset_after"),
        ({"backoff_jitter": -0.5}, "backoff_jitter"),
        ({"backoff_initial": 10, "backoff_max": 1}, "backoff_max"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(DeviceConfigError) as info:
        create_device(_config(**options))
    assert info.value.key == key


def test_the_agent_builds_gps_devices_and_reports_bad_keys_in_its_terms() -> None:
    ((_, device),) = build_devices([_config()])
    assert isinstance(device, GpsDevice)
    with pytest.raises(DeviceSetupError) as info:
        build_devices([_config(color="red")])
    assert info.value.key == "devices[0].color"
