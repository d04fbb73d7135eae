"""One poller per central process that tells the open streams when the feed has grown.

Every stream waiting on its own reads would cost the store one query per stream per interval;
one poller reads the newest id and wakes them all, and only then does each stream read its
rows. The feed is in the store, so a change committed by another process (ingest workers, a
second central) is seen the same way as one committed by this one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import anyio

from central import feed
from central.store import connect

log = logging.getLogger(__name__)

READ_DEADLINE_SECONDS = 10.0


class FeedWatch:
    def __init__(self, db: Path, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._latest = 0
        self._grown = asyncio.Event()

    @property
    def latest(self) -> int:
        """The newest feed id seen by the last poll."""
        return self._latest

    def _read(self) -> int:
        conn = connect(self._db, readonly=True)
        try:
            return feed.latest(conn)
        finally:
            conn.close()

    async def poll_once(self) -> None:
        newest = await asyncio.wait_for(asyncio.to_thread(self._read), READ_DEADLINE_SECONDS)
        if newest != self._latest:
            self._latest = newest
            grown, self._grown = self._grown, asyncio.Event()
            grown.set()

    async def run(self) -> None:
        """Poll until cancelled (the lifespan owns the task)."""
        while True:
            try:
                await self.poll_once()
            except (TimeoutError, sqlite3.Error) as exc:
                # A busy or full store: the streams wait a little longer, nothing is lost.
                log.warning("feed poll failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def wait(self, seen: int, patience: float, stop: anyio.Event | None = None) -> None:
        """Return once the feed holds an id above ``seen``, ``stop`` is set, or after
        ``patience`` seconds."""
        if self._latest > seen:
            return
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._grown.wait())}
        if stop is not None:
            waiters.add(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, timeout=patience, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
