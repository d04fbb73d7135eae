"""``precinct central backup`` and ``restore`` as an operator runs them: a backup taken while a
real central ingests from a real agent holds every row committed before it began; a restore
checks its source (missing, corrupt, not a store, newer schema) and the store it replaces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from central.store import SCHEMA_VERSION, migrate
from tests.conftest import Deployment
from tests.support import run_precinct, wait_until

RATE = 200.0  # synthetic readings per second: enough that ingest writes during the backup


def _max_event_id(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def _events_up_to(db: Path, last_id: int) -> set[tuple[int, str, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, agent, seq FROM events WHERE id <= ?", (last_id,))
        return {(int(i), str(a), int(s)) for i, a, s in rows}
    finally:
        conn.close()


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _store(path: Path, version: int | None = None) -> Path:
    migrate(path)
    if version is not None:
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version={version}")
        conn.close()
    return path


def test_a_backup_during_ingest_restores_every_row_committed_before_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.start_central()
    deployment.start_agent("a1", synthetic=RATE)
    wait_until(lambda: _max_event_id(deployment.db) >= 300, 30, "ingest to store 300 readings")
    committed_before = _max_event_id(deployment.db)
    backup = tmp_path / "backups" / "central.sqlite3"
    backup.parent.mkdir()

    done = run_precinct("central", "backup", "--db", str(deployment.db), "--to", str(backup))

    assert done.returncode == 0, done.stderr
    assert f"schema version {SCHEMA_VERSION}" in done.stdout
    assert _integrity(backup) == "ok"
    # Ingest went on: the backup held no lock that stopped the central's writes.
    wait_until(
        lambda: _max_event_id(deployment.db) > _max_event_id(backup) + 100,
        30,
        "ingest to go on past the backup",
    )
    assert deployment.central is not None
    assert deployment.central.alive()
    assert not list(backup.parent.glob(".*partial*"))  # no half-written file left behind

    restored = tmp_path / "restored" / "central.sqlite3"
    done = run_precinct("central", "restore", "--from", str(backup), "--db", str(restored))

    assert done.returncode == 0, done.stderr
    assert _integrity(restored) == "ok"
    expected = _events_up_to(deployment.db, committed_before)
    assert len(expected) == committed_before
    assert _events_up_to(restored, committed_before) == expected


def test_a_backup_refuses_to_overwrite_a_file_without_force(tmp_path: Path) -> None:
    db = _store(tmp_path / "central.sqlite3")
    target = tmp_path / "backup.sqlite3"
    target.write_bytes(b"yesterday's backup")

    refused = run_precinct("central", "backup", "--db", str(db), "--to", str(target))
    forced = run_precinct("central", "backup", "--db", str(db), "--to", str(target), "--force")

    assert refused.returncode == 2
    assert refused.stderr.startswith(f"precinct central backup: {target}: exists (give --force")
    assert "Traceback" not in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"backed up {db} to {target}: schema version")
    assert _integrity(target) == "ok"


def test_a_backup_of_a_missing_or_corrupt_store_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"not a database at all, " * 100)

    missing = run_precinct(
        "central", "backup", "--db", str(tmp_path / "nope.sqlite3"), "--to", str(tmp_path / "b1")
    )
    garbage = run_precinct("central", "backup", "--db", str(corrupt), "--to", str(tmp_path / "b2"))

    assert missing.returncode == 2
    assert "nope.sqlite3: no such file" in missing.stderr
    assert garbage.returncode == 2
    assert "corrupt.sqlite3: not a usable SQLite file" in garbage.stderr
    assert "Traceback" not in missing.stderr + garbage.stderr
    assert not (tmp_path / "b1").exists()
    assert not (tmp_path / "b2").exists()


def test_a_restore_checks_its_source_before_it_touches_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path / "central.sqlite3")
    before = store.read_bytes()
    newer = _store(tmp_path / "newer.sqlite3", SCHEMA_VERSION + 1)
    not_a_store = tmp_path / "other.sqlite3"
    sqlite3.connect(not_a_store).execute("CREATE TABLE t (x)").connection.close()
    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(_store(tmp_path / "whole.sqlite3").read_bytes()[:5000])
    cases = {
        newer: f"schema version {SCHEMA_VERSION + 1} is newer than this release ({SCHEMA_VERSION})",
        not_a_store: "not a Precinct store",
        truncated: "truncated.sqlite3:",
        tmp_path / "missing.sqlite3": "missing.sqlite3: no such file",
    }
    for source, message in cases.items():
        done = run_precinct(
            "central", "restore", "--from", str(source), "--db", str(store), "--force"
        )

        assert done.returncode == 2, (source, done.stdout, done.stderr)
        assert message in done.stderr, (source, done.stderr)
        assert "Traceback" not in done.stderr
    assert store.read_bytes() == before


def test_a_restore_replaces_a_store_only_with_force(tmp_path: Path) -> None:
    backup = _store(tmp_path / "backup.sqlite3")
    conn = sqlite3.connect(backup)
    conn.execute("CREATE TABLE marker (note TEXT)")
    conn.execute("INSERT INTO marker VALUES ('from-the-backup')")
    conn.commit()
    conn.close()
    store = _store(tmp_path / "central.sqlite3")

    refused = run_precinct("central", "restore", "--from", str(backup), "--db", str(store))
    forced = run_precinct(
        "central", "restore", "--from", str(backup), "--db", str(store), "--force"
    )

    assert refused.returncode == 2
    assert refused.stderr.startswith("precinct central restore: ")
    assert "exists (give --force to replace it" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"restored {backup} into {store}: schema version")
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT note FROM marker").fetchall() == [("from-the-backup",)]
    conn.close()


def test_a_restore_refuses_while_a_central_has_the_store_open(
    deployment: Deployment, tmp_path: Path
) -> None:
    backup = _store(tmp_path / "backup.sqlite3")
    deployment.start_central()

    done = run_precinct(
        "central", "restore", "--from", str(backup), "--db", str(deployment.db), "--force"
    )

    assert done.returncode == 2
    assert "in use by a running central; stop it first" in done.stderr
    assert deployment.central is not None
    assert deployment.central.alive()


def test_the_central_refuses_a_store_from_a_newer_release(tmp_path: Path) -> None:
    newer = _store(tmp_path / "newer.sqlite3", SCHEMA_VERSION + 1)

    done = run_precinct(
        "central", "--db", str(newer), "--broker", "mqtt://127.0.0.1:1", "--listen", "127.0.0.1:0"
    )

    assert done.returncode == 2
    assert (
        f"schema version {SCHEMA_VERSION + 1} is newer than this release ({SCHEMA_VERSION})"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
