"""``precinct bench``: registered by the bench package itself, with the benchmarks that
register their own subcommands (:data:`BENCH_CLI_MODULES`); a benchmark's imports happen only
when it runs."""

from __future__ import annotations

import argparse
import importlib

from bench.options import add_json, add_workdir
from monitoring.logs import setup_logging

# Benchmarks that register themselves under ``precinct bench``.
BENCH_CLI_MODULES = (
    "bench.stream_cli",
    "bench.wall_cli",
    "bench.agent_memory_cli",
    "bench.refusals_cli",
)


def _bench_ingest(args: argparse.Namespace) -> int:
    from bench.ingest import run_ingest_bench

    setup_logging("warning")
    return run_ingest_bench(
        agents=args.agents, messages=args.messages, rate=args.rate, workdir=args.workdir
    )


def _bench_allocate(args: argparse.Namespace) -> int:
    from bench.allocate import run_allocate_bench
    from scheduling.generator import DayFamily

    return run_allocate_bench(
        budget=args.budget,
        seeds=tuple(args.seeds),
        reference_budget=args.reference_budget,
        sizes=args.sizes,
        families=[DayFamily(name) for name in args.families],
        as_json=args.json,
    )


def _size(text: str) -> tuple[int, int]:
    """``PERSONS/ROOMS``, as ``--sizes`` takes it."""
    persons, _slash, rooms = text.partition("/")
    try:
        size = (int(persons), int(rooms))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PERSONS/ROOMS, e.g. 650/64") from None
    if not (1 <= size[0] <= 5000 and 4 <= size[1] <= 500):
        raise argparse.ArgumentTypeError(f"{text!r}: 1-5000 persons, 4-500 rooms")
    return size


def _bench_devices(args: argparse.Namespace) -> int:
    from bench.devices import run_devices_bench

    setup_logging("warning")
    return run_devices_bench(seconds=args.seconds, workdir=args.workdir, profile=args.profile)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` and its benchmarks to the ``precinct`` parser."""
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
    add_workdir(ingest)
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
    add_workdir(devices)
    devices.set_defaults(handler=_bench_devices)
    allocate = bench_commands.add_parser(
        "allocate",
        help="room allocation: the live plan against an offline reference",
        description="Plan generated days (100/16, 320/40, 650/64; feasible by design and "
        "overloaded) three ways, reference, instant and improved, and check them: placed, "
        "impossible by the data, legal-limit misses, weighted waiting against the reference, "
        "answer latency accepted and refused with the waitlist on and off, a disruption.",
    )
    allocate.add_argument(
        "--budget",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="improver time budget per day (%(default)s)",
    )
    allocate.add_argument(
        "--reference-budget",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="CP-SAT time budget per day for the offline reference (%(default)s)",
    )
    allocate.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        default=[(100, 16), (320, 40), (650, 64)],
        metavar="PERSONS/ROOMS",
        help="day sizes (100/16 320/40 650/64)",
    )
    allocate.add_argument(
        "--families",
        nargs="+",
        choices=["feasible", "overloaded"],
        default=["feasible", "overloaded"],
        help="day families (%(default)s)",
    )
    add_json(allocate)
    allocate.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        metavar="SEED",
        help="generator seeds (%(default)s)",
    )
    allocate.set_defaults(handler=_bench_allocate)
    for name in BENCH_CLI_MODULES:
        importlib.import_module(name).register(bench_commands)
