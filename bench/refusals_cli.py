"""``precinct bench refusals``: registered by the bench package itself; the benchmark's
imports happen only when it runs."""

from __future__ import annotations

import argparse

from bench.options import add_json


def register(bench_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``refusals`` to ``precinct bench``."""
    refusals = bench_commands.add_parser(
        "refusals",
        help="latency of a booking refused whole, with its suggestion and partial plan",
        description="Book generated days (100/16, 320/40, 650/64) through the planning "
        "service without the waitlist and time every answer, accepted and refused (each "
        "person's rule, the suggested arrival, the best partial plan); the stored plans and "
        "every partial plan are checked. Exit 1 when a p99 is 50 ms or more, or on a "
        "violation.",
    )
    refusals.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        metavar="SEED",
        help="generator seeds (%(default)s)",
    )
    refusals.add_argument(
        "--persons",
        type=int,
        nargs="+",
        choices=(100, 320, 650),
        default=[100, 320, 650],
        help="day sizes by persons: 100/16, 320/40, 650/64 rooms (%(default)s)",
    )
    add_json(refusals)
    refusals.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.refusals import SIZES, run_refusals_bench

    sizes = tuple(size for size in SIZES if size[0] in args.persons)
    return run_refusals_bench(tuple(args.seeds), sizes, json_output=args.json)
