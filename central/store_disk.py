"""The store's free disk space, as ``precinct_store_disk_free_bytes``.

The gauge reads 0 until set, which would look like a full disk to an alert: it is set at
start-up, before the service answers, and then every :data:`CHECK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from prometheus_client import Gauge

from edge_agent.reserve import free_bytes

log = logging.getLogger(__name__)

CHECK_SECONDS: Final = 15.0
# statvfs on a hung network file system can block; past this the reading is skipped.
_READ_DEADLINE: Final = 5.0


def measure(db: Path, gauge: Gauge) -> None:
    """Set ``gauge`` to the bytes free on the store's file system (a failure keeps the last)."""
    try:
        gauge.set(free_bytes(db.resolve().parent))
    except OSError as exc:
        log.warning("store disk space unknown: %s", exc)


async def watch_store_disk(db: Path, gauge: Gauge, every: float = CHECK_SECONDS) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.wait_for(asyncio.to_thread(measure, db, gauge), _READ_DEADLINE)
        except TimeoutError:
            log.warning("store disk space: no answer within %.0f s", _READ_DEADLINE)
