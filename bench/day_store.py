"""A generated day's rooms written into a fresh central store, for the benchmarks and tests
that book a day through the planning service on a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from central.store import connect, migrate
from edge_agent.wire import format_time
from scheduling.model import PlanRoom


def store_rooms(db: Path, rooms: Iterable[PlanRoom]) -> None:
    """Migrate ``db`` and add ``rooms`` in service, as ``POST /api/v1/rooms`` would."""
    migrate(db)
    conn = connect(db)
    try:
        stamp = format_time(datetime.now(UTC))
        conn.executemany(
            "INSERT INTO rooms (id, type, capacity, equipment, state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'in_service', ?, ?)",
            [
                (
                    r.id,
                    r.type.value,
                    r.capacity,
                    json.dumps(sorted(e.value for e in r.equipment)),
                    stamp,
                    stamp,
                )
                for r in rooms
            ],
        )
    finally:
        conn.close()
