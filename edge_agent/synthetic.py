"""A built-in source of synthetic readings, for load tests and the demo.

It emits ``rate`` telemetry readings per second in ticks of 100 ms (drift-corrected against the
loop clock), and every ``event_every`` readings one event, so both classes flow end to end.
Events the outbox refuses (its disk full) are handed again at the next tick, before new ones.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.outbox import EventsRefusedError, Reading
from edge_agent.wire import MessageClass

TICK_SECONDS = 0.1
DEVICE = "synthetic"


def synthetic_readings(start: int, count: int, event_every: int, now: datetime) -> list[Reading]:
    readings: list[Reading] = []
    for n in range(start, start + count):
        body = json.dumps(
            {"n": n, "value": round(20.0 + 5.0 * math.sin(n / 50.0), 3)}, separators=(",", ":")
        )
        readings.append(Reading(DEVICE, "reading", MessageClass.TELEMETRY, now, body))
        if event_every and n % event_every == event_every - 1:
            readings.append(
                Reading(DEVICE, "heartbeat", MessageClass.EVENT, now, json.dumps({"n": n}))
            )
    return readings


async def run_synthetic(
    rate: float,
    event_every: int,
    sink: Callable[[list[Reading]], object],
) -> None:
    """Feed ``sink`` forever; cancel to stop."""
    loop = asyncio.get_running_loop()
    due = 0.0
    emitted = 0
    next_tick = loop.time()
    refused: list[Reading] = []
    while True:
        due += rate * TICK_SECONDS
        count = int(due - emitted)
        batch = list(refused)
        if count:
            batch += synthetic_readings(emitted, count, event_every, datetime.now(UTC))
            emitted += count
        if batch:
            try:
                sink(batch)
                refused = []
            except EventsRefusedError as exc:
                refused = list(exc.events)
        next_tick += TICK_SECONDS
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
