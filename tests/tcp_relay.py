"""A TCP relay on loopback whose link can be cut and healed: one client's path to the broker.

Cutting resets every open connection and every new one until healed, as a van's mobile link
that drops: the client sees its connection lost and its reconnects refused, the broker sees the
client go (and publishes its will), while everyone else keeps their own connections.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.support import free_port

# SO_LINGER on, 0 seconds: close() sends a reset.
_RESET = struct.pack("ii", 1, 0)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    # A close alone does not end a connection another thread is blocked reading: shut it first.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpRelay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop, "relay-accept")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _start(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._open:
                _reset(sock)
            self._open.clear()

    def heal(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            self._start(self._pump, "relay-up", client, upstream)
            self._start(self._pump, "relay-down", upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, sink):
                    if sock in self._open:
                        self._open.remove(sock)
            _reset(source)
            _reset(sink)
