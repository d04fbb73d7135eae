"""The options of a ``[[devices]]`` table of kind ``cabinet``, checked once at start-up.

::

    [[devices]]
    kind = "cabinet"
    id = "cabinet-a"
    transport = "/dev/ttyUSB0"        # a serial path or a pyserial URL (socket://host:port)
    protocol = "scp1"                   # the options sit beside the common keys
    address = 1
    state_dir = "/var/lib/precinct/cabinets"
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from devices.base import DeviceConfig, DeviceConfigError
from devices.cabinet.scp1 import ADDRESS_MAX, ADDRESS_MIN, PULSE_MS_MAX, PULSE_MS_MIN

PROTOCOLS = ("scp1", "modbus")


@dataclass(frozen=True, slots=True)
class CabinetOptions:
    """Validated cabinet options; every duration is in seconds."""

    #: Wire protocol: ``scp1`` or ``modbus``.
    protocol: str = "scp1"
    #: Board address on the bus (SCP/1 ADDR, Modbus device id), 1..247.
    address: int = 1
    #: Number of slots; SCP/1 boards report it (GET_INFO), Modbus boards need it here.
    slots: int | None = None
    baudrate: int = 9600
    #: Events and slot status are polled this often.
    poll_interval: float = 1.0
    #: Deadline of one attempt of one request.
    request_timeout: float = 0.5
    #: Further attempts after a silent deadline (same SEQ on SCP/1).
    retries: int = 2
    #: Further attempts after a "busy" answer, ``busy_delay`` apart (a new SEQ each).
    busy_retries: int = 2
    busy_delay: float = 0.1
    #: Deadline for opening the port.
    open_timeout: float = 5.0
    #: Unlock pulse when a command does not say.
    pulse_ms: int = 500
    #: RFID inventory is read this often (it is slow on real readers).
    inventory_interval: float = 30.0
    #: Unchanged slot status and inventory are sent again this often.
    status_interval: float = 60.0
    #: Where the event cursor lives (required for SCP/1).
    state_dir: Path | None = None


_INT_RANGES: dict[str, tuple[int, int]] = {
    "address": (ADDRESS_MIN, ADDRESS_MAX),
    "slots": (1, 254),
    "baudrate": (300, 4_000_000),
    "retries": (0, 10),
    "busy_retries": (0, 10),
    "pulse_ms": (PULSE_MS_MIN, PULSE_MS_MAX),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "poll_interval": (0.01, 3600.0),
    "request_timeout": (0.01, 30.0),
    "busy_delay": (0.0, 10.0),
    "open_timeout": (0.1, 60.0),
    "inventory_interval": (0.01, 86400.0),
    "status_interval": (0.01, 86400.0),
}
KNOWN_OPTIONS = tuple(f.name for f in fields(CabinetOptions))


def _check(key: str, value: Any) -> Any:
    if key == "protocol":
        if value not in PROTOCOLS:
            raise DeviceConfigError(key, f"{value!r} is not one of {', '.join(PROTOCOLS)}")
        return value
    if key == "state_dir":
        if not isinstance(value, (str, Path)) or not str(value):
            raise DeviceConfigError(key, "must be a directory path")
        return Path(value)
    if key in _INT_RANGES:
        low, high = _INT_RANGES[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise DeviceConfigError(key, f"must be an integer, not {type(value).__name__}")
        if not low <= value <= high:
            raise DeviceConfigError(key, f"{value} is outside {low}..{high}")
        return value
    low_f, high_f = _FLOAT_RANGES[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DeviceConfigError(key, f"must be a number of seconds, not {type(value).__name__}")
    if not low_f <= value <= high_f:
        raise DeviceConfigError(key, f"{value} is outside {low_f:g}..{high_f:g} s")
    return float(value)


def parse_options(config: DeviceConfig) -> CabinetOptions:
    """Check ``config`` and its options; :class:`DeviceConfigError` names the first bad key."""
    if not isinstance(config.transport, str) or not config.transport.strip():
        raise DeviceConfigError("transport", "must be a serial port path or a pyserial URL")
    values: dict[str, Any] = {}
    for key, value in config.options.items():
        if key not in KNOWN_OPTIONS:
            raise DeviceConfigError(key, f"unknown option (known: {', '.join(KNOWN_OPTIONS)})")
        values[key] = _check(key, value)
    options = CabinetOptions(**values)
    if options.protocol == "modbus" and options.slots is None:
        raise DeviceConfigError("slots", "a Modbus lock board needs its slot count")
    if options.protocol == "scp1" and options.state_dir is None:
        raise DeviceConfigError("state_dir", "SCP/1 needs a directory for its event cursor")
    return options
