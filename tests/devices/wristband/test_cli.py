"""``precinct wristband simulate``: its help, its usage errors, and an agent in another process."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bench.processes import free_port
from devices.wristband.driver import WristbandFleet
from devices.wristband.simulator import SimulationPlan, band_address, band_id, client_spec
from edge_agent.command_line import build_parser, main
from tests.devices.wristband.support import (
    RecordingHealth,
    RecordingSink,
    fleet_settings,
    running,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[3]


def test_simulate_help_says_what_it_serves(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["wristband", "simulate", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "tcp-server:127.0.0.1:9110" in text
    assert 'backend = "bumble:tcp-client:127.0.0.1:9110"' in text
    assert "SIGUSR1" in text
    assert "no Bluetooth adapter" in " ".join(text.split())


def test_simulate_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["wristband", "simulate", "--open-strap", "soon"])
    assert done.value.code == 2
    assert "BAND@SECONDS" in capsys.readouterr().err
    assert main(["wristband", "simulate", "--bands", "2", "--open-strap", "5@1"]) == 2
    assert "names band 5" in capsys.readouterr().err


def test_the_printed_agent_configuration_matches_the_bands() -> None:
    plan = SimulationPlan(bands=2, hci=("tcp-server:_:9200",))
    text = plan.agent_config()
    assert 'backend = "bumble:tcp-client:127.0.0.1:9200"' in text
    assert f'{{ id = "{band_id(2)}", address = "{band_address(2)}" }}' in text
    assert client_spec("unix-server:/tmp/bands.sock") == "unix-client:/tmp/bands.sock"


async def test_an_agent_in_another_process_hears_the_simulated_bands() -> None:
    port = free_port()
    spec = f"tcp-server:127.0.0.1:{port}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent.command_line",
        "wristband",
        "simulate",
        "--bands",
        "2",
        "--hci",
        spec,
        "--seed",
        "7",
        "--advertising-interval",
        "50",
        "--heart-rate-period",
        "0.1",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert child.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any("serving an HCI controller" in line for line in lines):
                line = (await child.stdout.readline()).decode()
                assert line, "simulate exited early:\n" + "".join(lines)
                lines.append(line)

        sink, health = RecordingSink(), RecordingHealth()
        settings = fleet_settings(
            [(band_id(1), band_address(1)), (band_id(2), band_address(2))],
            backend=f"bumble:{client_spec(spec)}",
        )
        fleet = WristbandFleet(settings)
        async with running(fleet, sink, health):
            await wait_until(
                lambda: all(fleet.status()["bands"][band_id(i)]["connected"] for i in (1, 2)),
                within=15,
                what="both bands",
            )
            await wait_until(
                lambda: (
                    {band_id(1), band_id(2)}
                    <= {r.device for r in sink.readings if r.kind == "heart_rate"}
                ),
                what="heart rates",
            )
            # SIGUSR1 opens the next band's strap, band 1 first.
            child.send_signal(signal.SIGUSR1)
            await wait_until(lambda: sink.find("strap_opened"), what="strap_opened")
        opened = sink.find("strap_opened")
        assert opened is not None
        assert opened.device == band_id(1)
        assert opened.body["source"] == "indication"
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            rest, _ = await child.communicate()
    output = "".join(lines) + rest.decode()
    assert child.returncode == 0, output
    assert "band-001 strap OPENED" in output
    assert "simulation stopped" in output
