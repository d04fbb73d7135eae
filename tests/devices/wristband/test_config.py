"""The fleet's ``[[devices]]`` options: defaults, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devices.base import Device, DeviceConfig, DeviceConfigError
from devices.wristband import WristbandFleet, create_device
from devices.wristband.config import parse_settings

BANDS = [
    {"id": "band-0417", "address": "c0:ff:ee:00:04:17"},
    {"id": "band-0418", "address": "C0:FF:EE:00:04:18"},
]


def config(transport: str = "ble", kind: str = "wristband", **options: Any) -> DeviceConfig:
    return DeviceConfig(kind, "wristbands-floor2", transport, {"bands": BANDS, **options})


def test_defaults_are_for_real_hardware() -> None:
    settings = parse_settings(config())
    assert [band.address for band in settings.bands] == ["C0:FF:EE:00:04:17", "C0:FF:EE:00:04:18"]
    assert settings.backend == "bleak"
    assert settings.bumble_transport is None
    assert settings.connect_timeout >= 10
    assert settings.gatt_timeout >= 10
    assert settings.presence.interval == timedelta(seconds=5)
    assert settings.presence.missed == 3
    assert settings.alarms.heart_rate_after == timedelta(seconds=30)


def test_every_option_is_read() -> None:
    settings = parse_settings(
        config(
            backend="bumble:tcp-client:127.0.0.1:9110",
            adapter="hci1",
            heart_rate_low=45,
            heart_rate_high=140,
            heart_rate_alarm_after=12,
            battery_low=15,
            presence_interval=0.5,
            presence_missed=4,
            rssi_smoothing=0.2,
            connect=False,
            connect_timeout=1.5,
            connect_attempts=2,
            gatt_timeout=0.5,
            watchdog_timeout=2.0,
            watchdog_max_wait=8.0,
            reconnect_initial=0.1,
            reconnect_max=0.4,
        )
    )
    assert settings.bumble_transport == "tcp-client:127.0.0.1:9110"
    assert settings.adapter == "hci1"
    assert (settings.alarms.heart_rate_low, settings.alarms.heart_rate_high) == (45, 140)
    assert settings.alarms.heart_rate_after == timedelta(seconds=12)
    assert settings.alarms.battery_low == 15
    assert settings.presence.interval == timedelta(seconds=0.5)
    assert settings.presence.missed == 4
    assert settings.presence.alpha == 0.2
    assert settings.connect is False
    assert (settings.connect_timeout, settings.connect_attempts, settings.gatt_timeout) == (
        1.5,
        2,
        0.5,
    )
    assert (settings.watchdog_timeout, settings.watchdog_max_wait) == (2.0, 8.0)
    assert (settings.reconnect_initial, settings.reconnect_max) == (0.1, 0.4)


def test_create_device_builds_the_fleet() -> None:
    fleet = create_device(config())
    assert isinstance(fleet, WristbandFleet)
    # Checked by mypy: the fleet satisfies the agent's Device protocol.
    device: Device = fleet
    assert device.id == "wristbands-floor2"


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"colour": "red"}, "colour", "unknown option"),
        ({"heart_rate_low": "40"}, "heart_rate_low", "expected an integer"),
        ({"heart_rate_low": True}, "heart_rate_low", "expected an integer"),
        ({"heart_rate_low": 150, "heart_rate_high": 150}, "heart_rate_high", "greater than"),
        ({"battery_low": 120}, "battery_low", "percentage"),
        ({"presence_interval": 0}, "presence_interval", "greater than 0"),
        ({"presence_missed": 0}, "presence_missed", "at least 1"),
        ({"rssi_smoothing": 1.5}, "rssi_smoothing", "(0, 1]"),
        ({"connect": "yes"}, "connect", "true or false"),
        ({"connect_timeout": 2.0}, "connect_timeout", "at least 10 s with a real adapter"),
        ({"gatt_timeout": 5}, "gatt_timeout", "at least 10 s"),
        ({"backend": "bluez"}, "backend", "'bleak' or 'bumble:<transport>'"),
        ({"backend": "bumble:"}, "backend", "bumble:<transport>"),
        ({"backend": 3}, "backend", "expected a string"),
        ({"adapter": "hci0/x"}, "adapter", "adapter name"),
        ({"watchdog_max_wait": 20.0}, "watchdog_max_wait", "at least watchdog_timeout"),
        ({"reconnect_initial": 5.0, "reconnect_max": 1.0}, "reconnect_max", "at least"),
        ({"bands": []}, "bands", "non-empty list"),
        ({"bands": "band-1"}, "bands", "non-empty list"),
        ({"bands": ["band-1"]}, "bands[0]", "table"),
        ({"bands": [{"id": "b1"}]}, "bands[0].address", "Bluetooth address"),
        ({"bands": [{"id": "b/1", "address": "C0:FF:EE:00:00:01"}]}, "bands[0].id", "letters"),
        (
            {"bands": [{"id": "b1", "address": "C0:FF:EE:00:00:01", "hr": 1}]},
            "bands[0].hr",
            "unknown key",
        ),
        (
            {
                "bands": [
                    {"id": "b1", "address": "C0:FF:EE:00:00:01"},
                    {"id": "b1", "address": "C0:FF:EE:00:00:02"},
                ]
            },
            "bands[1].id",
            "duplicate",
        ),
        (
            {
                "bands": [
                    {"id": "b1", "address": "C0:FF:EE:00:00:01"},
                    {"id": "b2", "address": "c0:ff:ee:00:00:01"},
                ]
            },
            "bands[1].address",
            "duplicate",
        ),
    ],
)
def test_bad_options_name_their_key(changes: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(DeviceConfigError) as caught:
        parse_settings(config(**changes))
    assert caught.value.key == key
    assert message in str(caught.value)


def test_emulated_backends_may_use_short_timeouts() -> None:
    settings = parse_settings(
        config(
            backend="bumble:tcp-client:127.0.0.1:1",
            connect_timeout=0.5,
            gatt_timeout=0.5,
            watchdog_timeout=0.5,
        )
    )
    assert settings.connect_timeout == 0.5


def test_common_keys_are_checked() -> None:
    with pytest.raises(DeviceConfigError) as caught:
        parse_settings(config(transport="serial:/dev/ttyUSB0"))
    assert caught.value.key == "transport"
    with pytest.raises(DeviceConfigError) as caught:
        parse_settings(config(kind="cabinet"))
    assert caught.value.key == "kind"
    with pytest.raises(DeviceConfigError) as caught:
        parse_settings(DeviceConfig("wristband", "a/b", "ble", {"bands": BANDS}))
    assert caught.value.key == "id"
    with pytest.raises(DeviceConfigError) as caught:
        parse_settings(DeviceConfig("wristband", "w", "ble", {}))
    assert caught.value.key == "bands"
