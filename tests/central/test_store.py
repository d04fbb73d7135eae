"""Schema migrations of the central store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from central import plan_store
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


def test_rooms_gain_an_empty_adjacency_once_even_if_the_migration_runs_again(
    tmp_path: Path,
) -> None:
    # The version just before the adjacency, then the adjacency run a second time.
    before = [m.__name__ for m in MIGRATIONS].index("_v14")
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={before}")
    conn.execute(
        "INSERT INTO rooms (id, type, capacity, equipment, state, created_at, updated_at) "
        "VALUES ('I-1', 'interrogation', 1, '[\"recording\"]', 'in_service', 'x', 'x')"
    )
    conn.commit()
    conn.close()
    assert migrate(db) == before
    conn = connect(db)
    try:
        [room] = plan_store.rooms(conn)
        assert room.adjacent_to == frozenset()
        conn.execute("UPDATE rooms SET adjacent_to = '[\"I-2\"]'")
        [room] = plan_store.rooms(conn)
        assert room.adjacent_to == frozenset({"I-2"})
    finally:
        conn.close()
