"""The ``precinct`` command and its subcommands.

Heavy imports happen inside each subcommand, so that ``precinct agent`` never loads the web stack.
Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from central import access_cli, user_cli
from edge_agent.settings_source import ConfigError, load
from monitoring.logs import LOG_FORMATS, setup_logging

EXIT_USAGE = 2
# Each device class adds its own subcommands (simulate, probe, decode…) with register(commands).
DEVICE_CLI_MODULES = ("devices.cabinet.cli", "devices.wristband.cli", "devices.gps.cli")
# Other packages' subcommands, registered the same way.
PACKAGE_CLI_MODULES = ("central.pki_cli",)
# Benchmarks that register themselves under ``precinct bench``.
BENCH_CLI_MODULES = ("bench.stream_cli", "bench.wall_cli")


def _setup_logging(level: str, log_format: str = "text") -> None:
    setup_logging(level, log_format)


def _flags(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


_AGENT_FLAGS = (
    "id",
    "broker",
    "data_dir",
    "metrics_listen",
    "synthetic",
    "station",
    "log_level",
    "log_format",
)
_CENTRAL_FLAGS = ("broker", "db", "listen", "client_id", "log_level", "log_format")


def _run_agent(args: argparse.Namespace) -> int:
    import asyncio

    from edge_agent.app import run_agent
    from edge_agent.device_supervisor import DeviceSetupError, build_devices
    from edge_agent.settings import AgentSettings

    settings = load(AgentSettings, args.config, _flags(args, _AGENT_FLAGS), os.environ)
    try:
        devices = build_devices(settings.devices)
    except DeviceSetupError as exc:
        raise ConfigError(str(args.config), exc.key, exc.message) from None
    _setup_logging(settings.log_level, settings.log_format)
    asyncio.run(run_agent(settings, devices))
    return 0


def _run_central(args: argparse.Namespace) -> int:
    from central.server import serve
    from central.settings import CentralSettings

    settings = load(CentralSettings, args.config, _flags(args, _CENTRAL_FLAGS), os.environ)
    _setup_logging(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from central.demo import run_demo

    _setup_logging("warning")
    return run_demo(listen=args.listen, duration=args.duration, broker=args.broker)


def _bench_ingest(args: argparse.Namespace) -> int:
    from bench.ingest import run_ingest_bench

    _setup_logging("warning")
    return run_ingest_bench(
        agents=args.agents, messages=args.messages, rate=args.rate, workdir=args.workdir
    )


def _bench_allocate(args: argparse.Namespace) -> int:
    from bench.allocate import run_allocate_bench

    return run_allocate_bench(budget=args.budget, seeds=tuple(args.seeds))


def _bench_devices(args: argparse.Namespace) -> int:
    from bench.devices import run_devices_bench

    _setup_logging("warning")
    return run_devices_bench(seconds=args.seconds, workdir=args.workdir, profile=args.profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="precinct", description="Devices, rooms and custody clocks for a case-handling centre."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    agent = commands.add_parser(
        "agent",
        help="run an edge agent",
        description="Run an edge agent: devices, durable outbox, MQTT.",
    )
    agent.add_argument("--id", help="agent id (its MQTT topic level)")
    agent.add_argument("--broker", metavar="URL", help="mqtt://[user:pass@]host[:port]")
    agent.add_argument("--data-dir", type=Path, metavar="DIR", help="outbox and state directory")
    agent.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    agent.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve /metrics here")
    agent.add_argument(
        "--synthetic",
        type=float,
        metavar="RATE",
        help="add a synthetic source of RATE telemetry readings per second",
    )
    agent.add_argument("--station", metavar="ID", help="station this agent belongs to")
    agent.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    agent.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json lines")
    agent.set_defaults(handler=_run_agent)

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
    demo.set_defaults(handler=_run_demo)

    bench = commands.add_parser("bench", help="run a benchmark", description="Benchmarks.")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    ingest = bench_commands.add_parser(
        "ingest",
        help="agents -> Mosquitto -> central throughput and latency",
        description="Drive agents through a real Mosquitto into one central process and compare "
        "with a bare paho subscriber measured in the same run.",
    )
    ingest.add_argument("--agents", type=int, default=4, help="publishing agents (%(default)s)")
    ingest.add_argument(
        "--messages", type=int, default=200_000, help="messages in all (%(default)s)"
    )
    ingest.add_argument(
        "--rate", type=float, default=2_000.0, help="msg/s in the latency phase (%(default)s)"
    )
    ingest.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    ingest.set_defaults(handler=_bench_ingest)
    devices = bench_commands.add_parser(
        "devices",
        help="device codecs, and an agent's CPU and memory under device load",
        description="Decode throughput per device codec, then the CPU and resident memory of "
        "an agent reading 4 cabinets, 50 wristbands and 1 GPS (simulated) at their "
        "normal rates, against an agent without devices measured in the same run.",
    )
    devices.add_argument(
        "--seconds", type=float, default=60.0, help="length of the measured window (%(default)s)"
    )
    devices.add_argument(
        "--profile",
        action="store_true",
        help="then run the loaded agent under a CPU-time sampler for another "
        "window and print where its CPU goes",
    )
    devices.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    devices.set_defaults(handler=_bench_devices)
    allocate = bench_commands.add_parser(
        "allocate",
        help="room allocation: calendar vs instant allocator vs improver",
        description="Plan generated days (100/16, 320/40, 650/64) three ways and check them: "
        "latency, weighted waiting, hard-rule violations, legal-limit misses, "
        "a disruption.",
    )
    allocate.add_argument(
        "--budget",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="improver time budget per day (%(default)s)",
    )
    allocate.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        metavar="SEED",
        help="generator seeds (%(default)s)",
    )
    allocate.set_defaults(handler=_bench_allocate)
    for names, into in (
        (DEVICE_CLI_MODULES + PACKAGE_CLI_MODULES, commands),
        (BENCH_CLI_MODULES, bench_commands),
    ):
        for name in names:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name is None or not name.startswith(exc.name):
                    raise
                continue
            module.register(into)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"precinct: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        if _interrupted_before_start(exc):
            return 130
        raise


def _interrupted_before_start(exc: BaseException) -> bool:
    """asyncio.run (CPython 3.11) can hand back a Ctrl-C that lands before its main task has
    started as that task's cancellation instead of KeyboardInterrupt."""
    asyncio = sys.modules.get("asyncio")  # not loaded: it cannot be asyncio's cancellation
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


if __name__ == "__main__":
    sys.exit(main())
