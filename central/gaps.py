"""Missing sequence ranges of an agent's epoch, computed from the store."""

from __future__ import annotations

import sqlite3


def gap_ranges(
    db: sqlite3.Connection, agent: str, epoch: str, *, above: int = 0, limit: int = 100
) -> list[tuple[int, int]]:
    """Up to ``limit`` missing ranges ``(first, last)`` of ``agent``'s ``epoch`` above ``above``.

    Only numbers below the epoch's highest stored one can be missing; the caller passes a
    watermark below which everything is known to be stored (at least the epoch's first seq - 1),
    so the scan stays short.
    """
    gaps: list[tuple[int, int]] = []
    first = db.execute(
        "SELECT min(seq) FROM events WHERE agent = ? AND epoch = ? AND seq > ?",
        (agent, epoch, above),
    ).fetchone()[0]
    if first is None:
        return gaps
    if first > above + 1:
        gaps.append((above + 1, int(first) - 1))
    rows = db.execute(
        "SELECT seq + 1, next - 1 FROM (SELECT seq, lead(seq) OVER (ORDER BY seq) AS next "
        "FROM events WHERE agent = ? AND epoch = ? AND seq > ?) WHERE next > seq + 1 LIMIT ?",
        (agent, epoch, above, limit),
    )
    gaps.extend((int(a), int(b)) for a, b in rows)
    return gaps[:limit]
