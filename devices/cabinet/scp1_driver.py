"""The SCP/1 driver: requests over a shared serial bus, with deadlines and bounded retries.

Retry policy (every figure is an option of the device):

========================  ===========================================================
no valid reply in time    send the same bytes again (same SEQ) up to ``retries`` times;
                          the board answers a repeated SEQ from its cache, so a retried
                          UNLOCK_SLOT never unlocks twice. Then :class:`BoardSilentError`.
bad CRC, garbage          the frame is dropped and counted; the deadline runs on.
STATUS 03 busy            the board did not execute the request: wait ``busy_delay`` and
                          send it again with a NEW SEQ (the same SEQ would only fetch the
                          cached "busy"), up to ``busy_retries`` times; then
                          :class:`BoardStatusError`.
other error STATUS        :class:`BoardStatusError` at once.
========================  ===========================================================

SEQ starts at a random value so that a restarted agent does not collide with the board's cache
of the previous run's last request.
"""

from __future__ import annotations

import asyncio
import random
from typing import TypeVar

from devices.base import DeviceHealth
from devices.cabinet.bus import SHARED_BUSES, BusRegistry, SerialBus
from devices.cabinet.driver import BoardInfo, CabinetDriver
from devices.cabinet.errors import BoardStatusError, PayloadError, Status, TransportError
from devices.cabinet.scp1 import (
    ALL_SLOTS,
    RESPONSE_BIT,
    AckEvents,
    BoardEvent,
    ErrorReply,
    EventsReply,
    GetEvents,
    GetInfo,
    GetSlotStatus,
    InfoReply,
    InventoryReply,
    Reply,
    Request,
    RfidInventory,
    SlotState,
    SlotStatusReply,
    TagRead,
    UnlockReply,
    UnlockSlot,
    decode_reply,
    encode_request,
)

_R = TypeVar("_R", bound=Reply)

# A board that keeps saying "more" is not believed past this many inventory pages.
MAX_INVENTORY_PAGES = 64


class Scp1Driver(CabinetDriver):
    """One SCP/1 board at one address on a serial port (a path or a pyserial URL)."""

    protocol = "scp1"
    buffered_events = True
    has_rfid = True

    def __init__(
        self,
        port: str,
        address: int,
        *,
        baudrate: int = 9600,
        request_timeout: float = 0.5,
        retries: int = 2,
        busy_retries: int = 2,
        busy_delay: float = 0.1,
        open_timeout: float = 5.0,
        health: DeviceHealth | None = None,
        buses: BusRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(port, address, health)
        self.baudrate = baudrate
        self.request_timeout = request_timeout
        self.retries = retries
        self.busy_retries = busy_retries
        self.busy_delay = busy_delay
        self.open_timeout = open_timeout
        self._buses = buses if buses is not None else SHARED_BUSES
        self._bus: SerialBus | None = None
        self._seq = (rng or random.Random()).randrange(256)

    async def _open(self) -> None:
        """Join the port's bus; the port itself opens on the first request."""
        if self._bus is None:
            self._bus = self._buses.acquire(self.port, self.baudrate, self.open_timeout)

    async def _close(self) -> None:
        """Leave the bus; the last driver on it closes the port."""
        bus, self._bus = self._bus, None
        if bus is not None:
            await self._buses.release(bus)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    async def request(self, request: Request) -> Reply:
        """Send ``request`` and return its OK reply (see the retry policy above)."""
        if self._bus is None:
            raise TransportError(self.port, "driver is not open")
        command = request.command
        for busy_round in range(self.busy_retries + 1):
            seq = self._next_seq()
            frame = await self._bus.transact(
                encode_request(self.address, seq, request),
                address=self.address,
                cmd=command | RESPONSE_BIT,
                seq=seq,
                attempt_seconds=self.request_timeout,
                attempts=self.retries + 1,
                health=self.health,
            )
            self.health.frame()
            try:
                reply = decode_reply(frame)
            except PayloadError:
                self.health.error("payload")
                raise
            if not isinstance(reply, ErrorReply):
                return reply
            if reply.status is Status.BUSY and busy_round < self.busy_retries:
                self.health.error("busy")
                await asyncio.sleep(self.busy_delay)
                continue
            self.health.error("status")
            raise BoardStatusError(self.address, command.label, reply.status)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _expect(self, request: Request, kind: type[_R]) -> _R:
        reply = await self.request(request)
        if not isinstance(reply, kind):
            self.health.error("payload")
            raise PayloadError(request.command.label, f"unexpected reply {reply!r}")
        return reply

    async def info(self) -> BoardInfo:
        """GET_INFO."""
        reply = await self._expect(GetInfo(), InfoReply)
        return BoardInfo("scp1", reply.proto_ver, reply.slot_count, reply.model)

    async def slot_status(self) -> tuple[SlotState, ...]:
        """GET_SLOT_STATUS for all slots."""
        return (await self._expect(GetSlotStatus(ALL_SLOTS), SlotStatusReply)).slots

    async def inventory(self) -> tuple[TagRead, ...]:
        """RFID_INVENTORY for all slots, every page."""
        tags: list[TagRead] = []
        for page in range(MAX_INVENTORY_PAGES):
            reply = await self._expect(RfidInventory(ALL_SLOTS, page), InventoryReply)
            tags.extend(reply.tags)
            if not reply.more:
                break
        else:
            self.health.error("payload")
        return tuple(tags)

    async def events_since(self, since: int) -> tuple[BoardEvent, ...]:
        """GET_EVENTS since ``since``: at most 16; ask again while a full batch comes back."""
        return (await self._expect(GetEvents(since & 0xFFFF), EventsReply)).events

    async def ack_events(self, up_to: int) -> None:
        """ACK_EVENTS up to and including ``up_to``."""
        await self.request(AckEvents(up_to & 0xFFFF))

    async def unlock(self, slot: int, pulse_ms: int) -> None:
        """UNLOCK_SLOT; retried with the same SEQ, so the board pulses the lock once."""
        reply = await self._expect(UnlockSlot(slot, pulse_ms), UnlockReply)
        if reply.slot != slot:
            self.health.error("payload")
            raise PayloadError("UNLOCK_SLOT", f"reply names slot {reply.slot}, not {slot}")
