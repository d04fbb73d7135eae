"""A planning job that fails is logged; one the full store refused is not (ingest says so)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from central.plan_jobs import _job


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
