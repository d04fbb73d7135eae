"""A serial port shared by the boards on one RS-485 bus: one request in flight at a time.

RS-485 is half duplex: while one board answers, nobody else may talk. Every driver on a port
goes through the same :class:`SerialBus`, whose lock covers a whole exchange (request, reply,
retries). The port is opened on first use (pyserial-asyncio-fast, so a pyserial URL such as
``socket://host:port`` works too) and reopened after a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import serial_asyncio_fast

from devices.base import DeviceHealth
from devices.cabinet.errors import BoardSilentError, TransportError
from devices.cabinet.scp1 import Frame, FrameDecoder

log = logging.getLogger(__name__)

# Frames that arrive while nobody waits (a late reply, a chatty board) are kept up to this many;
# older ones are dropped: a request discards them anyway.
_QUEUE_LIMIT = 32
CLOSE_TIMEOUT = 2.0


class _BusProtocol(asyncio.Protocol):
    """Bytes in, frames out; reports CRC errors and skipped bytes to whoever is asking."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.decoder = FrameDecoder()
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue(_QUEUE_LIMIT)
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.health: DeviceHealth | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A SerialTransport, or a socket transport for socket:// URLs: both can write.
        self.transport = cast(asyncio.Transport, transport)
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        crc_before, skipped_before = self.decoder.crc_errors, self.decoder.skipped_bytes
        frames = self.decoder.feed(data)
        if self.health is not None:
            for _ in range(self.decoder.crc_errors - crc_before):
                self.health.error("crc")
            if self.decoder.skipped_bytes > skipped_before:
                self.health.error("garbage")
        for frame in frames:
            self._put(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._put(None)

    def _put(self, item: Frame | None) -> None:
        if self.frames.full():
            self.frames.get_nowait()
        self.frames.put_nowait(item)

    @property
    def closed(self) -> bool:
        return self.lost.done()

    def start_exchange(self, health: DeviceHealth) -> None:
        """Before a request: whatever is buffered belongs to an earlier exchange."""
        self.health = health
        stale = 0
        while not self.frames.empty():
            if self.frames.get_nowait() is not None:
                stale += 1
        if stale:
            health.error("stray")
        if self.decoder.reset():
            health.error("garbage")


class SerialBus:
    """One serial port and its lock; shared through a :class:`BusRegistry`."""

    def __init__(self, port: str, baudrate: int, open_timeout: float) -> None:
        self.port = port
        self.baudrate = baudrate
        self.open_timeout = open_timeout
        self.lock = asyncio.Lock()
        self.users = 0
        self._protocol: _BusProtocol | None = None

    async def _ensure_open(self) -> _BusProtocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        loop = asyncio.get_running_loop()
        protocol = _BusProtocol(loop)
        transport: asyncio.BaseTransport | None = None
        try:
            async with asyncio.timeout(self.open_timeout):
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop, lambda: protocol, self.port, baudrate=self.baudrate
                )
                # connection_made runs only after create_serial_connection has returned.
                await protocol.made
        except TimeoutError:
            if transport is not None:
                transport.close()
            raise TransportError(self.port, f"not open after {self.open_timeout:g} s") from None
        except (OSError, ValueError) as exc:
            # serial.SerialException is an OSError; pyserial raises ValueError for a bad URL.
            raise TransportError(self.port, f"cannot open: {exc}") from exc
        log.debug("opened %s at %d baud", self.port, self.baudrate)
        self._protocol = protocol
        return protocol

    async def transact(
        self,
        data: bytes,
        *,
        address: int,
        cmd: int,
        seq: int,
        attempt_seconds: float,
        attempts: int,
        health: DeviceHealth,
    ) -> Frame:
        """Send ``data`` and return the reply from ``address`` with ``cmd`` and ``seq``.

        The same bytes (same SEQ) are sent again after each silent deadline, up to ``attempts``
        times; a board answers such a retry from its cache. Frames from other boards or
        earlier exchanges are skipped.
        """
        # No deadline on the lock itself: whoever holds it is inside the bounded loop below.
        async with self.lock:
            for _attempt in range(attempts):
                protocol = await self._ensure_open()
                protocol.start_exchange(health)
                assert protocol.transport is not None
                protocol.transport.write(data)
                try:
                    async with asyncio.timeout(attempt_seconds):
                        while True:
                            frame = await protocol.frames.get()
                            if frame is None:
                                raise TransportError(self.port, "port lost")
                            if frame.addr == address and frame.cmd == cmd and frame.seq == seq:
                                return frame
                            health.error("stray")
                except TimeoutError:
                    health.error("timeout")
                finally:
                    protocol.health = None
            raise BoardSilentError(self.port, address, attempts, attempt_seconds)

    async def close(self) -> None:
        """Close the port and wait (bounded) until pyserial has let it go."""
        protocol, self._protocol = self._protocol, None
        if protocol is None or protocol.transport is None:
            return
        protocol.transport.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(protocol.lost)


class BusRegistry:
    """The open buses by port, so that boards sharing a port share its lock."""

    def __init__(self) -> None:
        self._buses: dict[str, SerialBus] = {}

    def acquire(self, port: str, baudrate: int, open_timeout: float) -> SerialBus:
        """The bus for ``port``, created on first use; balance with :meth:`release`."""
        bus = self._buses.get(port)
        if bus is None:
            bus = self._buses[port] = SerialBus(port, baudrate, open_timeout)
        elif bus.baudrate != baudrate:
            raise TransportError(port, f"already in use at {bus.baudrate} baud, not {baudrate}")
        bus.users += 1
        return bus

    async def release(self, bus: SerialBus) -> None:
        """One user fewer; the last one closes the port."""
        bus.users -= 1
        if bus.users <= 0:
            if self._buses.get(bus.port) is bus:
                del self._buses[bus.port]
            async with bus.lock:  # held only by a bounded exchange
                await bus.close()


# The agent builds each device from its own [[devices]] table; boards that share a port find
# each other here. Tests pass a registry of their own.
SHARED_BUSES = BusRegistry()
