"""``precinct central token …`` and ``precinct central audit …``: API tokens and the audit log.

Every token created or revoked here is written to the audit log in the same transaction, with
the local user as the actor and ``cli`` as the source.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from central.audit import Actor

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(central_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``token`` and ``audit`` groups under ``precinct central``."""
    token = central_commands.add_parser(
        "token", help="manage API tokens", description="Manage API tokens."
    )
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = token_commands.add_parser(
        "create",
        help="create a token and print it",
        description="Create an API token and print it once.",
    )
    create.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    create.add_argument("--role", required=True, help="admin, centre, station or ops")
    create.add_argument("--station", metavar="ID", help="the station (role station only)")
    create.add_argument("--name", required=True, help="who or what holds the token")
    create.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="refuse the token after this long: a whole number and a unit s, m, h or d "
        "(90d, 12h, 30m); default: never",
    )
    create.set_defaults(handler=_token_create)

    listing = token_commands.add_parser(
        "list",
        help="list tokens (never their secrets)",
        description="Every token: name, role, station, created, expires, revoked.",
    )
    listing.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_token_list)

    revoke = token_commands.add_parser(
        "revoke",
        help="revoke the tokens of a name",
        description="Revoke every unrevoked token called NAME; its next request gets 401.",
    )
    revoke.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    revoke.add_argument("name", metavar="NAME", help="the token's name")
    revoke.set_defaults(handler=_token_revoke)

    audit = central_commands.add_parser(
        "audit", help="check the audit log", description="The hash-chained audit log."
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_commands.add_parser(
        "verify",
        help="check the hash chain",
        description="Walk the audit log's hash chain: exit 0 when it is whole, 1 naming the "
        "first row edited or deleted.",
    )
    verify.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    verify.set_defaults(handler=_audit_verify)


def cli_actor() -> Actor:
    """The local user at the command line, as the audit log names them."""
    from central.audit import Actor

    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        # No login name in the environment nor the password database (a bare container).
        user = f"uid:{os.getuid()}"
    return Actor(name=user[:200], role="cli", source="cli")


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"precinct: {message}", file=sys.stderr)
    return code


def _token_create(args: argparse.Namespace) -> int:
    from central import audit
    from central.auth import Role, create_token, parse_duration
    from central.store import connect, migrate
    from edge_agent.wire import format_time

    try:
        role = Role(args.role)
    except ValueError:
        return fail(f"unknown role {args.role!r} (admin, centre, station, ops)")
    now = datetime.now(UTC)
    try:
        expires_at = None if args.expires_in is None else now + parse_duration(args.expires_in)
    except ValueError as exc:
        return fail(str(exc))
    migrate(args.db)
    conn = connect(args.db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            token = create_token(
                conn,
                role=role,
                name=args.name,
                station=args.station,
                expires_at=expires_at,
                now=now,
            )
            audit.append(
                conn,
                cli_actor(),
                audit.AuditRecord(
                    "token.created",
                    args.name,
                    {
                        "role": role.value,
                        "station": args.station,
                        "expires_at": None if expires_at is None else format_time(expires_at),
                    },
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except ValueError as exc:
        return fail(str(exc))
    finally:
        conn.close()
    print(token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    from central.auth import list_tokens
    from central.store import connect, migrate

    if not args.db.is_file():
        return fail(f"{args.db}: no such file")
    migrate(args.db)
    conn = connect(args.db, readonly=True)
    try:
        tokens = list_tokens(conn)
    finally:
        conn.close()
    if args.json:
        for token in tokens:
            print(json.dumps(asdict(token), ensure_ascii=False))
        return 0
    header = ("NAME", "ROLE", "STATION", "CREATED", "EXPIRES", "REVOKED")
    table = [header] + [
        (
            t.name,
            t.role,
            t.station or "-",
            t.created_at,
            t.expires_at or "never",
            t.revoked_at or "-",
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from central import audit
    from central.auth import revoke_tokens
    from central.store import connect, migrate

    if not args.db.is_file():
        return fail(f"{args.db}: no such file")
    migrate(args.db)
    conn = connect(args.db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            revoked = revoke_tokens(conn, args.name)
            actor = cli_actor()
            for token in revoked:
                audit.append(
                    conn,
                    actor,
                    audit.AuditRecord(
                        "token.revoked", token.name, {"id": token.id, "role": token.role}
                    ),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    if not revoked:
        return fail(f"no unrevoked token named {args.name!r}", EXIT_FAILED)
    print(f"revoked {len(revoked)} token(s) named {args.name!r}")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from central import audit
    from central.store import AUDIT_SCHEMA_VERSION, connect

    if not args.db.is_file():
        return fail(f"{args.db}: no such file")
    try:
        conn = connect(args.db, readonly=True)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return fail(f"{args.db}: not a usable SQLite file: {exc}")
    try:
        if version < AUDIT_SCHEMA_VERSION:
            return fail(f"{args.db}: schema version {version} has no audit log yet")
        try:
            verdict = audit.verify(audit.rows(conn))
        except sqlite3.OperationalError as exc:
            return fail(f"{args.db}: the audit table cannot be read: {exc}", EXIT_FAILED)
        missing = audit.missing_triggers(conn)
    finally:
        conn.close()
    failed = False
    if verdict.broken is not None:
        print(f"audit chain broken: {verdict.broken.message}")
        print(f"first bad row: {verdict.broken.row} ({verdict.broken.kind})")
        failed = True
    if missing:
        print(f"append-only triggers missing: {', '.join(missing)}")
        failed = True
    if failed:
        return EXIT_FAILED
    print(f"audit chain whole: {verdict.rows} rows; head {verdict.head_id} {verdict.head_hash}")
    return 0
