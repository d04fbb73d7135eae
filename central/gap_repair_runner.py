"""The periodic side of gap repair: find gaps in the store, send ``replay`` commands."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from central.commands import CommandDispatcher
from central.gap_repair import Gap, GapRepairPlanner
from central.gaps import gap_ranges
from central.settings import CentralSettings
from central.store import connect
from edge_agent.outbox import is_disk_full
from edge_agent.wire import REPLAY_COMMAND
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

REPLAY_TTL = timedelta(seconds=60)
_RANGES_PER_AGENT = 20


def find_gaps(db: Path, watermarks: dict[str, int]) -> list[Gap]:
    """Gaps of online agents; ``watermarks`` (everything at or below is stored) is updated."""
    conn = connect(db, readonly=True)
    try:
        found: list[Gap] = []
        rows = conn.execute("SELECT agent, last_seq, received FROM agents WHERE online = 1")
        for agent, last_seq, received in rows.fetchall():
            if last_seq == received:
                watermarks[agent] = last_seq
                continue
            ranges = gap_ranges(
                conn, agent, above=watermarks.get(agent, 0), limit=_RANGES_PER_AGENT
            )
            if ranges:
                watermarks[agent] = ranges[0][0] - 1
            found.extend((agent, first, last) for first, last in ranges)
        return found
    finally:
        conn.close()


async def run_gap_repair(
    settings: CentralSettings, dispatcher: CommandDispatcher, metrics: CentralMetrics
) -> None:
    """Runs until cancelled."""
    planner = GapRepairPlanner(grace=settings.repair_grace, retry=settings.repair_retry)
    watermarks: dict[str, int] = {}
    while True:
        await asyncio.sleep(settings.repair_interval)
        gaps = await asyncio.to_thread(find_gaps, settings.db, watermarks)
        for agent, first, last in planner.plan(time.monotonic(), gaps):
            log.info("asking %s to replay %d..%d", agent, first, last)
            try:
                await asyncio.to_thread(
                    dispatcher.send,
                    agent,
                    REPLAY_COMMAND,
                    {"first": first, "last": last},
                    ttl=REPLAY_TTL,
                    requested_by="gap-repair",
                )
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                # Not recorded, so not sent: the planner asks again after repair_retry.
                log.debug("replay for %s not sent: the store is full", agent)
                continue
            metrics.replay_requests.inc()
