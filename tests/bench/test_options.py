"""Every ``precinct bench`` command takes the shared options spelled one way."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.command_line import build_parser


@pytest.mark.parametrize("command", ["ingest", "devices", "stream", "wall", "agent-memory"])
def test_every_benchmark_keeps_its_files_in_workdir_when_asked(command: str) -> None:
    argv = ["bench", command, "--workdir", "/tmp/kept"]
    assert build_parser(argv).parse_args(argv).workdir == Path("/tmp/kept")
    assert build_parser(argv[:2]).parse_args(argv[:2]).workdir is None


@pytest.mark.parametrize("command", ["stream", "wall", "agent-memory"])
def test_the_benchmarks_with_figures_print_them_as_json_when_asked(command: str) -> None:
    argv = ["bench", command, "--json"]
    assert build_parser(argv).parse_args(argv).json is True
    assert build_parser(argv[:2]).parse_args(argv[:2]).json is False
