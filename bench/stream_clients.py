"""Many Server-Sent Events clients in one asyncio process, for ``precinct bench stream``.

Each client is one HTTP/1.1 connection read with asyncio streams: the request is written by
hand, the chunked answer de-chunked and the events parsed from it, and nothing else happens per
chunk (no HTTP library, no JSON per client): the receive time is taken once per chunk, and an
event's ``data`` is decoded once, by whichever client gets it first. So the client side costs
little next to the central it measures (the report gives both processes' CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

CONNECT_SECONDS: Final = 10.0
# Longer than the central's heartbeat interval (5 s): a read that waits longer is a dead stream.
READ_SECONDS: Final = 30.0
HEADER_LIMIT: Final = 64 * 1024


class StreamClientError(Exception):
    """A client could not open its stream, or the stream broke."""


@dataclass(frozen=True, slots=True)
class Published:
    """What an event says about itself: its reading time (the fix time), its commit time
    (the feed's ``at``), both as Unix seconds."""

    reading: float
    commit: float


@dataclass
class Measure:
    """What every client shares: the events to wait for, and what each event said."""

    kind: str
    wanted: int
    # Only events after this id count: set once every client is open (None until then).
    start: int | None = None
    events: dict[int, Published] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[StreamClient] = field(default_factory=list)

    def begin(self, start: int) -> None:
        self.start = start
        for client in self.clients:
            client.recount()
        self.check()

    def check(self) -> None:
        if self.start is not None and all(c.counted >= self.wanted for c in self.clients):
            self.done.set()


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class StreamClient:
    """One open stream; records (event id, receive time) for every event of ``measure.kind``."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        measure: Measure,
        body_time: Callable[[dict[str, Any]], str],
    ) -> None:
        self._host = host
        self._port = port
        self._token = token
        self._measure = measure
        self._body_time = body_time
        self.hello: int | None = None
        self.opened = asyncio.Event()
        self.received: list[tuple[int, float]] = []
        self.counted = 0
        measure.clients.append(self)

    def recount(self) -> None:
        start = self._measure.start
        self.counted = 0 if start is None else sum(1 for i, _ in self.received if i > start)

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, limit=HEADER_LIMIT),
                CONNECT_SECONDS,
            )
        except (OSError, TimeoutError) as exc:
            raise StreamClientError(f"cannot connect: {exc}") from exc
        try:
            writer.write(
                (
                    f"GET /api/v1/stream HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                    f"Authorization: Bearer {self._token}\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
            )
            await asyncio.wait_for(writer.drain(), CONNECT_SECONDS)
            chunked = await self._head(reader)
            await self._body(reader, chunked)
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _head(self, reader: asyncio.StreamReader) -> bool:
        async with asyncio.timeout(READ_SECONDS):
            status = await reader.readline()
            parts = status.split(b" ", 2)
            if len(parts) < 2 or parts[1] != b"200":
                raise StreamClientError(f"stream answered {status.decode(errors='replace')!r}")
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "transfer-encoding":
                    chunked = "chunked" in value.lower()
            return chunked

    async def _body(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        pending = b""
        while True:
            async with asyncio.timeout(READ_SECONDS):
                if chunked:
                    size_line = await reader.readline()
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        raise StreamClientError("the stream ended")
                    data = await reader.readexactly(size + 2)  # the chunk and its CRLF
                    data = data[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        raise StreamClientError("the stream ended")
            received = time.time()
            # sse-starlette ends lines with CRLF; the format allows LF too. A CR at the end of
            # one chunk pairs with the LF at the start of the next, which is why the pending
            # bytes are normalised together.
            pending = (pending + data).replace(b"\r\n", b"\n")
            *blocks, pending = pending.split(b"\n\n")
            for block in blocks:
                self._event(block, received)

    def _event(self, block: bytes, received: float) -> None:
        event_id: int | None = None
        kind = b"message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                continue  # a heartbeat
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"id":
                event_id = int(value)
            elif name == b"event":
                kind = value
            elif name == b"data":
                data.append(value)
        if event_id is None:
            return
        if kind == b"hello" or kind == b"resync":
            self.hello = event_id
            self.opened.set()
            return
        measure = self._measure
        if kind.decode() != measure.kind:
            return
        if event_id not in measure.events:
            body = json.loads(b"\n".join(data))
            measure.events[event_id] = Published(
                _unix(self._body_time(body["body"])), _unix(body["at"])
            )
        self.received.append((event_id, received))
        if measure.start is not None and event_id > measure.start:
            self.counted += 1
            if self.counted >= measure.wanted:
                measure.check()


async def run_clients(
    host: str,
    port: int,
    token: str,
    count: int,
    measure: Measure,
    body_time: Callable[[dict[str, Any]], str],
    on_open: Callable[[], None],
    deadline: float,
) -> list[StreamClient]:
    """Open ``count`` streams at once; once all are open, call ``on_open`` and count events
    after the newest ``hello``; return when every client has ``measure.wanted`` of them.
    ``TimeoutError`` after ``deadline`` seconds; :class:`StreamClientError` if one breaks."""
    clients = [StreamClient(host, port, token, measure, body_time) for _ in range(count)]

    async with asyncio.timeout(deadline), asyncio.TaskGroup() as group:
        tasks = [group.create_task(c.run(), name=f"sse-client-{n}") for n, c in enumerate(clients)]
        opened = asyncio.gather(*(c.opened.wait() for c in clients))
        finished = asyncio.ensure_future(measure.done.wait())
        try:
            # A client task that fails ends the group (and this wait) with its error.
            await opened
            on_open()
            measure.begin(max(c.hello or 0 for c in clients))
            await finished
        finally:
            finished.cancel()
            opened.cancel()
            for task in tasks:
                task.cancel()
    return clients
