"""Helpers for tests: ``precinct`` children, HTTP, reading the stores and metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.processes import Mosquitto, free_port, port_open, wait_until

__all__ = ["Child", "Mosquitto", "free_port", "port_open", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent


def run_precinct(*args: str) -> subprocess.CompletedProcess[str]:
    """One ``precinct`` command run to its end as a user runs it: exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.command_line", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


class Child:
    """One ``precinct`` subcommand as a real child process, its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, env: Mapping[str, str] | None = None):
        self.args = args
        self.log_path = log_path
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.command_line", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self, timeout: float = 15) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)  # noqa: S310 - tests talk to their own http server
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            body = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        body = error.read()
        status = error.code
    except (urllib.error.URLError, OSError):
        return 0, None  # nothing listening (yet)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def http_post(url: str, token: str | None, body: object) -> tuple[int, Any]:
    return http_request("POST", url, token, body)


def http_request(method: str, url: str, token: str | None, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - tests talk to their own http server
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def agent_last_seq(data_dir: Path) -> int:
    """The highest sequence number an agent handed out, read from its outbox file."""
    conn = sqlite3.connect(data_dir / "outbox.sqlite3")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return int(row[0]) - 1 if row else 0
    finally:
        conn.close()


def stored_seqs(db: Path, agent: str) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [
            int(r[0])
            for r in conn.execute("SELECT seq FROM events WHERE agent = ? ORDER BY seq", (agent,))
        ]
    finally:
        conn.close()


def metric_value(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == wanted:
            return float(value)
    return 0.0


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from every thread (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found
