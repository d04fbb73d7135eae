"""The interface every cabinet wire protocol implements, and the values it speaks in.

A :class:`CabinetDriver` talks to one lock board at one address: SCP/1
(:mod:`devices.cabinet.scp1_driver`) or a Modbus RTU lock board
(:mod:`devices.cabinet.modbus_driver`). The device (:mod:`devices.cabinet.device`) owns the
polling, the event cursor and what reaches the agent; drivers own the port, deadlines and
retries. Slots are numbered from 1, as on the cabinet's doors; board-wide events carry slot 0.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from types import TracebackType

from devices.base import DeviceHealth
from devices.cabinet.scp1 import BoardEvent, SlotState, TagRead

__all__ = ["BoardEvent", "BoardInfo", "CabinetDriver", "NullHealth", "SlotState", "TagRead"]


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What a board says about itself."""

    protocol: str
    version: int
    slot_count: int
    model: str


class NullHealth:
    """A :class:`~devices.base.DeviceHealth` that records nothing (the probe command)."""

    def frame(self) -> None:
        """Ignore a decoded frame."""

    def error(self, kind: str) -> None:
        """Ignore an error."""

    def available(self, online: bool) -> None:
        """Ignore availability."""


class CabinetDriver(abc.ABC):
    """One lock board at one address, behind one wire protocol.

    Use it as an async context manager: entering opens (or joins) the port, leaving releases
    it. Entries nest (the polling loop and a command may both hold the driver); the port is let
    go when the last one leaves. Every method has a deadline and bounded retries inside; a
    board that never answers raises :class:`~devices.cabinet.errors.BoardSilentError`.
    """

    #: Short protocol name, as in the ``protocol`` option.
    protocol: str
    #: Events wait on the board until acknowledged (SCP/1): the device keeps a cursor on disk.
    #: Otherwise (Modbus) the driver derives events from successive polls.
    buffered_events: bool
    #: The board reports RFID tags per slot.
    has_rfid: bool

    def __init__(self, port: str, address: int, health: DeviceHealth | None = None) -> None:
        self.port = port
        self.address = address
        self.health: DeviceHealth = health if health is not None else NullHealth()
        self._users = 0

    async def __aenter__(self) -> CabinetDriver:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        """Whether someone holds the driver open."""
        return self._users > 0

    async def open(self) -> None:
        """Join the port (it is opened on first use and reopened after a loss)."""
        if self._users == 0:
            await self._open()
        self._users += 1

    async def close(self) -> None:
        """Leave the port; the last user closes it, within a bounded time."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0:
            await self._close()

    @abc.abstractmethod
    async def _open(self) -> None:
        """Acquire the port for this board."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release the port."""

    @abc.abstractmethod
    async def info(self) -> BoardInfo:
        """Protocol version, slot count and model."""

    @abc.abstractmethod
    async def slot_status(self) -> tuple[SlotState, ...]:
        """Every slot's door, lock, item and fault state."""

    @abc.abstractmethod
    async def inventory(self) -> tuple[TagRead, ...]:
        """Every RFID tag the board sees, with its slot."""

    @abc.abstractmethod
    async def events_since(self, since: int) -> tuple[BoardEvent, ...]:
        """Events after sequence number ``since`` (16-bit, compared modulo 2**16)."""

    @abc.abstractmethod
    async def ack_events(self, up_to: int) -> None:
        """Let the board forget events up to and including ``up_to``."""

    @abc.abstractmethod
    async def unlock(self, slot: int, pulse_ms: int) -> None:
        """Pulse one slot's lock, exactly once even when a reply is lost and retried."""
