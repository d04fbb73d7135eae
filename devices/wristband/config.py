"""The wristband fleet's options: one ``[[devices]]`` table, checked before anything starts.

Example (``deploy/agent.toml`` style)::

    [[devices]]
    kind = "wristband"
    id = "wristbands-floor2"
    transport = "ble"
    [devices.options]
    bands = [{ id = "band-0417", address = "C0:FF:EE:00:04:17" },
             { id = "band-0418", address = "C0:FF:EE:00:04:18" }]
    backend = "bleak"               # or "bumble:tcp-client:127.0.0.1:9110" for emulated bands
    adapter = "hci0"                # BlueZ adapter; default: the system's default adapter
    room = "int-2"                  # the centre's room this scanner covers (presence placement)
    heart_rate_low = 40             # bpm
    heart_rate_high = 150           # bpm
    heart_rate_alarm_after = 30.0   # s out of range before heart_rate_alarm
    battery_low = 20                # percent
    presence_interval = 5.0         # s
    presence_missed = 3             # intervals without an advertisement -> band_absent
    rssi_smoothing = 0.3            # EWMA weight of a new RSSI sample, (0, 1]
    connect = true                  # false: advertisements only (presence, custody mirror)
    connect_timeout = 20.0          # s per connection attempt (>= 10 on a real adapter)
    connect_attempts = 3            # attempts per establish_connection call
    gatt_timeout = 10.0             # s per read/write/subscribe (>= 10 on a real adapter)
    watchdog_timeout = 30.0         # s without any advertisement before the scan is restarted
    watchdog_max_wait = 600.0       # s, cap of the watchdog's growing wait between resets
    reconnect_initial = 1.0         # s, first wait after a lost or failed connection
    reconnect_max = 60.0            # s, cap of that wait

Unknown keys and wrong types raise :class:`~devices.base.DeviceConfigError` naming the key
(``bands[1].address`` for a key inside the band list).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from devices.base import DeviceConfig, DeviceConfigError
from devices.wristband.alarms import AlarmPolicy
from devices.wristband.presence import PresencePolicy

KIND = "wristband"
TRANSPORTS = ("ble", "")
# Real adapters need time: BlueZ itself waits up to ~20 s for a connection, and a band busy
# with an indication can take seconds to answer a read.
MIN_HARDWARE_TIMEOUT = 10.0

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


@dataclass(frozen=True, slots=True)
class BandSpec:
    """One band of the fleet: the id readings carry and the address it advertises from."""

    id: str
    address: str


@dataclass(frozen=True, slots=True)
class WristbandSettings:
    """Validated options of one wristband fleet."""

    fleet: str
    bands: tuple[BandSpec, ...]
    backend: str = "bleak"
    adapter: str | None = None
    # The centre's room id this fleet's scanner covers: its presence readings name it, and the
    # centre places a bound person in the room whose scanner heard the band last and strongest.
    room: str | None = None
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    presence: PresencePolicy = field(default_factory=PresencePolicy)
    connect: bool = True
    connect_timeout: float = 20.0
    connect_attempts: int = 3
    gatt_timeout: float = 10.0
    watchdog_timeout: float = 30.0
    watchdog_max_wait: float = 600.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0

    @property
    def bumble_transport(self) -> str | None:
        """The bumble transport spec when the backend is ``bumble:<transport>``."""
        return self.backend.removeprefix("bumble:") if self.backend.startswith("bumble:") else None

    def band(self, band_id: str) -> BandSpec | None:
        """The band with ``band_id``, if the fleet has it."""
        return next((band for band in self.bands if band.id == band_id), None)


_KEYS = frozenset(
    {
        "bands",
        "backend",
        "adapter",
        "room",
        "heart_rate_low",
        "heart_rate_high",
        "heart_rate_alarm_after",
        "battery_low",
        "presence_interval",
        "presence_missed",
        "rssi_smoothing",
        "connect",
        "connect_timeout",
        "connect_attempts",
        "gatt_timeout",
        "watchdog_timeout",
        "watchdog_max_wait",
        "reconnect_initial",
        "reconnect_max",
    }
)


def parse_settings(config: DeviceConfig) -> WristbandSettings:
    """Check ``config`` and build the fleet's settings; raises ``DeviceConfigError``."""
    if config.kind != KIND:
        raise DeviceConfigError("kind", f"expected {KIND!r}, got {config.kind!r}")
    if not _NAME.fullmatch(config.id):
        raise DeviceConfigError("id", f"{config.id!r} must be 1-64 letters, digits or _.:-")
    if config.transport not in TRANSPORTS:
        raise DeviceConfigError("transport", f"wristbands use 'ble', got {config.transport!r}")
    options = dict(config.options)
    unknown = sorted(set(options) - _KEYS)
    if unknown:
        raise DeviceConfigError(unknown[0], f"unknown option (known: {', '.join(sorted(_KEYS))})")
    if "bands" not in options:
        raise DeviceConfigError("bands", "required: a list of {id, address} tables")
    bands = _bands(options["bands"])
    backend = _str(options, "backend", "bleak")
    if backend != "bleak" and not (backend.startswith("bumble:") and len(backend) > 7):
        raise DeviceConfigError("backend", "must be 'bleak' or 'bumble:<transport>'")
    hardware = backend == "bleak"
    defaults = WristbandSettings(config.id, bands)
    hr_low = _int(options, "heart_rate_low", defaults.alarms.heart_rate_low, 0)
    hr_high = _int(options, "heart_rate_high", defaults.alarms.heart_rate_high, 1)
    if hr_high <= hr_low:
        raise DeviceConfigError("heart_rate_high", "must be greater than heart_rate_low")
    battery_low = _int(options, "battery_low", defaults.alarms.battery_low, 0)
    if battery_low > 100:
        raise DeviceConfigError("battery_low", "must be a percentage, 0-100")
    alarms = AlarmPolicy(
        heart_rate_low=hr_low,
        heart_rate_high=hr_high,
        heart_rate_after=timedelta(
            seconds=_float(
                options,
                "heart_rate_alarm_after",
                defaults.alarms.heart_rate_after.total_seconds(),
                0.0,
            )
        ),
        battery_low=battery_low,
    )
    smoothing = _float(options, "rssi_smoothing", defaults.presence.alpha, 0.0)
    if not 0.0 < smoothing <= 1.0:
        raise DeviceConfigError("rssi_smoothing", "must be in (0, 1]")
    presence = PresencePolicy(
        interval=timedelta(
            seconds=_positive(
                options, "presence_interval", defaults.presence.interval.total_seconds()
            )
        ),
        missed=_int(options, "presence_missed", defaults.presence.missed, 1),
        alpha=smoothing,
    )
    minimum = MIN_HARDWARE_TIMEOUT if hardware else 0.0
    timeouts = {
        key: _positive(options, key, getattr(defaults, key), minimum)
        for key in ("connect_timeout", "gatt_timeout", "watchdog_timeout")
    }
    watchdog_max_wait = _positive(options, "watchdog_max_wait", defaults.watchdog_max_wait)
    if watchdog_max_wait < timeouts["watchdog_timeout"]:
        raise DeviceConfigError("watchdog_max_wait", "must be at least watchdog_timeout")
    reconnect_initial = _positive(options, "reconnect_initial", defaults.reconnect_initial)
    reconnect_max = _positive(options, "reconnect_max", defaults.reconnect_max)
    if reconnect_max < reconnect_initial:
        raise DeviceConfigError("reconnect_max", "must be at least reconnect_initial")
    adapter = options.get("adapter")
    if adapter is not None and not (isinstance(adapter, str) and _NAME.fullmatch(adapter)):
        raise DeviceConfigError("adapter", "must be an adapter name such as 'hci0'")
    room = options.get("room")
    if room is not None and not (isinstance(room, str) and _NAME.fullmatch(room)):
        raise DeviceConfigError("room", "must be a room id of the centre, such as 'int-2'")
    return WristbandSettings(
        fleet=config.id,
        bands=bands,
        backend=backend,
        adapter=adapter,
        room=room,
        alarms=alarms,
        presence=presence,
        connect=_bool(options, "connect", defaults.connect),
        connect_timeout=timeouts["connect_timeout"],
        connect_attempts=_int(options, "connect_attempts", defaults.connect_attempts, 1),
        gatt_timeout=timeouts["gatt_timeout"],
        watchdog_timeout=timeouts["watchdog_timeout"],
        watchdog_max_wait=watchdog_max_wait,
        reconnect_initial=reconnect_initial,
        reconnect_max=reconnect_max,
    )


