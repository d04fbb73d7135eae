"""Wall benchmark: a forced cabinet door -> agent -> broker -> central -> alarm -> stream -> the
wall page in Chromium, the alarm's row in the DOM.

Everything is a real process: a Mosquitto of the benchmark's own, one ``precinct central`` with a
fresh store, the simulated lock board (``precinct cabinet simulate`` on a pty, driven through its
stdin) read by one ``precinct agent``, and Debian's Chromium driven by Playwright, signed in
through the sign-in form as a centre user and showing ``/wall``. A MutationObserver in the page
records ``Date.now()`` the first time each alarm's row (``li[data-alarm-id]``) is in the list.

The board forces a door, the row appears, the board closes the door (``door_closed`` clears the
alarm and its row leaves), ``--alarms`` times over the board's slots. Two delays per alarm, both
from this run:

- reading -> visible: from the alarm's ``raised_at`` (the time of the agent's reading of the
  forced door) to the row in the page: what the duty room waits for;
- commit -> visible: from the alarm's ``derived_at`` (its commit in the central) to the row:
  the stream, the page's reload of the alarms and its drawing, the baseline of the page path.

Their difference is the ingest and the alarm deriver (reading -> commit, also reported).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bench.processes import (
    BenchError,
    Children,
    Mosquitto,
    bench_root,
    free_port,
    mosquitto_version,
    say,
    wait_for,
)
from bench.spread import Spread, figures_json

TARGET_P99_MS: Final = 500.0
AGENT: Final = "bench-files"
CABINET: Final = "cab-1"
SLOTS: Final = 4
USER: Final = "bench.wall"
START_SECONDS: Final = 60.0
STEP_SECONDS: Final = 15.0
CHROMIUM: Final = os.environ.get("PRECINCT_CHROMIUM", "/usr/bin/chromium")
# The closed network's flags, as the page tests use them (tests/browser.py says why each).
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
)
# Installed in the page once it is live: the first time each alarm's row is in the list.
_OBSERVER_JS: Final = """() => {
  window.__wallSeen = {};
  const list = document.getElementById("alarms-list");
  const note = () => {
    const now = Date.now();
    for (const row of list.querySelectorAll("li[data-alarm-id]")) {
      if (!(row.dataset.alarmId in window.__wallSeen)) window.__wallSeen[row.dataset.alarmId] = now;
    }
  };
  new MutationObserver(note).observe(list, { childList: true });
  note();
}"""


@dataclass
class Result:
    alarms: int
    seen: int
    reading_to_visible: Spread
    commit_to_visible: Spread
    reading_to_commit: Spread
    seconds: float
    target_p99_ms: float = TARGET_P99_MS
    failures: list[str] = field(default_factory=list)


def _ms(start: str, end_ms: float) -> float:
    return end_ms - datetime.fromisoformat(start).timestamp() * 1000.0


class _Board:
    """``precinct cabinet simulate`` on a pty, driven through its stdin."""

    def __init__(self, logs: Path) -> None:
        self._log = (logs / "cabinet.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_agent.command_line",
                "cabinet",
                "simulate",
                "--slots",
                str(SLOTS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = self.process.stdout.readline().strip()
        if not self.port.startswith("/dev/"):
            self.stop()
            raise BenchError(f"the cabinet simulator gave no pty: {self.port!r}")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.communicate(timeout=10)
        finally:
            self._log.close()


@contextmanager
def _board(logs: Path) -> Any:
    board = _Board(logs)
    try:
        yield board
    finally:
        board.stop()


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own central
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def _create_user(db: Path, root: Path) -> str:
    password = os.urandom(12).hex()
    secret = root / "password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "central",
            "user",
            "create",
            "--db",
            str(db),
            "--name",
            USER,
            "--role",
            "centre",
            "--password-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"precinct central user create failed: {done.stderr.strip()}")
    return password


def _alarm_times(db: Path) -> dict[str, tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {
            str(alarm): (str(raised), str(derived))
            for alarm, raised, derived in conn.execute(
                "SELECT id, raised_at, derived_at FROM alarms WHERE kind = 'door_forced'"
            )
        }
    finally:
        conn.close()


def _bench(root: Path, children: Children, broker: Mosquitto, alarms: int) -> Result:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    logs = root / "logs"
    db = root / "central.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    say(f"starting {mosquitto_version()}, the central service, a simulated cabinet and Chromium")
    central = children.start(
        "central",
        "edge_agent.command_line",
        [
            "central",
            "--broker",
            broker.url,
            "--db",
            str(db),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        {"PRECINCT_REPAIR_INTERVAL": "0"},
    )
    wait_for(lambda: _status(f"{base}/readyz") == 200, START_SECONDS, "the central", [central])
    password = _create_user(db, root)
    with _board(logs) as board:
        config = root / f"{AGENT}.toml"
        config.write_text(
            f'id = "{AGENT}"\nstation = "bench-station"\n[[devices]]\nkind = "cabinet"\n'
            f'id = "{CABINET}"\ntransport = "{board.port}"\n'
            f'state_dir = "{root / "cabinets"}"\npoll_interval = 0.1\n'
        )
        agent = children.start(
            AGENT,
            "edge_agent.command_line",
            [
                "agent",
                "--config",
                str(config),
                "--broker",
                broker.url,
                "--data-dir",
                str(root / AGENT),
                "--log-level",
                "warning",
            ],
        )
        watch = [central, agent]
        if not Path(CHROMIUM).is_file():
            raise BenchError(f"{CHROMIUM} is missing (apt-get install chromium)")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
                )
                try:
                    page = browser.new_page(viewport={"width": 1920, "height": 1080})
                    page.set_default_timeout(STEP_SECONDS * 1000)
                    page.goto(f"{base}/signin")
                    page.fill("#name", USER)
                    page.fill("#password", password)
                    page.click("button[type=submit]")
                    page.wait_for_url(f"{base}/wall")
                    page.wait_for_function(
                        "document.getElementById('live-state').dataset.state === 'live'"
                    )
                    page.evaluate(_OBSERVER_JS)
                    say(f"the wall is live; forcing and closing a door {alarms} times")
                    for n in range(alarms):
                        slot = n % SLOTS + 1
                        board.send(f"force {slot}")
                        page.wait_for_function(
                            "n => Object.keys(window.__wallSeen).length >= n", arg=n + 1
                        )
                        board.send(f"close {slot}")
                        # Cleared: the row leaves; the next force on any slot is a new alarm.
                        page.wait_for_selector("#alarms-list li[data-alarm-id]", state="detached")
                        for child in watch:
                            if not child.alive():
                                raise BenchError(f"{child.name} exited: {child.tail()}")
                    seen: dict[str, float] = page.evaluate("() => window.__wallSeen")
                finally:
                    browser.close()
        except PlaywrightError as exc:
            raise BenchError(f"the browser: {exc}") from None
    times = _alarm_times(db)
    from_reading = [_ms(times[a][0], at) for a, at in seen.items() if a in times]
    from_commit = [_ms(times[a][1], at) for a, at in seen.items() if a in times]
    ingest = [
        (datetime.fromisoformat(d) - datetime.fromisoformat(r)).total_seconds() * 1000.0
        for a, (r, d) in times.items()
        if a in seen
    ]
    result = Result(
        alarms=alarms,
        seen=len(from_reading),
        reading_to_visible=Spread.of(from_reading),
        commit_to_visible=Spread.of(from_commit),
        reading_to_commit=Spread.of(ingest),
        seconds=time.monotonic() - started,
    )
    if result.seen != alarms:
        result.failures.append(f"{result.seen} of {alarms} alarms seen on the wall")
    if not result.reading_to_visible.p99 < TARGET_P99_MS:
        result.failures.append(
            f"reading -> visible p99 {result.reading_to_visible.p99:.0f} ms "
            f">= {TARGET_P99_MS:.0f} ms"
        )
    return result


def _row(spread: Spread) -> str:
    return f"{spread.p50:7.1f} {spread.p99:7.1f} {spread.max:7.1f}"


def report(result: Result) -> str:
    """The human-readable table."""
    failures = result.failures
    return "\n".join(
        [
            f"wall benchmark: {result.alarms} forced cabinet doors -> the wall in Chromium; "
            f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
            f"  alarms seen on the wall: {result.seen} of {result.alarms}",
            "                                      p50     p99     max (ms)",
            f"  reading -> visible on the wall    {_row(result.reading_to_visible)}",
            f"  commit  -> visible on the wall    {_row(result.commit_to_visible)}",
            f"  reading -> commit (ingest, alarm) {_row(result.reading_to_commit)}",
            f"  target reading -> visible p99 < {result.target_p99_ms:.0f} ms: "
            + ("met" if result.reading_to_visible.p99 < result.target_p99_ms else "MISSED"),
            "result: "
            + ("all targets met" if not result.failures else "FAILED: " + "; ".join(failures))
            + f" (run took {result.seconds:.0f} s)",
        ]
    )


def as_json(result: Result) -> str:
    """The machine-readable report: every figure of the table, delays in milliseconds."""
    return figures_json(result)


def run_wall_bench(alarms: int, workdir: Path | None, *, json_output: bool = False) -> int:
    """Run the benchmark and print its report; 0 when the target is met, 1 otherwise."""
    if alarms < 1:
        print("precinct bench wall: need --alarms >= 1", file=sys.stderr)
        return 2
    with bench_root("wall", workdir) as (root, keep):
        logs = root / "logs"
        logs.mkdir()
        children = Children(logs)
        broker = Mosquitto(root / "broker")
        try:
            broker.start()
            try:
                result = _bench(root, children, broker, alarms)
            finally:
                children.stop_all()
                broker.kill()
        except (BenchError, AssertionError, OSError, sqlite3.Error) as exc:
            print(f"wall benchmark failed: {exc}", flush=True)
            if keep:
                print(f"logs are in {logs}", flush=True)
            return 1
    print(as_json(result) if json_output else report(result), flush=True)
    return 0 if not result.failures else 1
