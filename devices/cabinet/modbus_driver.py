"""A Modbus RTU lock board behind the cabinet driver interface (pymodbus 3.16).

The register map of the supported boards (slot ``k`` is bit or register ``k - 1``)::

    coils             0..N-1  lock output; writing ON pulses the lock open for HR 0 ms,
                              the board clears the coil itself when the pulse ends
    discrete inputs   0..N-1  door sensor, 1 = open
    input registers   0..N-1  unlock counter per slot, uint16, wrapping
    holding register  0       pulse length in ms (50..2000)

Modbus RTU has no sequence number, so a retried "write coil" after a lost reply could pulse a
lock twice. The unlock counter makes it safe: the driver reads it before the write and, when a
write goes unanswered, reads it again; a counter that moved means the first write did pulse
the lock, and nothing is sent again.

Such a board buffers no events: the driver derives them from successive polls (door edges; a
door that opens while its coil is off and its counter did not move is a forced door). An open
and close that both fall between two polls are invisible, and nothing reports tamper, power or
RFID; SCP/1 boards do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from devices.base import DeviceHealth
from devices.cabinet.driver import BoardInfo, CabinetDriver
from devices.cabinet.errors import (
    BoardSilentError,
    BoardStatusError,
    Status,
    TransportError,
)
from devices.cabinet.scp1 import SEQ_MODULUS, BoardEvent, EventType, SlotState, TagRead

PULSE_REGISTER = 0
# pymodbus keeps its own deadline per request; ours bounds the call whatever pymodbus does.
_DEADLINE_MARGIN = 0.5

_STATUS_BY_EXCEPTION: dict[int, Status] = {
    ExcCodes.ILLEGAL_FUNCTION: Status.UNKNOWN_COMMAND,
    ExcCodes.ILLEGAL_ADDRESS: Status.BAD_PARAMETER,
    ExcCodes.ILLEGAL_VALUE: Status.BAD_PARAMETER,
    ExcCodes.DEVICE_BUSY: Status.BUSY,
}

ModbusCall = Callable[[AsyncModbusSerialClient], Awaitable[ModbusPDU]]


class _NoReplyError(Exception):
    """One attempt got no usable answer."""


class _BusyError(Exception):
    """The board answered "device busy"."""


class _ModbusLink:
    """One pymodbus client per port, shared by the boards on it; one request at a time."""

    def __init__(self, port: str, baudrate: int, timeout: float) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.lock = asyncio.Lock()
        self.users = 0
        self.client: AsyncModbusSerialClient | None = None

    async def ready(self, open_timeout: float) -> AsyncModbusSerialClient:
        if self.client is not None and self.client.connected:
            return self.client
        self.drop()
        # retries=0: retrying is this driver's decision (a write coil must not be resent
        # blindly); reconnect_delay=0: reconnecting too, on the next request.
        client = AsyncModbusSerialClient(
            self.port,
            framer=FramerType.RTU,
            baudrate=self.baudrate,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,
        )
        try:
            async with asyncio.timeout(open_timeout + _DEADLINE_MARGIN):
                connected = await client.connect()
        except TimeoutError:
            connected = False
        if not connected:
            client.close()
            raise TransportError(self.port, "cannot open")
        self.client = client
        return client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class ModbusLinkRegistry:
    """Open Modbus links by port."""

    def __init__(self) -> None:
        self._links: dict[str, _ModbusLink] = {}

    def acquire(self, port: str, baudrate: int, timeout: float) -> _ModbusLink:
        """The link for ``port``; balance with :meth:`release`."""
        link = self._links.get(port)
        if link is None:
            link = self._links[port] = _ModbusLink(port, baudrate, timeout)
        elif link.baudrate != baudrate:
            raise TransportError(port, f"already in use at {link.baudrate} baud")
        link.users += 1
        return link

    def release(self, link: _ModbusLink) -> None:
        """One user fewer; the last one closes the port."""
        link.users -= 1
        if link.users <= 0:
            if self._links.get(link.port) is link:
                del self._links[link.port]
            link.drop()


# Boards on one port share its link, like SCP/1 boards share a bus (see bus.SHARED_BUSES).
SHARED_LINKS = ModbusLinkRegistry()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    doors: tuple[bool, ...]
    coils: tuple[bool, ...]
    counters: tuple[int, ...]


class ModbusDriver(CabinetDriver):
    """One Modbus RTU lock board (see the register map above)."""

    protocol = "modbus"
    buffered_events = False
    has_rfid = False

    def __init__(
        self,
        port: str,
        address: int,
        *,
        slots: int,
        baudrate: int = 9600,
        request_timeout: float = 0.5,
        retries: int = 2,
        busy_retries: int = 2,
        busy_delay: float = 0.1,
        open_timeout: float = 5.0,
        health: DeviceHealth | None = None,
        links: ModbusLinkRegistry | None = None,
        model: str = "Modbus RTU lock board",
    ) -> None:
        super().__init__(port, address, health)
        self.slots = slots
        self.baudrate = baudrate
        self.request_timeout = request_timeout
        self.retries = retries
        self.busy_retries = busy_retries
        self.busy_delay = busy_delay
        self.open_timeout = open_timeout
        self.model = model
        self._links = links if links is not None else SHARED_LINKS
        self._link: _ModbusLink | None = None
        self._pulse_ms: int | None = None
        self._last: _Snapshot | None = None
        self._forced = [False] * slots

    async def _open(self) -> None:
        """Join the port's link; the port itself opens on the first request."""
        if self._link is None:
            self._link = self._links.acquire(self.port, self.baudrate, self.request_timeout)

    async def _close(self) -> None:
        """Leave the link; the last board on it closes the port."""
        link, self._link = self._link, None
        if link is not None:
            self._links.release(link)

    async def _once(
        self, what: str, call: ModbusCall, check: Callable[[ModbusPDU], bool]
    ) -> ModbusPDU:
        link = self._link
        if link is None:
            raise TransportError(self.port, "driver is not open")
        # No deadline on the lock itself: whoever holds it is inside the bounded calls below.
        async with link.lock:
            client = await link.ready(self.open_timeout)
            try:
                async with asyncio.timeout(self.request_timeout + _DEADLINE_MARGIN):
                    response = await call(client)
            except (ModbusIOException, TimeoutError):
                raise _NoReplyError from None
            except ConnectionException as exc:
                link.drop()
                raise TransportError(self.port, f"connection lost: {exc}") from exc
        if response.isError():
            self.health.frame()
            code = response.exception_code
            status = _STATUS_BY_EXCEPTION.get(code, Status.HARDWARE_FAULT)
            if status is Status.BUSY:
                raise _BusyError
            self.health.error("status")
            raise BoardStatusError(self.address, what, status)
        if not check(response):
            # RTU has no transaction id: a late answer to an earlier request looks like this.
            self.health.error("stray")
            raise _NoReplyError
        self.health.frame()
        return response

    async def _exchange(
        self, what: str, call: ModbusCall, check: Callable[[ModbusPDU], bool], attempts: int
    ) -> ModbusPDU:
        busy_left = self.busy_retries
        failed = 0
        while True:
            try:
                return await self._once(what, call, check)
            except _NoReplyError:
                self.health.error("timeout")
                failed += 1
                if failed >= attempts:
                    raise BoardSilentError(
                        self.port, self.address, attempts, self.request_timeout
                    ) from None
            except _BusyError:
                if busy_left <= 0:
                    self.health.error("status")
                    raise BoardStatusError(self.address, what, Status.BUSY) from None
                busy_left -= 1
                self.health.error("busy")
                await asyncio.sleep(self.busy_delay)

    async def _bits(self, what: str, fc_coils: bool) -> tuple[bool, ...]:
        count, dev = self.slots, self.address

        async def call(client: AsyncModbusSerialClient) -> ModbusPDU:
            if fc_coils:
                return await client.read_coils(0, count=count, device_id=dev)
            return await client.read_discrete_inputs(0, count=count, device_id=dev)

        response = await self._exchange(
            what, call, lambda r: len(r.bits) >= count, self.retries + 1
        )
        return tuple(bool(bit) for bit in response.bits[:count])

    async def _counters(self, first: int = 0, count: int | None = None) -> tuple[int, ...]:
        count = self.slots if count is None else count
        dev = self.address

        async def call(client: AsyncModbusSerialClient) -> ModbusPDU:
            return await client.read_input_registers(first, count=count, device_id=dev)

        response = await self._exchange(
            "read unlock counters", call, lambda r: len(r.registers) >= count, self.retries + 1
        )
        return tuple(int(value) for value in response.registers[:count])

    async def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            await self._bits("read door inputs", fc_coils=False),
            await self._bits("read lock coils", fc_coils=True),
            await self._counters(),
        )

    async def info(self) -> BoardInfo:
        """No GET_INFO in Modbus: read the pulse register to see that the board answers."""
        dev = self.address

        async def call(client: AsyncModbusSerialClient) -> ModbusPDU:
            return await client.read_holding_registers(PULSE_REGISTER, count=1, device_id=dev)

        await self._exchange(
            "read pulse register", call, lambda r: len(r.registers) >= 1, self.retries + 1
        )
        return BoardInfo("modbus", 0, self.slots, self.model)

    def _states(self, snapshot: _Snapshot) -> tuple[SlotState, ...]:
        return tuple(
            SlotState(n + 1, snapshot.doors[n], snapshot.coils[n], None, forced=self._forced[n])
            for n in range(self.slots)
        )

    async def slot_status(self) -> tuple[SlotState, ...]:
        """Doors and locks; a Modbus lock board has no item sensor (``item_present`` None)."""
        return self._states(await self._snapshot())

    async def inventory(self) -> tuple[TagRead, ...]:
        """No RFID on a Modbus lock board."""
        return ()

    async def events_since(self, since: int) -> tuple[BoardEvent, ...]:
        """Door events derived from the change since the previous call, numbered after
        ``since``; the first call only takes the baseline."""
        snapshot = await self._snapshot()
        last, self._last = self._last, snapshot
        if last is None:
            return ()
        events: list[BoardEvent] = []
        now = int(time.time()) & 0xFFFFFFFF
        for n in range(self.slots):
            if snapshot.doors[n] == last.doors[n]:
                continue
            if snapshot.doors[n]:
                authorised = snapshot.coils[n] or snapshot.counters[n] != last.counters[n]
                kind = EventType.DOOR_OPENED if authorised else EventType.FORCED_OPEN
                self._forced[n] = not authorised
            else:
                kind = EventType.DOOR_CLOSED
                self._forced[n] = False
            seq = (since + len(events) + 1) % SEQ_MODULUS
            events.append(BoardEvent(seq, int(kind), n + 1, now))
        return tuple(events)

    async def ack_events(self, up_to: int) -> None:
        """Nothing to acknowledge: the board keeps no events."""

    async def unlock(self, slot: int, pulse_ms: int) -> None:
        """Write the lock coil once; after a lost reply, the counter says whether it pulsed."""
        if not 1 <= slot <= self.slots:
            raise BoardStatusError(self.address, "write lock coil", Status.BAD_PARAMETER)
        dev, coil = self.address, slot - 1
        if pulse_ms != self._pulse_ms:

            async def set_pulse(client: AsyncModbusSerialClient) -> ModbusPDU:
                return await client.write_register(PULSE_REGISTER, pulse_ms, device_id=dev)

            # Writing the same register value twice is harmless: this one may be retried.
            await self._exchange(
                "write pulse register",
                set_pulse,
                lambda r: r.address == PULSE_REGISTER,
                self.retries + 1,
            )
            self._pulse_ms = pulse_ms
        before = (await self._counters(coil, 1))[0]

        async def pulse(client: AsyncModbusSerialClient) -> ModbusPDU:
            return await client.write_coil(coil, True, device_id=dev)

        for _attempt in range(self.retries + 1):
            try:
                await self._exchange("write lock coil", pulse, lambda r: r.address == coil, 1)
            except BoardSilentError:
                if (await self._counters(coil, 1))[0] != before:
                    return
                continue
            return
        raise BoardSilentError(self.port, self.address, self.retries + 1, self.request_timeout)
