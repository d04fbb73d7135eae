"""``precinct central user …``: the people who sign in to the pages.

The password comes from ``--password-file`` or is asked for twice at the terminal; it is never
an argument (the process list and shell history would show it). Every user created or disabled
here is written to the audit log in the same transaction, with the local user as the actor.
"""

from __future__ import annotations

import argparse
import getpass
import json
from dataclasses import asdict
from pathlib import Path

from central.access_cli import EXIT_FAILED, cli_actor, fail

# A password file holds one line; anything much larger is the wrong file.
_MAX_PASSWORD_FILE_BYTES = 4096


def register(central_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``user`` group under ``precinct central``."""
    user = central_commands.add_parser(
        "user", help="manage the people who sign in", description="Manage people's sign-in."
    )
    commands = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    create = commands.add_parser(
        "create",
        help="create a user",
        description="Create a user who signs in to the pages with a name and password.",
    )
    create.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    create.add_argument("--name", required=True, help="the sign-in name (letters, digits, _.:-)")
    create.add_argument("--role", required=True, help="admin, centre, station or ops")
    create.add_argument("--station", metavar="ID", help="the station (role station only)")
    create.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from the first line of FILE (default: ask twice)",
    )
    create.set_defaults(handler=_create)

    listing = commands.add_parser(
        "list",
        help="list users (never their password hashes)",
        description="Every user: name, role, station, created, disabled.",
    )
    listing.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)

    disable = commands.add_parser(
        "disable",
        help="disable a user and end their sessions",
        description="Disable NAME: they can no longer sign in, and their open sessions end.",
    )
    disable.add_argument("--db", type=Path, required=True, metavar="FILE", help="SQLite store")
    disable.add_argument("name", metavar="NAME", help="the user's name")
    disable.set_defaults(handler=_disable)


def _password(args: argparse.Namespace) -> str:
    """The new password, from the file or the terminal (ValueError says what is wrong)."""
    if args.password_file is not None:
        path: Path = args.password_file
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_PASSWORD_FILE_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"--password-file {path}: {exc.strerror}") from None
        if len(raw) > _MAX_PASSWORD_FILE_BYTES:
            raise ValueError(f"--password-file {path}: more than one short line")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"--password-file {path}: not UTF-8 text") from None
        return text.splitlines()[0] if text else ""
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise ValueError("the two passwords differ")
    return first


def _create(args: argparse.Namespace) -> int:
    from central import audit
    from central.auth import Role
    from central.store import connect, migrate, write_transaction
    from central.users import UserError, check_identity, check_password, create_user

    try:
        role = Role(args.role)
    except ValueError:
        return fail(f"unknown role {args.role!r} (admin, centre, station, ops)")
    try:
        check_identity(args.name, role, args.station)
        password = _password(args)
        check_password(password)
    except (UserError, ValueError) as exc:
        return fail(str(exc))
    except EOFError:
        return fail("no password given")
    migrate(args.db)
    conn = connect(args.db)
    try:
        with write_transaction(conn):
            user = create_user(
                conn, name=args.name, role=role, station=args.station, password=password
            )
            audit.append(
                conn,
                cli_actor(),
                audit.AuditRecord(
                    "user.created", user.name, {"role": user.role, "station": user.station}
                ),
            )
    except UserError as exc:
        return fail(str(exc))
    finally:
        conn.close()
    where = f", station {user.station}" if user.station else ""
    print(f"created user {user.name!r} ({user.role}{where})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from central.store import connect, migrate
    from central.users import list_users

    if not args.db.is_file():
        return fail(f"{args.db}: no such file")
    migrate(args.db)
    conn = connect(args.db, readonly=True)
    try:
        users = list_users(conn)
    finally:
        conn.close()
    if args.json:
        for user in users:
            print(json.dumps(asdict(user), ensure_ascii=False))
        return 0
    header = ("NAME", "ROLE", "STATION", "CREATED", "DISABLED")
    table = [header] + [
        (u.name, u.role, u.station or "-", u.created_at, u.disabled_at or "-") for u in users
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _disable(args: argparse.Namespace) -> int:
    from central import audit
    from central.store import connect, migrate, write_transaction
    from central.users import disable_user

    if not args.db.is_file():
        return fail(f"{args.db}: no such file")
    migrate(args.db)
    conn = connect(args.db)
    try:
        with write_transaction(conn):
            ended = disable_user(conn, args.name)
            if ended is not None:
                audit.append(
                    conn,
                    cli_actor(),
                    audit.AuditRecord("user.disabled", args.name, {"sessions_ended": ended}),
                )
    finally:
        conn.close()
    if ended is None:
        return fail(f"no enabled user named {args.name!r}", EXIT_FAILED)
    print(f"disabled {args.name!r}; {ended} session(s) ended")
    return 0
