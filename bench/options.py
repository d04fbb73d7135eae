"""Options every ``precinct bench`` command spells the same way."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_workdir(parser: argparse.ArgumentParser) -> None:
    """``--workdir``: where the benchmark's processes keep their files."""
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: the figures as one JSON object instead of a table."""
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
