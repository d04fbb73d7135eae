"""The cabinet package's errors.

::

    DeviceError                          (devices.base)
    ├── ProtocolError                    (devices.base)
    │   └── CabinetProtocolError         bytes that do not follow a cabinet wire protocol
    │       ├── FrameError               not a frame: short, no SOF, length above the bound
    │       │   └── CrcError             a frame whose CRC does not match its bytes
    │       ├── PayloadError             a frame whose payload does not fit its command
    │       │   └── UnknownCommandError  a command code SCP/1 does not define
    │       └── EncodeError              a value the wire format cannot carry
    ├── CabinetError                     the board or its port, as seen by a driver
    │   ├── TransportError               the port cannot be opened or was lost
    │   ├── BoardSilentError             no valid answer after every attempt: board missing
    │   └── BoardStatusError             the board answered with an error status (busy, fault…)
    ├── DeviceConfigError                (devices.base) a bad ``[[devices]]`` option
    └── CommandRejected                  (devices.base) what the centre is told

Codecs raise :class:`CabinetProtocolError` subclasses and nothing else. Drivers raise
:class:`CabinetError` subclasses (and :class:`CabinetProtocolError` for a CRC-valid frame with a
malformed payload); the device turns both into health counters, and into
:class:`~devices.base.CommandRejected` for a command.
"""

from __future__ import annotations

from enum import IntEnum

from devices.base import DeviceError, ProtocolError


class Status(IntEnum):
    """The STATUS byte that starts every SCP/1 response payload."""

    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_PARAMETER = 0x02
    BUSY = 0x03
    HARDWARE_FAULT = 0x04

    @property
    def label(self) -> str:
        """A short stable label (``busy``, ``hardware_fault``) for logs, metrics and replies."""
        return self.name.lower()


class CabinetProtocolError(ProtocolError):
    """Bytes that do not follow a cabinet wire protocol."""

    def __init__(self, what: str, reason: str, data: bytes = b"") -> None:
        detail = f" (data {bytes(data[:64]).hex(' ')})" if data else ""
        super().__init__(f"{what}: {reason}{detail}")
        self.what = what
        self.reason = reason
        self.data = bytes(data)


class FrameError(CabinetProtocolError):
    """Bytes that cannot be cut into one SCP/1 frame."""


class CrcError(FrameError):
    """A frame whose CRC-16/MODBUS does not match; a board never answers one."""

    def __init__(self, expected: int, received: int, data: bytes = b"") -> None:
        super().__init__("frame", f"CRC {received:04X} where {expected:04X} was computed", data)
        self.expected = expected
        self.received = received


class PayloadError(CabinetProtocolError):
    """A well-framed message whose payload does not fit its command."""


class UnknownCommandError(PayloadError):
    """A command code that SCP/1 does not define (a board answers status 01)."""

    def __init__(self, command: int, data: bytes = b"") -> None:
        super().__init__("command", f"unknown command 0x{command:02X}", data)
        self.command = command


class EncodeError(CabinetProtocolError):
    """A value that the wire format cannot carry (a slot above 255, a 2 KiB payload)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what, reason)


class CabinetError(DeviceError):
    """The board or its port, as a driver sees them."""


class TransportError(CabinetError):
    """The port cannot be opened, or it went away."""

    def __init__(self, port: str, reason: str) -> None:
        super().__init__(f"{port}: {reason}")
        self.port = port
        self.reason = reason


class BoardSilentError(CabinetError):
    """No valid answer from the board after every attempt: it is missing, off or miswired."""

    def __init__(self, port: str, address: int, attempts: int, timeout: float) -> None:
        super().__init__(
            f"board {address} on {port} did not answer "
            f"({attempts} attempt{'s' if attempts != 1 else ''}, "
            f"{timeout:g} s each)"
        )
        self.port = port
        self.address = address
        self.attempts = attempts
        self.timeout = timeout


class BoardStatusError(CabinetError):
    """The board answered a request with an error status."""

    def __init__(self, address: int, command: str, status: Status) -> None:
        super().__init__(f"board {address} answered {command} with {status.label}")
        self.address = address
        self.command = command
        self.status = status
