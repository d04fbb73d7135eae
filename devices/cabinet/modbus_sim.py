"""A behavioural Modbus RTU lock board, served by pymodbus (the map is in modbus_driver).

:class:`ModbusBoardModel` holds doors, lock pulses, unlock counters and the pulse register, and
is plugged into a pymodbus ``SimDevice`` as its ``action``: every access first brings the
registers up to date with the model, and a coil write becomes a lock pulse.
:class:`ModbusBoardServer` serves boards with the RTU framer over TCP, which a driver reaches as
the pyserial URL ``socket://127.0.0.1:<port>`` (RTU bytes over a socket instead of a wire).
Faults on request: dropped replies, "device busy" to lock writes, a silent board.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from devices.cabinet.modbus_driver import PULSE_REGISTER
from devices.cabinet.scp1 import PULSE_MS_MAX, PULSE_MS_MIN

_START_STOP_TIMEOUT = 5.0
_READ_COILS, _READ_INPUTS, _READ_HOLDING, _READ_INPUT_REGS = 1, 2, 3, 4
_WRITE_COIL, _WRITE_REGISTER, _WRITE_COILS, _WRITE_REGISTERS = 5, 6, 15, 16


class ModbusBoardModel:
    """A lock board: doors, locks pulsed by coil writes, unlock counters, a pulse register."""

    def __init__(
        self, address: int = 1, slots: int = 8, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.address = address
        self.slot_count = slots
        self.clock = clock
        self.doors = [False] * slots
        self.unlocked_until = [0.0] * slots
        #: Lock pulses actually driven, per slot (index 0 is slot 1): the test oracle.
        self.unlocks = [0] * slots
        self.pulse_ms = 500
        self.busy_next = 0
        self.drop_next = 0
        self.busy_rate = 0.0
        self.drop_rate = 0.0
        self.silent = False
        self.rng = random.Random()

    def take_busy(self) -> bool:
        """Whether this lock write is answered "device busy" (a fault on request)."""
        if self.busy_next > 0:
            self.busy_next -= 1
            return True
        return self.busy_rate > 0 and self.rng.random() < self.busy_rate

    def take_drop(self) -> bool:
        """Whether this reply is lost (a fault on request)."""
        if self.silent:
            return True
        if self.drop_next > 0:
            self.drop_next -= 1
            return True
        return self.drop_rate > 0 and self.rng.random() < self.drop_rate

    # -- the physical world ---------------------------------------------------------------------

    def open_door(self, slot: int) -> None:
        """Someone opens the door of ``slot`` (forced if its lock is not pulsed)."""
        self.doors[slot - 1] = True

    def force_door(self, slot: int) -> None:
        """The door of ``slot`` is pried open while locked."""
        self.unlocked_until[slot - 1] = 0.0
        self.doors[slot - 1] = True

    def close_door(self, slot: int) -> None:
        """The door of ``slot`` is shut."""
        self.doors[slot - 1] = False

    def unlocked(self, slot: int) -> bool:
        """Whether the lock of ``slot`` is being pulsed now."""
        return self.clock() < self.unlocked_until[slot - 1]

    # -- pymodbus -------------------------------------------------------------------------------

    def sim_device(self) -> SimDevice:
        """The pymodbus device whose registers follow this model."""
        bits = 16 * math.ceil(self.slot_count / 16)
        return SimDevice(
            self.address,
            simdata=(
                [SimData(0, values=[False] * bits, datatype=DataType.BITS)],
                [SimData(0, values=[False] * bits, datatype=DataType.BITS)],
                [SimData(0, count=max(1, self.slot_count), values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=self.slot_count, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self.action,
        )

    def _bit_registers(self, values: list[bool], registers: list[int]) -> None:
        padded = values + [False] * (-len(values) % 16)
        packed = SimUtils.bitsToRegisters(padded)
        registers[: len(packed)] = packed

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus' hook, called on every access before it reads or writes ``registers``."""
        if function_code in (_WRITE_COIL, _WRITE_COILS) and set_values is not None:
            if not 0 <= address < self.slot_count:
                return ExcCodes.ILLEGAL_ADDRESS
            if self.take_busy():
                return ExcCodes.DEVICE_BUSY
            if set_values[0]:
                self.unlocks[address] = (self.unlocks[address] + 1) & 0xFFFF
                self.unlocked_until[address] = self.clock() + self.pulse_ms / 1000
            return None
        if function_code in (_WRITE_REGISTER, _WRITE_REGISTERS) and set_values is not None:
            value = int(set_values[0])
            if address != PULSE_REGISTER:
                return ExcCodes.ILLEGAL_ADDRESS
            if not PULSE_MS_MIN <= value <= PULSE_MS_MAX:
                return ExcCodes.ILLEGAL_VALUE
            self.pulse_ms = value
            return None
        if function_code in (_READ_COILS, _WRITE_COIL, _WRITE_COILS):
            self._bit_registers(
                [self.unlocked(n) for n in range(1, self.slot_count + 1)], registers
            )
        elif function_code == _READ_INPUTS:
            self._bit_registers(list(self.doors), registers)
        elif function_code == _READ_INPUT_REGS:
            registers[: self.slot_count] = self.unlocks
        elif function_code in (_READ_HOLDING, _WRITE_REGISTER, _WRITE_REGISTERS):
            registers[PULSE_REGISTER] = self.pulse_ms
        return None


class ModbusBoardServer:
    """Boards on a pymodbus RTU-over-TCP server; :attr:`url` is the driver's port."""

    def __init__(
        self, boards: Iterable[ModbusBoardModel], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.boards = {board.address: board for board in boards}
        self.host = host
        self.port = port
        self.replies_dropped = 0
        self._server: ModbusTcpServer | None = None

    @property
    def url(self) -> str:
        """The pyserial URL a driver opens."""
        return f"socket://{self.host}:{self.port}"

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # RTU frames start with the device id; an empty write sends nothing: a lost reply.
        if not sending or not data:
            return data
        board = self.boards.get(data[0])
        if board is None:
            return data
        if board.take_drop():
            self.replies_dropped += 1
            return b""
        return data

    async def start(self) -> None:
        """Listen (port 0 picks a free port)."""
        server = ModbusTcpServer(
            [board.sim_device() for board in self.boards.values()],
            framer=FramerType.RTU,
            address=(self.host, self.port),
            trace_packet=self._trace_packet,
        )
        async with asyncio.timeout(_START_STOP_TIMEOUT):
            await server.serve_forever(background=True)
        listener: Any = server.transport
        self.port = int(listener.sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        """Stop listening and drop the connections."""
        server, self._server = self._server, None
        if server is not None:
            async with asyncio.timeout(_START_STOP_TIMEOUT):
                await server.shutdown()  # type: ignore[no-untyped-call] # untyped in pymodbus

    async def __aenter__(self) -> ModbusBoardServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
