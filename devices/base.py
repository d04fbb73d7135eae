"""What every device class offers the edge agent, and what the agent offers a device.

A device driver knows its transport and its protocol, nothing about MQTT, the outbox or the
centre. It reports through two small interfaces the agent hands it:

- a :class:`ReadingSink`, called with every :class:`DeviceReading` (state, telemetry or event);
- a :class:`DeviceHealth`, told about good frames, errors by kind and availability, which the
  agent turns into metrics and availability messages.

Drivers are built from a :class:`DeviceConfig` (one ``[[devices]]`` table of the agent's config)
by the factory of their class, which validates the options it understands and raises
:class:`DeviceConfigError` naming the key otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class DeviceError(Exception):
    """Base of every device package's errors."""


class ProtocolError(DeviceError):
    """Bytes that do not follow the device's protocol; codecs raise this and nothing else."""


class DeviceConfigError(DeviceError, ValueError):
    """An option of a ``[[devices]]`` table that cannot be used."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class CommandRejected(DeviceError):  # noqa: N818 - named for what the centre is told
    """A command the device cannot or will not carry out; the text goes back to the centre."""


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One thing a device reports.

    ``event`` readings (a forced door, a tamper, a strap opened) are never dropped on the way to
    the centre; the others are state or telemetry (slot status, a GPS fix, a heart rate), which a
    newer reading supersedes and which may be thinned under pressure.
    """

    device: str
    kind: str
    time: datetime
    body: Mapping[str, Any]
    event: bool = False


class ReadingRefused(DeviceError):  # noqa: N818 - named for what the device is told
    """Raised by a :class:`ReadingSink` that cannot take an event now (the agent's disk is full).

    The event was not accepted: the device keeps it and hands it again later (a cabinet leaves
    its board's event cursor where it was and reads the event again at the next poll). Only
    events are ever refused this way; telemetry a full disk cannot hold is dropped and counted
    by the agent.
    """


class ReadingSink(Protocol):
    """Takes one reading; raises :class:`ReadingRefused` for an event it cannot accept now."""

    def __call__(self, reading: DeviceReading) -> None: ...


class DeviceHealth(Protocol):
    """Per-device health; the agent exposes it as metrics and availability."""

    def frame(self) -> None:
        """A frame, notification or sentence was decoded."""

    def error(self, kind: str) -> None:
        """Something went wrong; ``kind`` is a short stable label (``crc``, ``timeout``…)."""

    def available(self, online: bool) -> None:
        """The device answers (or stopped answering)."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One ``[[devices]]`` table: common keys, and the rest for the device class to check."""

    kind: str
    id: str
    transport: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> DeviceConfig:
        """Read one ``[[devices]]`` table; raises :class:`DeviceConfigError` naming the key."""
        values = dict(table)
        common: dict[str, str] = {}
        for key in ("kind", "id", "transport"):
            value = values.pop(key, None)
            if not isinstance(value, str) or not value:
                raise DeviceConfigError(key, "a non-empty string is required")
            common[key] = value
        # Options may sit beside the common keys or in a [devices.options] subtable.
        nested = values.pop("options", {})
        if not isinstance(nested, Mapping):
            raise DeviceConfigError("options", "must be a table")
        for key, value in nested.items():
            if key in values:
                raise DeviceConfigError(key, "given twice (in the table and in its options)")
            values[key] = value
        return cls(
            kind=common["kind"], id=common["id"], transport=common["transport"], options=values
        )


class Device(Protocol):
    """A running device driver, owned by the agent's device supervisor."""

    @property
    def id(self) -> str: ...

    async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
        """Talk to the device until cancelled; recover from transport errors by itself."""

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Carry out a command from the centre; raise :class:`CommandRejected` if it cannot."""
