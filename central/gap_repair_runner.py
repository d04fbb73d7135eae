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
from central.store import LEGACY_EPOCH, connect
from edge_agent.outbox import is_disk_full
from edge_agent.wire import REPLAY_COMMAND, ReplayArgs
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

REPLAY_TTL = timedelta(seconds=60)
_RANGES_PER_AGENT = 20


def find_gaps(db: Path, watermarks: dict[tuple[str, str], int]) -> list[Gap]:
    """Gaps in the current epoch of online agents; ``watermarks`` (per agent and epoch,
    everything at or below is stored) is updated."""
    conn = connect(db, readonly=True)
    try:
        found: list[Gap] = []
        rows = conn.execute(
            "SELECT a.agent, e.epoch, e.first_seq, e.last_seq, e.received FROM agents a "
            "JOIN agent_epochs e ON e.agent = a.agent AND e.epoch = a.epoch WHERE a.online = 1"
        )
        for agent, epoch, first_seq, last_seq, received in rows.fetchall():
            key = (agent, epoch)
            if last_seq - first_seq + 1 <= received:
                watermarks[key] = last_seq
                continue
            above = max(first_seq - 1, watermarks.get(key, 0))
            ranges = gap_ranges(conn, agent, epoch, above=above, limit=_RANGES_PER_AGENT)
            if ranges:
                watermarks[key] = ranges[0][0] - 1
            found.extend((agent, epoch, first, last) for first, last in ranges)
        return found
    finally:
        conn.close()


async def run_gap_repair(
    settings: CentralSettings, dispatcher: CommandDispatcher, metrics: CentralMetrics
) -> None:
    """Runs until cancelled."""
    planner = GapRepairPlanner(grace=settings.repair_grace, retry=settings.repair_retry)
    watermarks: dict[tuple[str, str], int] = {}
    while True:
        await asyncio.sleep(settings.repair_interval)
        gaps = await asyncio.to_thread(find_gaps, settings.db, watermarks)
        for agent, epoch, first, last in planner.plan(time.monotonic(), gaps):
            log.info("asking %s to replay %d..%d of epoch %r", agent, first, last, epoch)
            # An agent of the previous release (legacy epoch) knows no epoch argument.
            replay = ReplayArgs(None if epoch == LEGACY_EPOCH else epoch, first, last)
            try:
                await asyncio.to_thread(
                    dispatcher.send,
                    agent,
                    REPLAY_COMMAND,
                    replay.to_args(),
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
