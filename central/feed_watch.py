"""One poller per central process that reads what the feed gained and wakes the open streams.

Every stream polling the store itself would cost one query per stream per interval, and one
per stream per change on a thread pool of a few workers (measured: p99 337 ms from commit to
200 clients). One poller reads the new rows once and keeps the latest :data:`RECENT` of them;
a stream serves itself from those, filtering by its token's scope in memory, and reads the
store only when it is further behind than that. The feed is in the store, so a change
committed by another process (ingest workers, a second central) is seen the same way as one
committed by this one.

What a stream sends for an event is the same bytes for every stream, so the poller encodes each
event once, in its reading thread, and the streams share the bytes: at 200 streams, encoding
per stream cost 200 JSON encodings per event on the event loop. A stream finds what is new for
it by walking back from the newest event kept, not by filtering all of them (up to 2000, per
stream, per wake).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central import feed
from central.auth import Principal
from central.store import connect

log = logging.getLogger(__name__)

READ_DEADLINE_SECONDS = 10.0
RECENT = 2000  # events kept in memory; also the most one poll reads


# What a stream sends for one event (see ``central.api.routes.stream.encode``).
Encode = Callable[[feed.FeedEvent], bytes]


class FeedWatch:
    def __init__(self, db: Path, interval: float, encode: Encode, keep: int = RECENT) -> None:
        self._db = db
        self._keep = keep
        self._interval = interval
        self._encode = encode
        self._latest = 0
        # Resolved when a poll finds new events; every waiting stream waits on this one future
        # (two tasks per stream per wake-up cost 10 ms a poll at 200 streams; this, 4.5 ms).
        self._grown: asyncio.Future[None] | None = None
        self._recent: deque[feed.FeedEvent] = deque()
        # The encoded form of every event in ``_recent``, by id.
        self._encoded: dict[int, bytes] = {}
        # Every event after this id and up to ``latest`` is in ``_recent``; None until the
        # first poll.
        self._complete_after: int | None = None

    @property
    def latest(self) -> int:
        """The newest feed id seen by the last poll."""
        return self._latest

    def _read(self, after: int | None) -> tuple[int, list[tuple[feed.FeedEvent, bytes]]]:
        conn = connect(self._db, readonly=True)
        try:
            conn.execute("BEGIN")  # the newest id and the rows from one snapshot
            newest = feed.latest(conn)
            if after is None:
                return newest, []
            rows = feed.after(conn, after, feed.EVERYONE, self._keep)
        finally:
            conn.close()
        # Here, in the reading thread: the event loop only hands the bytes out.
        return newest, [(row, self._encode(row)) for row in rows]

    async def poll_once(self) -> None:
        primed = self._complete_after is not None
        newest, rows = await asyncio.wait_for(
            asyncio.to_thread(self._read, self._latest if primed else None),
            READ_DEADLINE_SECONDS,
        )
        if not primed:
            self._complete_after = newest
        elif len(rows) == self._keep:
            newest = rows[-1][0].id  # more to read: the next poll goes on from here
        # One poll reads at most ``keep`` rows, so only events kept before make way: what
        # was before the first one still kept is no longer complete here.
        for _ in range(len(self._recent) + len(rows) - self._keep):
            gone = self._recent.popleft()
            self._encoded.pop(gone.id, None)
            self._complete_after = gone.id
        for row, encoded in rows:
            self._recent.append(row)
            self._encoded[row.id] = encoded
        if newest != self._latest:
            self._latest = newest
            grown, self._grown = self._grown, None
            if grown is not None and not grown.done():
                grown.set_result(None)

    def recent(self, cursor: int, principal: Principal) -> list[feed.FeedEvent] | None:
        """The events after ``cursor`` up to :attr:`latest` that ``principal`` may see, from
        memory; None if the stream is further behind than memory holds (read the store)."""
        if self._complete_after is None or cursor < self._complete_after:
            return None
        fresh = []
        for event in reversed(self._recent):  # the newest first: only what is new is looked at
            if event.id <= cursor:
                break
            if feed.visible(event, principal):
                fresh.append(event)
        fresh.reverse()
        return fresh

    def encoded(self, event: feed.FeedEvent) -> bytes:
        """What a stream sends for ``event``: encoded once by the poller for every stream, or
        now for an event read from the store by one stream that was far behind."""
        shared = self._encoded.get(event.id)
        return shared if shared is not None else self._encode(event)

    async def run(self) -> None:
        """Poll until cancelled (the lifespan owns the task)."""
        while True:
            try:
                await self.poll_once()
            except (TimeoutError, sqlite3.Error) as exc:
                # A busy or full store: the streams wait a little longer, nothing is lost.
                log.warning("feed poll failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def wait(
        self, seen: int, patience: float, stop: asyncio.Future[Any] | None = None
    ) -> None:
        """Return once the feed holds an id above ``seen``, ``stop`` is done, or after
        ``patience`` seconds. Neither future is cancelled: they are shared or the caller's."""
        if self._latest > seen:
            return
        if self._grown is None:
            self._grown = asyncio.get_running_loop().create_future()
        waiters: set[asyncio.Future[Any]] = {self._grown}
        if stop is not None:
            waiters.add(stop)
        await asyncio.wait(waiters, timeout=patience, return_when=asyncio.FIRST_COMPLETED)