def _bands(value: Any) -> tuple[BandSpec, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise DeviceConfigError("bands", "must be a non-empty list of {id, address} tables")
    bands: list[BandSpec] = []
    for index, entry in enumerate(value):
        where = f"bands[{index}]"
        if not isinstance(entry, Mapping):
            raise DeviceConfigError(where, "must be a table with id and address")
        extra = sorted(set(entry) - {"id", "address"})
        if extra:
            raise DeviceConfigError(f"{where}.{extra[0]}", "unknown key (known: id, address)")
        band_id, address = entry.get("id"), entry.get("address")
        if not isinstance(band_id, str) or not _NAME.fullmatch(band_id):
            raise DeviceConfigError(f"{where}.id", "must be 1-64 letters, digits or _.:-")
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise DeviceConfigError(
                f"{where}.address", "must be a Bluetooth address AA:BB:CC:DD:EE:FF"
            )
        if any(band.id == band_id for band in bands):
            raise DeviceConfigError(f"{where}.id", f"duplicate band id {band_id!r}")
        if any(band.address == address.upper() for band in bands):
            raise DeviceConfigError(f"{where}.address", f"duplicate address {address}")
        bands.append(BandSpec(band_id, address.upper()))
    return tuple(bands)


def _str(options: Mapping[str, Any], key: str, default: str) -> str:
    value = options.get(key, default)
    if not isinstance(value, str):
        raise DeviceConfigError(key, f"expected a string, got {type(value).__name__}")
    return value


def _bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise DeviceConfigError(key, f"expected true or false, got {type(value).__name__}")
    return value


def _int(options: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = options.get(key, default)
    # bool is an int to Python, never to a person writing a config file.
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeviceConfigError(key, f"expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise DeviceConfigError(key, f"must be at least {minimum}")
    return value


def _float(options: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DeviceConfigError(key, f"expected a number, got {type(value).__name__}")
    if value < minimum:
        raise DeviceConfigError(key, f"must be at least {minimum}")
    return float(value)


def _positive(options: Mapping[str, Any], key: str, default: float, minimum: float = 0.0) -> float:
    value = _float(options, key, default, 0.0)
    if value <= 0:
        raise DeviceConfigError(key, "must be greater than 0")
    if value < minimum:
        raise DeviceConfigError(key, f"must be at least {minimum:g} s with a real adapter")
    return value
