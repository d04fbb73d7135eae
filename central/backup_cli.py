"""``precinct central backup`` and ``precinct central restore``: the store copied with SQLite's
online backup while the central runs, and put back while it is stopped."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from central.backup import CopyReport

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(central_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backup`` and ``restore`` under ``precinct central``."""
    backup = central_commands.add_parser(
        "backup",
        help="copy the store while the central runs",
        description="Copy the store with SQLite's online backup: a consistent snapshot of every "
        "transaction committed before it began, taken while ingest keeps writing; the copy "
        "passes PRAGMA integrity_check before it gets its name.",
    )
    backup.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    backup.add_argument("--to", type=Path, required=True, metavar="FILE", help="the backup file")
    backup.add_argument("--force", action="store_true", help="overwrite an existing --to file")
    backup.set_defaults(handler=_backup)

    restore = central_commands.add_parser(
        "restore",
        help="put a backup in place of the store (central stopped)",
        description="Check a backup (a SQLite file, intact, a schema this release knows) and "
        "copy it into the store. Refuses while another process has the store open, and an "
        "existing store without --force.",
    )
    restore.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="FILE", help="the backup file"
    )
    restore.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    restore.add_argument("--force", action="store_true", help="replace an existing store")
    restore.set_defaults(handler=_restore)


def _backup(args: argparse.Namespace) -> int:
    from central.backup import backup

    return _copy(
        "backup", lambda: backup(args.db, args.to, force=args.force), f"backed up {args.db} to"
    )


def _restore(args: argparse.Namespace) -> int:
    from central.backup import restore

    return _copy(
        "restore",
        lambda: restore(args.source, args.db, force=args.force),
        f"restored {args.source} into",
    )


def _copy(command: str, copy: Callable[[], CopyReport], done: str) -> int:
    """Run ``copy`` for ``precinct central COMMAND``: its report on stdout, or why it was
    refused (a usage error) or failed on stderr."""
    from central.backup import BackupRefusedError

    try:
        report = copy()
    except BackupRefusedError as exc:
        print(f"precinct central {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as exc:
        print(f"precinct central {command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"{done} {report.path}: schema version {report.schema_version}, "
        f"{report.size_bytes} bytes in {report.seconds:.2f} s"
    )
    return 0
