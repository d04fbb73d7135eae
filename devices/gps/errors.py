"""Errors of the GPS device class.

::

    DeviceError (devices.base)
    └── ProtocolError (devices.base)
        └── GpsProtocolError       reason: a stable short label, counted by the driver
            ├── NmeaError          a sentence that is not well-formed NMEA 0183
            │   └── ChecksumError  the two hex digits after ``*`` do not match
            └── GpsdError          a gpsd JSON line that is not a usable report

The codecs raise these and nothing else; their stream decoders catch them, skip the input and
report the ``reason``.
"""

from __future__ import annotations

from typing import Final

from devices.base import ProtocolError

# Reasons for skipping input (malformed bytes); each is a label of the device error metric.
GARBAGE: Final = "garbage"
TOO_LONG: Final = "too_long"
NO_CHECKSUM: Final = "no_checksum"
CHECKSUM: Final = "checksum"
BAD_CHAR: Final = "bad_char"
BAD_FIELD: Final = "bad_field"
BAD_JSON: Final = "bad_json"

MALFORMED_REASONS: Final = frozenset(
    {GARBAGE, TOO_LONG, NO_CHECKSUM, CHECKSUM, BAD_CHAR, BAD_FIELD, BAD_JSON}
)


class GpsProtocolError(ProtocolError):
    """Bytes from a receiver or from gpsd that cannot be used; ``reason`` is a stable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class NmeaError(GpsProtocolError):
    """A sentence that is not well-formed NMEA 0183."""


class ChecksumError(NmeaError):
    """A sentence whose checksum does not match its content."""

    def __init__(self, detail: str) -> None:
        super().__init__(CHECKSUM, detail)


class GpsdError(GpsProtocolError):
    """A line from gpsd that is not a usable JSON report."""
