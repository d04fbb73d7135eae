"""Schema migrations of the central store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.store import SCHEMA_VERSION, StoreError, migrate


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
