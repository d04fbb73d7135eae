"""Schema migrations of the central store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from central.store import MIGRATIONS, SCHEMA_VERSION, StoreError, connect, migrate


def test_migrate_creates_then_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    assert migrate(db) == 0
    assert migrate(db) == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"events", "quarantine", "agents", "tokens", "commands"} <= tables
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this release"):
        migrate(db)


def test_the_epoch_migration_can_run_again_after_a_kill_before_the_version(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = connect(db)
    try:
        # Killed after the commit of _v5 but before user_version was written: it runs again.
        MIGRATIONS[4](sqlite_utils.Database(conn))
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(events)")}
        assert "events_agent_epoch_seq" in indexes
        assert "events_agent_seq" not in indexes  # (agent, seq) alone no longer unique
    finally:
        conn.close()
