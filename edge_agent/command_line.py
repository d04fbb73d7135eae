"""The ``precinct`` command: one parser to which every package adds its own subcommands.

:data:`REGISTRATIONS` lists the modules tried in turn; each has ``register(commands)`` and names
the extra its commands need (``precinct[agent]``, ``[central]``, ``[demo]``). A registration
module imports only the standard library, so every command is listed in every install; the
heavy imports happen inside a command's handler. A command whose extra is not installed says
which extra to install (exit 2) instead of failing with a traceback.

The dispatcher lives in ``edge_agent`` because every install, the lean agent one too, has that
package and what it imports; it names the other packages' modules only as strings here.
Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.extras import install_hint, missing_for
from edge_agent.settings_source import ConfigError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The project's own top-level packages: a missing module outside them is a missing extra.
PROJECT_PACKAGES = frozenset(
    {"edge_agent", "central", "devices", "scheduling", "monitoring", "bench"}
)


@dataclass(frozen=True, slots=True)
class Registration:
    """A module whose ``register(commands)`` adds the top-level subcommands ``commands``, and the
    extra those need (``None``: the base install is enough). The names are listed here so that
    running one command imports only its own registration: ``precinct agent`` loads nothing of
    ``central``."""

    module: str
    commands: tuple[str, ...]
    extra: str | None


REGISTRATIONS: tuple[Registration, ...] = (
    Registration("edge_agent.cli", ("agent",), "agent"),
    # central with token, user, audit, backup and restore; demo asks for the demo extra itself.
    Registration("central.cli", ("central", "demo"), "central"),
    Registration("bench.cli", ("bench",), "demo"),
    # Each device class adds its own subcommands (simulate, probe, decode…).
    Registration("devices.cabinet.cli", ("cabinet",), "agent"),
    Registration("devices.wristband.cli", ("wristband",), "demo"),  # the simulator is bumble's
    Registration("devices.gps.cli", ("gps",), "agent"),
    Registration("central.pki_cli", ("pki",), None),  # cryptography is in every install
)


def flags_given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The flags among ``names`` given on the command line, for settings_source.load."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _is_outside_project(exc: ModuleNotFoundError) -> bool:
    return exc.name is not None and exc.name.partition(".")[0] not in PROJECT_PACKAGES


def _registrations_for(argv: Sequence[str] | None) -> tuple[Registration, ...]:
    """The registration of the command ``argv`` names; all of them for help, or a typo."""
    first = next(iter(argv), None) if argv is not None else None
    if first is not None:
        named = tuple(r for r in REGISTRATIONS if first in r.commands)
        if named:
            return named
    return REGISTRATIONS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with only the one that ``argv`` runs."""
    parser = argparse.ArgumentParser(
        prog="precinct", description="Devices, rooms and custody clocks for a case-handling centre."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for registration in _registrations_for(argv):
        try:
            module = importlib.import_module(registration.module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not registration.module.startswith(exc.name):
                if not _is_outside_project(exc):
                    raise
                # A registration module should import only the standard library; should one
                # not, its commands are left out rather than the whole command failing.
                print(
                    f"precinct: {registration.module} left out: {exc.name} is not installed "
                    f"({install_hint(registration.extra or 'demo')})",
                    file=sys.stderr,
                )
            continue
        known = set(commands.choices)
        module.register(commands)
        for name in set(commands.choices) - known:
            added = commands.choices[name]
            if added.get_default("extra") is None:  # a command may name a larger extra itself
                added.set_defaults(extra=registration.extra)
    return parser


def _missing_extra_message(command: str, extra: str, missing: Sequence[str]) -> str:
    listed = f" (not installed: {', '.join(missing)})" if missing else ""
    return (
        f"precinct {command}: needs the '{extra}' extra{listed}; "
        f"install it with: {install_hint(extra)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    extra: str | None = getattr(args, "extra", None)
    if extra is not None:
        missing = missing_for(extra)
        if missing:
            print(_missing_extra_message(args.command, extra, missing), file=sys.stderr)
            return EXIT_USAGE
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"precinct: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        # Without the distribution's metadata (a source tree) the check above cannot run.
        if extra is None or not _is_outside_project(exc):
            raise
        print(_missing_extra_message(args.command, extra, [str(exc.name)]), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:
        if _interrupted_before_start(exc):
            return EXIT_INTERRUPTED
        raise


def _interrupted_before_start(exc: BaseException) -> bool:
    """asyncio.run (CPython 3.11) can hand back a Ctrl-C that lands before its main task has
    started as that task's cancellation instead of KeyboardInterrupt."""
    asyncio = sys.modules.get("asyncio")  # not loaded: it cannot be asyncio's cancellation
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


if __name__ == "__main__":
    sys.exit(main())
