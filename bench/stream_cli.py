"""``precinct bench stream``: registered by the bench package itself; the benchmark's imports
happen only when it runs."""

from __future__ import annotations

import argparse

from bench.options import add_json, add_workdir


def register(bench_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stream`` to ``precinct bench``."""
    stream = bench_commands.add_parser(
        "stream",
        help="device readings -> live stream -> N clients: latency, events/s, memory",
        description="Run Mosquitto, a central service, simulated vans (GPS receivers read by "
        "an agent) and N clients of GET /api/v1/stream; report the delay from each reading "
        "and from its commit to every client (p50/p99), events/s delivered and the central's "
        "memory per open stream.",
    )
    stream.add_argument("--clients", type=int, default=200, help="concurrent streams (%(default)s)")
    stream.add_argument(
        "--events",
        type=int,
        default=120,
        help="van positions every client must receive (%(default)s)",
    )
    stream.add_argument(
        "--vans", type=int, default=4, help="simulated vans, one fix a second each (%(default)s)"
    )
    add_json(stream)
    add_workdir(stream)
    stream.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import logging

    from bench.stream import run_stream_bench

    logging.basicConfig(level=logging.WARNING)
    return run_stream_bench(
        args.clients, args.events, args.vans, args.workdir, json_output=args.json
    )
