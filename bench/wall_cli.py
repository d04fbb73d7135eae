"""``precinct bench wall``: registered by the bench package itself; the benchmark's imports
(Playwright among them) happen only when it runs."""

from __future__ import annotations

import argparse

from bench.options import add_json, add_workdir


def register(bench_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``wall`` to ``precinct bench``."""
    wall = bench_commands.add_parser(
        "wall",
        help="forced cabinet door -> the wall page in Chromium: p50/p99 latency",
        description="Run Mosquitto, a central service, an agent reading a simulated cabinet "
        "and Chromium signed in on /wall; force and close a door N times and report the delay "
        "from each reading, and from each alarm's commit, to its row on the wall (p50/p99). "
        "Exit 1 when reading -> visible p99 is 500 ms or more.",
    )
    wall.add_argument(
        "--alarms", type=int, default=100, help="forced doors to measure (%(default)s)"
    )
    add_json(wall)
    add_workdir(wall)
    wall.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import logging

    from bench.wall import run_wall_bench

    logging.basicConfig(level=logging.WARNING)
    return run_wall_bench(args.alarms, args.workdir, json_output=args.json)
