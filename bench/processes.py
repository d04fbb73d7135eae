"""Real local processes for benchmarks and tests: a Mosquitto broker of their own, waiting.

The broker configuration here is what Precinct needs from Mosquitto (see deploy/mosquitto.conf),
on a free loopback port, with persistence in a directory of the caller's.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

STOP_SECONDS = 15.0
POLL_SECONDS = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
# Run as root, mosquitto would drop to the "mosquitto" user and fail to write its persistence
# file into the test's directory, silently losing every session across a restart.
user {user}
allow_anonymous true
persistence true
persistence_location {dir}/
autosave_interval 1
# The defaults (1000 queued, 20 in flight) silently lose QoS 1 messages to a slow or absent
# subscriber and cap an ack-after-commit batch; the shipped deploy/mosquitto.conf raises them too.
max_queued_messages {max_queued}
max_queued_bytes 0
max_inflight_messages 1000
# $SYS every second (default 10): the centre's precinct_broker_* metrics on a test's time scale.
sys_interval 1
log_dest file {dir}/mosquitto.log
"""


class Mosquitto:
    """A Mosquitto broker of the caller's own, persistent across restarts on the same port."""

    def __init__(
        self, workdir: Path, port: int | None = None, *, max_queued: int = 1_000_000
    ) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            MOSQUITTO_CONF.format(
                port=self.port, dir=workdir, user=getpass.getuser(), max_queued=max_queued
            )
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        wait_until(lambda: not port_open(self.port), 10, "mosquitto to close its port")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class BenchError(Exception):
    """The benchmark could not run to the end (a process died, a wait timed out)."""


class Child:
    """``python -m MODULE ARGS`` with its output in a log file."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        logs: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        self._log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        try:
            if self.alive():
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0f s; killing it", self.name, timeout)
                self.process.kill()
                return self.process.wait(10)
        finally:
            self._log.close()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class Children:
    """Every process the benchmark started, stopped in reverse order however the run ends."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: list[Child] = []

    def start(
        self, name: str, module: str, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Child:
        child = Child(name, module, args, self.logs, env)
        self._running.append(child)
        return child

    def stop(self, *children: Child) -> None:
        for child in children:
            if child in self._running:
                self._running.remove(child)
                child.stop()

    def stop_all(self) -> None:
        while self._running:
            child = self._running.pop()
            try:
                child.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("could not stop %s: %s", child.name, exc)


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    watch: Sequence[Child] = (),
    interval: float = POLL_SECONDS,
) -> float:
    """Wait until ``predicate()``; returns the seconds it took. A watched child dying fails."""
    started = time.monotonic()
    while not predicate():
        for child in watch:
            if not child.alive():
                raise BenchError(
                    f"{child.name} exited ({child.process.returncode}) while "
                    f"waiting for {what}; its log ends:\n{child.tail()}"
                )
        if time.monotonic() - started > timeout:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


# /proc readings

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces; utime and stime are fields 14 and 15.
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread id of process ``pid``."""
    threads: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return threads
    for task in tasks:
        seconds = _stat_cpu(task / "stat")
        if seconds is not None:
            threads[int(task.name)] = seconds
    return threads


def mosquitto_version() -> str:
    try:
        done = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "Mosquitto"
    first = (done.stdout or done.stderr).splitlines()[:1]
    return first[0].replace("mosquitto version", "Mosquitto").strip() if first else "Mosquitto"


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (a CI timeout, a supervisor) unwinds like Ctrl-C, so every child is stopped.
    raise KeyboardInterrupt


@contextmanager
def bench_root(name: str, workdir: Path | None) -> Iterator[tuple[Path, bool]]:
    """The run's directory and whether it is kept: a temporary one, or a fresh one under
    ``workdir`` (a broker or a store left by an earlier run would mix in). Meanwhile SIGTERM
    unwinds like Ctrl-C."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupted) if main_thread else None
    try:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix=f"precinct-bench-{name}-") as temporary:
                yield Path(temporary), False
            return
        root = workdir / datetime.now(UTC).strftime(f"{name}-%Y%m%dT%H%M%SZ")
        root.mkdir(parents=True)
        say(f"files in {root}")
        yield root, True
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
