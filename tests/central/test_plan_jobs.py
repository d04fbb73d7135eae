"""A planning job that fails is logged; one the full store refused is not (ingest says so)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import Any

import pytest

from central.plan_jobs import _in_daemon_thread, _job


def _failing(code: int) -> None:
    error = sqlite3.OperationalError("database or disk is full" if code == 13 else "boom")
    error.sqlite_errorcode = code
    raise error


def test_a_full_store_skips_the_run_quietly_and_other_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="central.plan_jobs")
    asyncio.run(_job("upkeep", lambda: _failing(sqlite3.SQLITE_FULL))())
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    caplog.clear()
    asyncio.run(_job("upkeep", lambda: _failing(sqlite3.SQLITE_IOERR))())
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


def test_the_improver_runs_in_a_thread_the_process_does_not_wait_for() -> None:
    """A stopping central must not wait for a CP-SAT solve: the improve job's thread is a
    daemon, and its result or error still reaches the job."""
    seen: list[tuple[str, bool]] = []

    def work() -> str:
        current = threading.current_thread()
        seen.append((current.name, current.daemon))
        return "moved 3"

    async def run() -> Any:
        return await _in_daemon_thread(work)

    assert asyncio.run(run()) == "moved 3"
    assert seen == [("plan-job", True)]

    def broken() -> None:
        raise ValueError("no plan")

    async def run_broken() -> Any:
        return await _in_daemon_thread(broken)

    with pytest.raises(ValueError, match="no plan"):
        asyncio.run(run_broken())
