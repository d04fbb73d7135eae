"""The store side of ingest, in a process of its own.

Receiving MQTT (paho) and validating plus committing (SQLite) each cost a core's worth of Python
at full load; in one process they take turns on one interpreter lock. So the central service's
ingest runs this loop in a child process: it receives batches of ``(topic, payload)`` over a pipe,
commits each in one transaction and answers with the batch's outcome, in order. The parent sends
the PUBACKs only after that answer.

The child ignores SIGINT and SIGTERM: its parent decides when it stops (end of input), so a
Ctrl-C to the process group or a service manager's SIGTERM cannot cut a batch in half before the
parent has finished its own shutdown. If the parent dies, the pipe closes and the child exits.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import time
from multiprocessing.connection import Connection
from pathlib import Path

from central.ingest_writer import BatchOutcome, IngestWriter
from central.store import connect
from edge_agent.outbox import is_disk_full

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
TOTALS_EVERY_SECONDS = 0.5

Batch = list[tuple[str, bytes]]
# ("ok", outcome, (agents online, missing) or None) | ("error" or "disk_full", text, None): a
# failed commit, retried.
Reply = tuple[str, BatchOutcome | str, tuple[int, int] | None]


def run_store_process(requests: Connection, replies: Connection, db: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = connect(Path(db))
    writer = IngestWriter(conn)
    last_totals = 0.0
    try:
        while True:
            try:
                batch: Batch | None = requests.recv()
            except EOFError:
                return
            if batch is None:
                return
            outcome = _commit(writer, batch, replies)
            totals = None
            now = time.monotonic()
            if outcome.statuses or now - last_totals > TOTALS_EVERY_SECONDS:
                totals = writer.totals()
                last_totals = now
            replies.send(("ok", outcome, totals))
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent is gone; nothing was acknowledged past the last answer
    finally:
        conn.close()


def _commit(writer: IngestWriter, batch: Batch, replies: Connection) -> BatchOutcome:
    while True:
        try:
            return writer.write(batch)
        except sqlite3.Error as exc:
            # Nothing of this batch is acknowledged, so nothing is lost: retry until the store
            # is writable again (disk full, a long lock); the parent counts each failure.
            replies.send(("disk_full" if is_disk_full(exc) else "error", str(exc), None))
            time.sleep(RETRY_SECONDS)
