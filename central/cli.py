"""``precinct central`` and ``precinct demo``: registered by the central package itself.

Heavy imports happen inside each subcommand, so that ``precinct --help`` never loads the web stack.
Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from central import access_cli, backup_cli, user_cli
from edge_agent.command_line import flags_given
from edge_agent.settings_source import load
from monitoring.logs import LOG_FORMATS, setup_logging

_CENTRAL_FLAGS = ("broker", "db", "listen", "client_id", "log_level", "log_format")


def _run_central(args: argparse.Namespace) -> int:
    from central.server import serve
    from central.settings import CentralSettings

    settings = load(CentralSettings, args.config, flags_given(args, _CENTRAL_FLAGS), os.environ)
    setup_logging(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from central.demo import run_demo

    setup_logging("warning")
    return run_demo(listen=args.listen, duration=args.duration, broker=args.broker)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``central`` (with its token, user, audit, backup and restore commands) and ``demo``
    to the ``precinct`` parser."""

    central = commands.add_parser(
        "central",
        help="run the central service",
        description="Run the central service: ingest, store, API.",
    )
    central.add_argument("--broker", metavar="URL", help="mqtt://[user:pass@]host[:port]")
    central.add_argument("--db", type=Path, metavar="FILE", help="SQLite store file")
    central.add_argument("--listen", metavar="HOST:PORT", help="HTTP address")
    central.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    central.add_argument(
        "--client-id",
        metavar="ID",
        help="MQTT client id of this ingest process (unique per process)",
    )
    central.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    central.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json lines")
    central.set_defaults(handler=_run_central)
    central_commands = central.add_subparsers(dest="central_command", metavar="COMMAND")
    access_cli.register(central_commands)  # token create/list/revoke, audit verify
    user_cli.register(central_commands)  # user create/list/disable
    backup_cli.register(central_commands)  # backup, restore

    demo = commands.add_parser(
        "demo",
        help="run everything on this machine",
        description="Run an embedded broker, the central service and "
        "two agents with synthetic sources.",
    )
    demo.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="HTTP address of the central service (default %(default)s)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this long (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--broker", metavar="URL", help="use this broker instead of starting the embedded one"
    )
    demo.set_defaults(handler=_run_demo, extra="demo")


if __name__ == "__main__":
    # ``python -m central.cli …`` still runs the whole ``precinct`` command.
    from edge_agent.command_line import main

    sys.exit(main())
