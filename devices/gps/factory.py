"""Build a :class:`~devices.gps.driver.GpsDevice` from a ``[[devices]]`` table.

::

    [[devices]]
    kind = "gps"
    id = "van-3-gps"
    transport = "/dev/ttyUSB0"        # or "socket://10.0.0.5:4001", "gpsd://127.0.0.1:2947"
    baudrate = 9600                   # the options sit beside the common keys
    timeout = 10.0
    max_speed = 60.0
    max_hdop = false

Options (all optional): ``baudrate`` (int, serial only), ``timeout`` (seconds without a
sentence before the device is offline, default 10), ``reconnect_after`` (seconds of silence
before the port is reopened, default 60), ``connect_timeout``, ``backoff_initial``,
``backoff_max``, ``backoff_jitter``, and the filters of :mod:`devices.gps.filters`:
``filter_zero`` and ``filter_duplicate`` (bool), ``future_tolerance``, ``max_age``,
``max_eph``, ``max_hdop``, ``min_period``, ``max_speed`` (numbers; ``false`` switches the check
off) and ``speed_reset_after`` (int).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from devices.base import DeviceConfig, DeviceConfigError
from devices.gps.driver import GpsDevice, GpsSettings
from devices.gps.filters import FilterSettings

# pyserial URL schemes that work with the asyncio wrapper (loop:// does not, see devices.md).
_SERIAL_SCHEMES: Final = frozenset({"socket", "rfc2217"})
_POSITIVE: Final = (
    "timeout",
    "reconnect_after",
    "connect_timeout",
    "backoff_initial",
    "backoff_max",
)
_LIMITS: Final = ("future_tolerance", "max_age", "max_eph", "max_hdop", "min_period", "max_speed")
_SWITCHES: Final = ("filter_zero", "filter_duplicate")
KNOWN_OPTIONS: Final = frozenset(
    {"baudrate", "backoff_jitter", "speed_reset_after", *_POSITIVE, *_LIMITS, *_SWITCHES}
)


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeviceConfigError(key, f"must be a number, not {value!r}")
    return float(value)


def _integer(key: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DeviceConfigError(key, f"must be an integer >= {low}, not {value!r}")
    return value


def _transport(transport: str) -> str:
    if not isinstance(transport, str) or not transport.strip():
        raise DeviceConfigError("transport", "needs a serial port or gpsd://host:port")
    if transport.startswith("/"):
        return transport
    try:
        parts = urlsplit(transport)
        port = parts.port
    except ValueError as exc:
        raise DeviceConfigError("transport", f"{transport!r}: {exc}") from None
    if parts.scheme == "gpsd":
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise DeviceConfigError("transport", f"{transport!r} is not gpsd://host[:port]")
        return transport
    if parts.scheme in _SERIAL_SCHEMES:
        if not parts.hostname or port is None:
            raise DeviceConfigError("transport", f"{transport!r} needs host:port")
        return transport
    raise DeviceConfigError(
        "transport", f"{transport!r} is not a device path, socket://, rfc2217:// or gpsd:// URL"
    )


def settings_from_options(transport: str, options: Mapping[str, Any]) -> GpsSettings:
    """Validated settings; :class:`DeviceConfigError` names the first bad key."""
    for key in options:
        if key not in KNOWN_OPTIONS:
            known = ", ".join(sorted(KNOWN_OPTIONS))
            raise DeviceConfigError(str(key), f"unknown option (known: {known})")
    values: dict[str, Any] = {}
    for key in _POSITIVE:
        if key in options:
            values[key] = _number(key, options[key])
            if values[key] <= 0:
                raise DeviceConfigError(key, "must be > 0")
    filters: dict[str, Any] = {}
    for key in _LIMITS:
        if key in options:
            value = options[key]
            if value is False:
                filters[key] = None
            else:
                filters[key] = _number(key, value)
                if filters[key] < 0:
                    raise DeviceConfigError(key, "must be >= 0 (or false to switch it off)")
    for key in _SWITCHES:
        if key in options:
            if not isinstance(options[key], bool):
                raise DeviceConfigError(key, f"must be true or false, not {options[key]!r}")
            filters[key.removeprefix("filter_")] = options[key]
    if "speed_reset_after" in options:
        filters["speed_reset_after"] = _integer(
            "speed_reset_after", options["speed_reset_after"], 1
        )
    jitter = _number("backoff_jitter", options.get("backoff_jitter", 0.5))
    if jitter < 0:
        raise DeviceConfigError("backoff_jitter", "must be >= 0")
    baudrate = _integer("baudrate", options.get("baudrate", 9600), 1)
    backoff_initial = values.get("backoff_initial", 0.5)
    backoff_max = values.get("backoff_max", max(30.0, backoff_initial))
    if backoff_max < backoff_initial:
        raise DeviceConfigError("backoff_max", "must be >= backoff_initial")
    return GpsSettings(
        transport=_transport(transport),
        baudrate=baudrate,
        offline_after=values.get("timeout", 10.0),
        reconnect_after=values.get("reconnect_after", 60.0),
        connect_timeout=values.get("connect_timeout", 5.0),
        backoff_initial=backoff_initial,
        backoff_max=backoff_max,
        backoff_jitter=jitter,
        filters=FilterSettings(**filters),
    )


def create_device(config: DeviceConfig) -> GpsDevice:
    """The driver for one ``[[devices]]`` table of kind ``gps``."""
    return GpsDevice(config.id, settings_from_options(config.transport, config.options))
