"""Backup and restore of the central store with SQLite's online backup API.

A backup copies the store in one backup step, that is inside one read transaction: in WAL mode
that is a snapshot of every transaction committed before it began, and ingest keeps writing
meanwhile (readers do not block WAL writers). Stepping page by page instead would restart the
copy whenever a writer commits, which under steady ingest may never finish.

The copy is written beside the target under a temporary name, checked with ``PRAGMA
integrity_check`` and only then given the target's name, so a target path never holds half a
backup. A restore checks its source (a SQLite file, intact, a store of a schema this release
knows) before it touches the store, and refuses while another process has the store open.

Errors: :class:`BackupRefusedError` (exit 2: a missing or unusable source, a target that exists
without ``force``, a store in use, a newer schema); anything else is an I/O failure (exit 1).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from central.store import SCHEMA_VERSION, connect
from central.store_lock import StoreBusyError, held_for_restore

# A restore's probe for other connections: no wait, the answer is wanted now.
_NO_WAIT = 0.0


class BackupRefusedError(Exception):
    """The backup or restore was not done; the message says why and names the file."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a backup or restore wrote."""

    path: Path
    schema_version: int
    size_bytes: int
    seconds: float


def _open_source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise BackupRefusedError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupRefusedError(f"{path}: not a usable SQLite file: {exc}") from exc
    return conn


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("PRAGMA integrity_check").fetchall()
    return [] if rows == [("ok",)] else [str(row[0]) for row in rows]


def _schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_store_file(path: Path) -> int:
    """Refuse a file that is not an intact store this release can open; its schema version."""
    conn = _open_source(path)
    try:
        try:
            problems = _integrity_problems(conn)
            version = _schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise BackupRefusedError(f"{path}: not a usable SQLite file: {exc}") from exc
    finally:
        conn.close()
    if problems:
        raise BackupRefusedError(f"{path}: fails the integrity check: {'; '.join(problems[:5])}")
    if version == 0:
        raise BackupRefusedError(f"{path}: not a Precinct store (no schema version)")
    if version > SCHEMA_VERSION:
        raise BackupRefusedError(
            f"{path}: schema version {version} is newer than this release ({SCHEMA_VERSION}); "
            "restore it with the release that wrote it"
        )
    return version


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(db: Path, target: Path, *, force: bool = False) -> CopyReport:
    """Copy the store at ``db`` to ``target`` while other processes keep writing to it."""
    if target.exists() and not force:
        raise BackupRefusedError(f"{target}: exists (give --force to overwrite it)")
    started = time.monotonic()
    source = _open_source(db)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # one step: one snapshot (module docstring)
            problems = _integrity_problems(copy)
            version = _schema_version(copy)
        finally:
            copy.close()
        if problems:
            raise BackupRefusedError(f"{db}: the copy fails the integrity check: {problems[0]}")
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        if force:
            partial.replace(target)
        else:
            # link, not rename: a target that appeared meanwhile is refused, not replaced.
            try:
                os.link(partial, target)
            except FileExistsError:
                raise BackupRefusedError(
                    f"{target}: exists (give --force to overwrite it)"
                ) from None
        _fsync_dir(target.parent)
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    return CopyReport(target, version, target.stat().st_size, time.monotonic() - started)


def _refuse_if_in_use(db: Path) -> None:
    """Another SQLite connection (a token being created, an ingest worker mid-write) has the
    store open; a running central is refused before this by its flock."""
    probe = sqlite3.connect(db, isolation_level=None, timeout=_NO_WAIT)
    try:
        probe.execute("PRAGMA locking_mode=EXCLUSIVE")
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise BackupRefusedError(
            f"{db}: in use by another process ({exc}); stop what has it open first"
        ) from exc
    except sqlite3.DatabaseError:
        pass  # not a database: it is replaced below, and only with force
    finally:
        probe.close()


def restore(source: Path, db: Path, *, force: bool = False) -> CopyReport:
    """Replace the store at ``db`` (or create it) with the backup at ``source``."""
    version = check_store_file(source)
    if db.exists() and not force:
        raise BackupRefusedError(f"{db}: exists (give --force to replace it with {source})")
    started = time.monotonic()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.touch()  # an empty file is an empty SQLite database, and something to lock
    try:
        with held_for_restore(db):
            _refuse_if_in_use(db)
            _copy_into(source, db)
    except StoreBusyError as exc:
        raise BackupRefusedError(str(exc)) from None
    return CopyReport(db, version, db.stat().st_size, time.monotonic() - started)


def _copy_into(source: Path, db: Path) -> None:
    reader = _open_source(source)
    try:
        try:
            target = connect(db)
        except sqlite3.DatabaseError:
            # An unreadable store is what a restore is for: move it aside, start afresh.
            _move_aside(db)
            target = connect(db)
        try:
            # Exclusive from here on, so that no other connection sees the store half restored.
            target.execute("PRAGMA locking_mode=EXCLUSIVE")
            target.execute("BEGIN EXCLUSIVE")
            target.execute("COMMIT")
            reader.backup(target)
            problems = _integrity_problems(target)
        finally:
            target.close()
    finally:
        reader.close()
    if problems:
        raise BackupRefusedError(
            f"{db}: fails the integrity check after the restore: {problems[0]}"
        )


def _move_aside(db: Path) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            path.replace(Path(f"{db}{suffix}.unreadable-{stamp}"))
