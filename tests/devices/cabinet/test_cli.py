"""``precinct cabinet simulate`` and ``probe`` as real processes, as a technician runs them."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_agent.command_line import build_parser
from tests.support import run_precinct

ROOT = Path(__file__).resolve().parents[3]


class Simulator:
    """A ``precinct cabinet simulate`` child; :attr:`port` is the first line it prints."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.command_line", "cabinet", "simulate", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 15)
        if not ready:
            self.process.kill()
            pytest.fail(f"the simulator printed no port: {log.read_text()}")
        self.port = self.process.stdout.readline().decode().strip()

    def tell(self, line: str, reply: str) -> None:
        """Send a stdin command and wait until its answer is in the log."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()
        self.wait_for(reply)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + 10
        while text not in self.log.read_text():
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} not in the simulator's output: {self.log.read_text()}")
            time.sleep(0.01)

    def stop(self) -> int:
        """Ctrl-C, as a person would stop it."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(10)
        finally:
            self._log_file.close()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()


@contextmanager
def simulator(tmp_path: Path, *args: str) -> Iterator[Simulator]:
    child = Simulator(list(args), tmp_path / "simulator.log")
    try:
        yield child
    finally:
        if child.process.poll() is None:
            child.stop()


def test_probe_against_a_simulated_board(tmp_path: Path) -> None:
    with simulator(tmp_path, "--slots", "4", "--addr", "3") as sim:
        assert sim.port.startswith("/dev/")
        probe = run_precinct("cabinet", "probe", "--port", sim.port, "--addr", "3")
        assert probe.returncode == 0, probe.stderr
        out = probe.stdout
        assert f"board 3 on {sim.port}: scp1 v1, model SCP-SIM-4, 4 slots" in out
        assert out.count("closed  locked") == 4
        assert "RFID inventory: 4 tags" in out

        sim.tell("force 2", "force 2: event 1")
        sim.process.send_signal(signal.SIGUSR1)
        sim.wait_for("SIGUSR1: door 1 forced open")
        probe = run_precinct("cabinet", "probe", "--port", sim.port, "--addr", "3", "--json")
        assert probe.returncode == 0, probe.stderr
        report = json.loads(probe.stdout)
        assert [(s["slot"], s["door_open"], s["forced"]) for s in report["slots"]] == [
            (1, True, True),
            (2, True, True),
            (3, False, False),
            (4, False, False),
        ]
        assert len(report["tags"]) == 4

        silent = run_precinct(
            "cabinet",
            "probe",
            "--port",
            sim.port,
            "--addr",
            "9",
            "--timeout",
            "0.05",
            "--retries",
            "1",
        )
        assert silent.returncode == 1
        assert "board 9 on" in silent.stderr
        assert "did not answer (2 attempts" in silent.stderr
        assert "Traceback" not in silent.stderr + silent.stdout
        assert sim.stop() == 0
    assert "Traceback" not in (tmp_path / "simulator.log").read_text()


def test_probe_survives_a_lossy_board(tmp_path: Path) -> None:
    with simulator(tmp_path, "--drop-rate", "0.3", "--corrupt-rate", "0.2", "--seed", "7") as sim:
        probe = run_precinct(
            "cabinet", "probe", "--port", sim.port, "--retries", "8", "--timeout", "0.1"
        )
        assert probe.returncode == 0, probe.stderr
        assert "RFID inventory: 8 tags" in probe.stdout
        assert sim.stop() == 0


def test_probe_a_modbus_board(tmp_path: Path) -> None:
    with simulator(tmp_path, "--protocol", "modbus", "--slots", "4", "--addr", "5") as sim:
        assert sim.port.startswith("socket://127.0.0.1:")
        sim.tell("force 4", "force 4")
        probe = run_precinct(
            "cabinet",
            "probe",
            "--port",
            sim.port,
            "--addr",
            "5",
            "--protocol",
            "modbus",
            "--slots",
            "4",
        )
        assert probe.returncode == 0, probe.stderr
        assert "model Modbus RTU lock board, 4 slots" in probe.stdout
        assert "   4  open    locked" in probe.stdout
        assert "RFID inventory: not supported" in probe.stdout
        sim.tell("silent", "silent")
        silent = run_precinct(
            "cabinet",
            "probe",
            "--port",
            sim.port,
            "--addr",
            "5",
            "--protocol",
            "modbus",
            "--slots",
            "4",
            "--timeout",
            "0.05",
        )
        assert silent.returncode == 1
        assert "did not answer" in silent.stderr
        assert "Traceback" not in silent.stderr
        assert sim.stop() == 0


def test_probe_of_a_missing_port() -> None:
    probe = run_precinct("cabinet", "probe", "--port", "/dev/precinct-no-such-port")
    assert probe.returncode == 1
    assert "cannot open" in probe.stderr
    assert "Traceback" not in probe.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["probe", "--port", "/dev/null", "--addr", "0"],
        ["probe", "--port", "/dev/null", "--protocol", "modbus"],
        ["probe", "--port", "/dev/null", "--timeout", "0"],
        ["simulate", "--slots", "0"],
        ["simulate", "--addr", "300"],
        ["simulate", "--drop-rate", "2"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    result = run_precinct("cabinet", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["cabinet", "--help"], "simulate"),
        (["cabinet", "simulate", "--help"], "SIGUSR1 forces the lowest-numbered closed door"),
        (["cabinet", "simulate", "--help"], "force N"),
        (["cabinet", "probe", "--help"], "--port URL"),
    ],
)
def test_help(command: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(command)
    assert caught.value.code == 0
    assert expected in capsys.readouterr().out
