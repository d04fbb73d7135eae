"""Connect attempts that never get a CONNACK: each one's socket is reset, not left behind.

The "broker" here is a real TCP server that accepts connections, reads the CONNECT and never
answers: what an agent sees during a blackhole that lets the handshake through, or a broker that
hangs. A socket left open keeps its CONNECT alive; one closed in order (FIN) still leaves the
CONNECT and the FIN queued in the kernel, retransmitted for minutes, so that at the heal the stale
CONNECT reaches the broker and takes over the client's session. An aborted attempt must therefore
end with a reset, which discards what is queued.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FAST_AGENT_ENV
from tests.support import Child, free_port, wait_until


@dataclass
class _Counts:
    accepted: int = 0
    reset: int = 0
    closed_in_order: int = 0
    received: list[bytes] = field(default_factory=list)

    @property
    def open(self) -> int:
        return self.accepted - self.reset - self.closed_in_order


class SilentServer:
    """Accepts TCP connections, reads whatever comes and never writes a byte."""

    def __init__(self) -> None:
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._counts = _Counts()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self._thread.start()

    def counts(self) -> _Counts:
        with self._lock:
            return _Counts(
                self._counts.accepted,
                self._counts.reset,
                self._counts.closed_in_order,
                list(self._counts.received),
            )

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    conn, _ = self._listener.accept()
                    conn.setblocking(False)
                    self._selector.register(conn, selectors.EVENT_READ)
                    with self._lock:
                        self._counts.accepted += 1
                    continue
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    outcome = "reset"
                else:
                    if data:
                        with self._lock:
                            self._counts.received.append(data)
                        continue
                    outcome = "fin"
                self._selector.unregister(sock)
                sock.close()
                with self._lock:
                    if outcome == "reset":
                        self._counts.reset += 1
                    else:
                        self._counts.closed_in_order += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


ATTEMPTS = 4


def _wait_for_aborted_attempts(server: SilentServer, child: Child, what: str) -> _Counts:
    """Wait until ATTEMPTS attempts have ended; at most the one in progress may stay open."""

    def settled() -> bool:
        assert child.alive(), child.output()
        counts = server.counts()
        return counts.accepted >= ATTEMPTS and counts.open <= 1

    try:
        wait_until(settled, 30, what)
    except AssertionError:
        counts = server.counts()
        raise AssertionError(
            f"{what}: {counts.accepted} connections accepted, {counts.open} still open, "
            f"{counts.closed_in_order} closed in order, {counts.reset} reset"
        ) from None
    return server.counts()


def test_agent_resets_every_connect_attempt_that_times_out(
    tmp_path: Path, silent_server: SilentServer
) -> None:
    agent = Child(
        [
            "agent",
            "--id",
            "a1",
            "--broker",
            f"mqtt://127.0.0.1:{silent_server.port}",
            "--data-dir",
            str(tmp_path / "agent"),
        ],
        tmp_path / "agent.log",
        {
            **FAST_AGENT_ENV,
            "PRECINCT_CONNECT_TIMEOUT": "0.5",
            # A keepalive far beyond the test: only the agent's own handling can close a socket.
            "PRECINCT_KEEPALIVE": "600",
        },
    )
    try:
        counts = _wait_for_aborted_attempts(silent_server, agent, "timed-out attempts to close")
    finally:
        agent.kill()
    assert all(b"MQTT" in data for data in counts.received)  # each attempt sent its CONNECT
    ended = counts.accepted - counts.open
    assert ended >= ATTEMPTS - 1
    assert counts.reset == ended, "an aborted attempt must reset its socket, not close in order"


def test_central_ingest_resets_a_connect_attempt_that_times_out(
    tmp_path: Path, silent_server: SilentServer
) -> None:
    central = Child(
        [
            "central",
            "--broker",
            f"mqtt://127.0.0.1:{silent_server.port}",
            "--db",
            str(tmp_path / "central.sqlite3"),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        tmp_path / "central.log",
        # paho waits for the CONNACK for one keepalive period.
        {"PRECINCT_KEEPALIVE": "1", "PRECINCT_REPAIR_INTERVAL": "0"},
    )
    try:
        counts = _wait_for_aborted_attempts(silent_server, central, "ingest attempts to close")
    finally:
        central.kill()
    ended = counts.accepted - counts.open
    assert counts.reset == ended, "an aborted attempt must reset its socket, not close in order"
