"""Real local processes for benchmarks and tests: a Mosquitto broker of their own, waiting.

The broker configuration here is what Precinct needs from Mosquitto (see deploy/mosquitto.conf),
on a free loopback port, with persistence in a directory of the caller's.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
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
log_dest file {dir}/mosquitto.log
"""


class Mosquitto:
    """A Mosquitto broker of the caller's own, persistent across restarts on the same port."""

    def __init__(self, workdir: Path, port: int | None = None, *,
                 max_queued: int = 1_000_000) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(MOSQUITTO_CONF.format(port=self.port, dir=workdir,
                                                   user=getpass.getuser(), max_queued=max_queued))

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


