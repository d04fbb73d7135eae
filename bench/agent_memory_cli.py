"""``precinct bench agent-memory``: registered by the bench package itself; the benchmark's
imports happen only when it runs."""

from __future__ import annotations

import argparse

from bench.options import add_json, add_workdir


def register(bench_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent-memory`` to ``precinct bench``."""
    memory = bench_commands.add_parser(
        "agent-memory",
        help="an agent's resident memory: lean install (precinct[agent]) vs full",
        description="Build a fresh venv with only precinct[agent], then run an agent with a "
        "synthetic source against a Mosquitto from it and from this (full) environment in "
        "turn; print each one's resident memory after start-up and after the window, and "
        "the ratios.",
    )
    memory.add_argument(
        "--seconds", type=float, default=60.0, help="length of the load window (%(default)s)"
    )
    memory.add_argument(
        "--rate", type=float, default=50.0, help="synthetic readings per second (%(default)s)"
    )
    add_json(memory)
    add_workdir(memory)
    memory.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.agent_memory import run_agent_memory_bench

    return run_agent_memory_bench(
        seconds=args.seconds, rate=args.rate, workdir=args.workdir, json_output=args.json
    )
