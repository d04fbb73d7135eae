"""The wristband package's errors.

::

    DeviceError                        (devices.base)
    ├── ProtocolError                  (devices.base)
    │   └── WristbandProtocolError     bytes that do not follow a wristband format
    │       ├── FrameLengthError       too short, too long, odd RR byte count
    │       ├── FieldValueError        a field outside its range (battery 101 %)
    │       ├── UnknownCompanyError    manufacturer data from another company id
    │       └── EncodeError            a value that cannot be encoded
    ├── DeviceConfigError              (devices.base) a bad ``[[devices]]`` option
    └── CommandRejected                (devices.base) a command the fleet cannot carry out

Codecs raise :class:`WristbandProtocolError` subclasses and nothing else; each carries the
format it was decoding (``what``) and the offending bytes, so that a log line or a counter can
say which characteristic misbehaved.
"""

from __future__ import annotations

from devices.base import ProtocolError


class WristbandProtocolError(ProtocolError):
    """Bytes that do not follow one of the wristband formats."""

    def __init__(self, what: str, data: bytes, reason: str) -> None:
        super().__init__(f"{what}: {reason} (data {data.hex(' ') or 'empty'})")
        self.what = what
        self.data = bytes(data)
        self.reason = reason


class FrameLengthError(WristbandProtocolError):
    """The value is shorter or longer than its flags say it is."""


class FieldValueError(WristbandProtocolError):
    """A field holds a value its specification does not allow."""


class UnknownCompanyError(WristbandProtocolError):
    """Manufacturer-specific data that belongs to another company identifier."""


class EncodeError(WristbandProtocolError):
    """A value that the format cannot carry (a heart rate above 255 in the uint8 format)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what, b"", reason)
