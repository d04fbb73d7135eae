"""The van GPS driver: a receiver on a serial port (NMEA 0183) or gpsd over TCP (JSON).

``run`` owns the connection: open with a deadline, read with a deadline, decode, filter, hand
accepted fixes to the sink; on a transport error, close and reopen after a backoff delay.

The device is online from the first well-formed sentence (or gpsd report) and offline once none
has arrived for ``offline_after`` seconds. The port stays open while the device is offline, so
that a receiver that starts talking again is heard at once (gpsd, too, keeps a watcher connected
while its receiver is gone); only after ``reconnect_after`` seconds of silence is it reopened,
in case the connection itself died without an error (a half-open TCP connection).

Reconnect delays, before jitter of up to ``backoff_jitter`` x the delay, for the defaults
(initial 0.5 s, cap 30 s): 0.5, 1, 2, 4, 8, 16, 30, 30… seconds; a session that decoded
anything starts the sequence again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from devices.backoff import Backoff
from devices.base import CommandRejected, DeviceHealth, DeviceReading, ReadingSink
from devices.gps.errors import MALFORMED_REASONS
from devices.gps.filters import FilterSettings, FixFilter
from devices.gps.fix import Fix, NoFix, Skipped
from devices.gps.gpsd import DEFAULT_PORT, WATCH, GpsdDecoder, Report
from devices.gps.nmea import NmeaDecoder, Sentence

log = logging.getLogger(__name__)

READING_KIND: Final = "fix"
_READ_SIZE: Final = 4096
_CLOSE_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class GpsSettings:
    """One GPS device's settings, validated by :func:`devices.gps.create_device`.

    ``transport`` is a serial device path or pyserial URL (``/dev/ttyUSB0``,
    ``socket://host:port``) or ``gpsd://host[:port]``.
    """

    transport: str
    baudrate: int = 9600
    offline_after: float = 10.0
    reconnect_after: float = 60.0
    connect_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    filters: FilterSettings = field(default_factory=FilterSettings)

    @property
    def is_gpsd(self) -> bool:
        """Whether the transport is a gpsd server rather than a receiver."""
        return self.transport.startswith("gpsd://")

    def gpsd_address(self) -> tuple[str, int]:
        """Host and port of a ``gpsd://`` transport; ``ValueError`` if it has no host."""
        parts = urlsplit(self.transport)
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{self.transport!r} is not gpsd://host[:port]")
        return parts.hostname, parts.port or DEFAULT_PORT


class _Reader(Protocol):
    async def read(self, n: int) -> bytes: ...


_Event = Sentence | Report | Fix | NoFix | Skipped


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Sequence[_Event]: ...


class GpsDevice:
    """A van's GPS receiver, as a :class:`devices.base.Device`.

    ``clock`` gives "now" for the time filters (aware); tests pass a fixed one.
    """

    def __init__(
        self, device_id: str, settings: GpsSettings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._id = device_id
        self._settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._filter = FixFilter(settings.filters)
        self._skipped: Counter[str] = Counter()
        # None until the first report, so that a device that never answers is announced offline
        self._online: bool | None = None
        self._sentences = 0

    @property
    def id(self) -> str:
        """The device id (its ``[[devices]]`` id)."""
        return self._id

    @property
    def settings(self) -> GpsSettings:
        """The settings the device was built with."""
        return self._settings

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """``status``: online, last accepted fix, counters. Nothing else: a receiver only talks."""
        if name != "status":
            raise CommandRejected(f"a GPS device has no command {name!r} (only status)")
        last = self._filter.last
        return {
            "online": bool(self._online),
            "sentences": self._sentences,
            "accepted": self._filter.accepted,
            "last_fix": None if last is None else last.to_json(),
            "rejected": dict(self._filter.rejected),
            "skipped": dict(self._skipped),
        }

    async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
        """Read, decode and report fixes until cancelled; reconnect by itself."""
        settings = self._settings
        backoff = Backoff(settings.backoff_initial, settings.backoff_max, settings.backoff_jitter)
        while True:
            try:
                async with self._connect() as reader:
                    if await self._session(reader, sink, health):
                        backoff.reset()
                    kind, detail = "timeout", f"nothing for {settings.reconnect_after:g} s"
            except TimeoutError:
                kind, detail = "timeout", "connecting took too long"
            except ConnectionError as exc:
                kind, detail = "disconnected", str(exc) or type(exc).__name__
            except OSError as exc:
                # serial.SerialException is an OSError: a port that vanished or cannot open.
                kind, detail = "io", str(exc) or type(exc).__name__
            self._set_online(health, False)
            health.error(kind)
            delay = backoff.next_delay()
            log.info("gps %s: %s (%s); reconnecting in %.1f s", self._id, kind, detail, delay)
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[_Reader]:
        settings = self._settings
        if settings.is_gpsd:
            host, port = settings.gpsd_address()
            async with asyncio.timeout(settings.connect_timeout):
                reader, writer = await asyncio.open_connection(host, port)
        else:
            from serial_asyncio_fast import open_serial_connection

            # pyserial opens the port in an executor thread, which a deadline cannot stop: if
            # an open hangs past it, the port that thread may still open stays open (pyserial
            # has no finalizer). A leak of one descriptor per hung open, accepted.
            async with asyncio.timeout(settings.connect_timeout):
                reader, writer = await open_serial_connection(
                    url=settings.transport, baudrate=settings.baudrate
                )
        try:
            if settings.is_gpsd:
                writer.write(WATCH)
                async with asyncio.timeout(settings.connect_timeout):
                    await writer.drain()
            yield reader
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await writer.wait_closed()

    async def _session(self, reader: _Reader, sink: ReadingSink, health: DeviceHealth) -> bool:
        """Read until ``reconnect_after`` of silence (then return whether anything well-formed
        arrived); transport errors propagate."""
        settings = self._settings
        loop = asyncio.get_running_loop()
        decoder: _Decoder = GpsdDecoder() if settings.is_gpsd else NmeaDecoder()
        last_heard = loop.time()
        heard = False
        while True:
            # Online (or not yet known): wait for the offline timeout; offline: for a reconnect.
            wait = settings.reconnect_after if self._online is False else settings.offline_after
            try:
                async with asyncio.timeout_at(last_heard + wait):
                    data = await reader.read(_READ_SIZE)
            except TimeoutError:
                if self._online is False:
                    return heard
                self._set_online(health, False)
                health.error("timeout")
                log.info("gps %s: nothing for %g s, offline", self._id, settings.offline_after)
                continue
            if not data:
                raise ConnectionError("end of stream")
            for event in decoder.feed(data):
                if isinstance(event, Sentence | Report):
                    heard = True
                    last_heard = loop.time()
                    self._sentences += 1
                    health.frame()
                    self._set_online(health, True)
                elif isinstance(event, Fix):
                    self._fix(event, sink, health)
                elif isinstance(event, Skipped):
                    self._skipped[event.reason] += 1
                    health.error(event.reason if event.reason in MALFORMED_REASONS else "malformed")
                elif isinstance(event, NoFix):
                    self._skipped[event.reason] += 1

    def _fix(self, fix: Fix, sink: ReadingSink, health: DeviceHealth) -> None:
        reason = self._filter.check(fix, self._clock())
        if reason is not None:
            health.error(f"rejected_{reason}")
            return
        sink(
            DeviceReading(
                device=self._id, kind=READING_KIND, time=fix.time, body=fix.body(), event=False
            )
        )

    def _set_online(self, health: DeviceHealth, online: bool) -> None:
        if online != self._online:
            self._online = online
            health.available(online)
