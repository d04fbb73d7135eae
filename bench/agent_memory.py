"""``precinct bench agent-memory``: an edge agent's resident memory in the lean install
(``precinct[agent]`` in a fresh venv) against the full one (this environment).

Both agents run the same command against one Mosquitto, with a synthetic source of ``rate``
readings per second, one after the other (so they do not share the two cores). Start-up ends
when the agent has published its first reading (its ``/metrics``); the resident set (VmRSS in
/proc) is read then and after ``seconds`` of load, with the peak (VmHWM).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.lean_install import make_venv
from bench.processes import BenchError, Mosquitto, bench_root, free_port, port_open, say, wait_for

_KIB_PER_MIB = 1024.0
_BYTES_PER_MIB = 1024.0 * 1024.0
_SITE_DIRS = "import sysconfig; p = sysconfig.get_paths(); print(p['purelib'], p['platlib'])"
STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class AgentMemory:
    """One agent's resident memory, MiB."""

    install: str
    site_packages_mib: float
    startup_mib: float
    loaded_mib: float
    peak_mib: float
    published: int


def _proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise BenchError(f"/proc/{pid}/status has no {field}")


def site_packages_mib(python: Path) -> float:
    """The size of ``python``'s installed packages (purelib and platlib), MiB."""
    done = subprocess.run(
        [str(python), "-c", _SITE_DIRS], capture_output=True, text=True, timeout=30, check=True
    )
    total = 0
    for directory in set(done.stdout.split()):
        for path in Path(directory).rglob("*"):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total / _BYTES_PER_MIB


def _published(port: int) -> int:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("precinct_agent_published_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _published_or_zero(port: int) -> int:
    if not port_open(port):
        return 0
    try:
        return _published(port)
    except OSError:
        return 0


def measure_agent(
    install: str, python: Path, broker: Mosquitto, root: Path, *, seconds: float, rate: float
) -> AgentMemory:
    """Run one agent under ``python`` and read its memory after start-up and after the window."""
    port = free_port()
    log_path = root / f"agent-{install}.log"
    command = [
        str(python),
        "-m",
        "edge_agent.command_line",
        "agent",
        "--id",
        f"mem-{install}",
        "--station",
        "s1",
        "--broker",
        broker.url,
        "--data-dir",
        str(root / f"agent-{install}"),
        "--synthetic",
        str(rate),
        "--metrics-listen",
        f"127.0.0.1:{port}",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def check_alive() -> None:
            if process.poll() is not None:
                raise BenchError(
                    f"the {install} agent exited ({process.returncode}); "
                    f"its log:\n{log_path.read_text(errors='replace')[-2000:]}"
                )

        def started() -> bool:
            check_alive()
            return _published_or_zero(port) > 0

        wait_for(started, STARTUP_TIMEOUT_SECONDS, f"the {install} agent's first publish")
        startup = _proc_kib(process.pid, "VmRSS")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            check_alive()
            time.sleep(min(1.0, left))  # the window is the measurement: it has a fixed length
        loaded = _proc_kib(process.pid, "VmRSS")
        peak = _proc_kib(process.pid, "VmHWM")
        published = _published(port)
    finally:
        process.kill()
        process.wait(10)
    return AgentMemory(
        install,
        site_packages_mib(python),
        startup / _KIB_PER_MIB,
        loaded / _KIB_PER_MIB,
        peak / _KIB_PER_MIB,
        published,
    )


def run_agent_memory_bench(
    *, seconds: float, rate: float, workdir: Path | None, json_output: bool
) -> int:
    with bench_root("agent-memory", workdir) as (root, _kept):
        say("building the lean venv (precinct[agent])")
        with tempfile.TemporaryDirectory(prefix="precinct-lean-", dir=root) as venv_dir:
            lean_python = make_venv(Path(venv_dir), "agent")
            broker = Mosquitto(root / "mosquitto", free_port())
            broker.start()
            try:
                figures = []
                for install, python in (("lean", lean_python), ("full", Path(sys.executable))):
                    say(f"{install}: {seconds:.0f} s at {rate:g} readings/s")
                    figures.append(
                        measure_agent(install, python, broker, root, seconds=seconds, rate=rate)
                    )
            finally:
                broker.kill()
    lean, full = figures
    if json_output:
        print(
            json.dumps({"seconds": seconds, "rate": rate, "agents": [asdict(f) for f in figures]})
        )
    else:
        print(report(lean, full, seconds=seconds, rate=rate))
    return 0


def report(lean: AgentMemory, full: AgentMemory, *, seconds: float, rate: float) -> str:
    lines = [
        f"agent resident memory (VmRSS), {rate:g} synthetic readings/s",
        f"{'install':<8}{'packages':>13}{'start-up':>12}{f'after {seconds:.0f} s':>14}"
        f"{'peak':>10}{'published':>11}",
    ]
    for figures in (lean, full):
        lines.append(
            f"{figures.install:<8}{figures.site_packages_mib:>9.0f} MiB"
            f"{figures.startup_mib:>8.1f} MiB{figures.loaded_mib:>10.1f} MiB"
            f"{figures.peak_mib:>6.1f} MiB{figures.published:>11}"
        )
    lines.append(
        f"lean/full: packages {lean.site_packages_mib / full.site_packages_mib:.2f}, "
        f"start-up {lean.startup_mib / full.startup_mib:.2f}, "
        f"after load {lean.loaded_mib / full.loaded_mib:.2f}"
    )
    return "\n".join(lines)
