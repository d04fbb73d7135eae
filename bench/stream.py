"""Stream benchmark: device readings -> ingest -> feed -> ``GET /api/v1/stream`` -> N clients.

Everything is a real process: a Mosquitto of the benchmark's own, one ``precinct central`` with
a fresh store, ``--vans`` GPS receiver simulators (``precinct gps simulate``, one fix a second,
each fix sent when its time comes) and one ``precinct agent`` reading them. Each fix becomes a
``van_position`` in the feed, in the transaction that stores it; the clients (one asyncio
process, this one: ``bench/stream_clients.py``) hold ``--clients`` streams of one centre token.

Two delays per delivery, both measured in this run:

- reading -> delivered: from the fix time (the device's reading time, carried in the event's
  body) to the client reading the event: what a dashboard user waits for;
- commit -> delivered: from the feed's ``at`` (taken in the committing transaction) to the
  client: what the stream itself adds, the baseline of the stream path.

Their difference is the ingest path (agent, broker, batch commit), the same whatever the number
of clients, so a stream that slows with many clients shows as commit -> delivered growing.
The central's memory per client is its resident set with every stream open and the run done,
less the resident set before any was opened, over the number of clients.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bench.processes import (
    BenchError,
    Child,
    Children,
    Mosquitto,
    bench_root,
    cpu_seconds,
    free_port,
    mosquitto_version,
    say,
    wait_for,
)
from bench.spread import Spread, figures_json
from bench.stream_clients import Measure, StreamClient, StreamClientError, run_clients
from central import van_positions
from devices.gps.track import DEMO_ROUTE, synthetic_track

TARGET_P99_MS: Final = 250.0
STATION: Final = "bench-station"
AGENT: Final = "bench-vans"
VAN_SPEED_MPS: Final = 10.0
START_SECONDS: Final = 60.0


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own central
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def rss_kib(pid: int) -> int | None:
    """Resident set of process ``pid`` in KiB (``VmRSS``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@contextmanager
def _broker(workdir: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir)
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        except (AssertionError, subprocess.TimeoutExpired, OSError):
            broker.kill()


def _create_token(db: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "central",
            "token",
            "create",
            "--db",
            str(db),
            "--role",
            "centre",
            "--name",
            "bench-stream",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"precinct central token create failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _pty_of(child: Child) -> str | None:
    lines = child.output().splitlines()
    return lines[0].strip() if lines and lines[0].startswith("/dev/") else None


def _van_positions(db: Path) -> dict[str, int]:
    """Van positions in the feed, per device."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {
            str(device): int(count)
            for device, count in conn.execute(
                "SELECT json_extract(body, '$.device'), count(*) FROM feed WHERE kind = ? "
                "GROUP BY 1",
                (van_positions.KIND,),
            )
        }
    except sqlite3.OperationalError:
        return {}  # the central has not created the store yet
    finally:
        conn.close()


@dataclass
class Result:
    clients: int
    vans: int
    events: int
    deliveries: int
    expected: int
    reading_to_delivered: Spread
    commit_to_delivered: Spread
    reading_to_commit: Spread
    # Per event: until the first of the clients had it (the poll and the wake-up), and until
    # the last had it (and the sending to every stream).
    commit_to_first: Spread
    commit_to_all: Spread
    events_per_s: float
    deliveries_per_s: float
    rss_before_kib: int
    rss_open_kib: int
    rss_end_kib: int
    kib_per_client: float
    cores: dict[str, float]
    seconds: float
    target_p99_ms: float = TARGET_P99_MS
    failures: list[str] = field(default_factory=list)


@dataclass
class _Cpu:
    at: float
    seconds: dict[str, float]

    @classmethod
    def take(cls, pids: Mapping[str, list[int]]) -> _Cpu:
        used: dict[str, float] = {}
        for name, group in pids.items():
            used[name] = sum(cpu_seconds(pid) or 0.0 for pid in group)
        return cls(time.monotonic(), used)

    def cores_since(self, earlier: _Cpu) -> dict[str, float]:
        wall = self.at - earlier.at
        if wall <= 0:
            return {}
        return {
            name: (self.seconds[name] - earlier.seconds.get(name, 0.0)) / wall
            for name in self.seconds
        }


def _children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass
class _Run:
    root: Path
    children: Children
    broker: Mosquitto
    clients: int
    events: int
    vans: int
    db: Path = field(init=False)
    http_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.db = self.root / "central.sqlite3"

    def start_central(self) -> Child:
        env = {
            # Every client holds a stream of the one bench token.
            "PRECINCT_STREAM_MAX_PER_TOKEN": str(self.clients),
            # Opening every stream at once is the benchmark's doing, not an attack.
            "PRECINCT_RATE_LIMIT_TOKEN_RATE": "0",
            "PRECINCT_REPAIR_INTERVAL": "0",
        }
        central = self.children.start(
            "central",
            "edge_agent.command_line",
            [
                "central",
                "--broker",
                self.broker.url,
                "--db",
                str(self.db),
                "--listen",
                f"127.0.0.1:{self.http_port}",
                "--log-level",
                "warning",
            ],
            env,
        )
        wait_for(
            lambda: _http_status(f"http://127.0.0.1:{self.http_port}/readyz") == 200,
            START_SECONDS,
            "the central service to be ready",
            [central],
        )
        return central

    def start_vans(self) -> tuple[list[Child], Child]:
        track = self.root / "van-track.nmea"
        track.write_bytes(
            synthetic_track(DEMO_ROUTE, VAN_SPEED_MPS, datetime(2026, 1, 1, tzinfo=UTC))
        )
        simulators = [
            self.children.start(
                f"gps-{n}",
                "edge_agent.command_line",
                ["gps", "simulate", "--track", str(track), "--loop"],
            )
            for n in range(1, self.vans + 1)
        ]
        wait_for(
            lambda: all(_pty_of(s) is not None for s in simulators),
            START_SECONDS,
            "the GPS simulators' ptys",
            simulators,
        )
        config = self.root / f"{AGENT}.toml"
        config.write_text(
            f'id = "{AGENT}"\nstation = "{STATION}"\n'
            + "".join(
                f'[[devices]]\nkind = "gps"\nid = "van-{n}-gps"\ntransport = "{_pty_of(s)}"\n'
                for n, s in enumerate(simulators, start=1)
            )
        )
        agent = self.children.start(
            AGENT,
            "edge_agent.command_line",
            [
                "agent",
                "--config",
                str(config),
                "--broker",
                self.broker.url,
                "--data-dir",
                str(self.root / AGENT),
                "--log-level",
                "warning",
            ],
        )
        return simulators, agent


def _measure(
    run: _Run, central: Child, token: str, pids: dict[str, list[int]]
) -> tuple[Measure, list[StreamClient], dict[str, int], _Cpu, _Cpu]:
    measure = Measure(van_positions.KIND, run.events)
    rss: dict[str, int] = {"before": rss_kib(central.pid) or 0}
    cpu: list[_Cpu] = []

    def opened() -> None:
        rss["open"] = rss_kib(central.pid) or 0
        cpu.append(_Cpu.take(pids))

    deadline = START_SECONDS + 3.0 * run.events / run.vans + 30.0
    say(f"opening {run.clients} streams; then {run.events} van positions")
    try:
        clients = asyncio.run(
            run_clients(
                "127.0.0.1",
                run.http_port,
                token,
                run.clients,
                measure,
                lambda body: str(body["time"]),
                opened,
                deadline,
            )
        )
    except TimeoutError:
        raise BenchError(
            f"not every client had {run.events} van positions within {deadline:.0f} s"
        ) from None
    except ExceptionGroup as group:  # the clients' task group: one or more streams broke
        raise BenchError("; ".join(str(e) for e in group.exceptions[:3])) from group
    cpu.append(_Cpu.take(pids))
    rss["end"] = rss_kib(central.pid) or 0
    return measure, clients, rss, cpu[0], cpu[-1]


def _result(
    run: _Run,
    measure: Measure,
    clients: list[StreamClient],
    rss: dict[str, int],
    cores: dict[str, float],
    seconds: float,
) -> Result:
    start = measure.start or 0
    wanted = sorted(i for i in measure.events if i > start)[: run.events]
    chosen = set(wanted)
    from_reading: list[float] = []
    from_commit: list[float] = []
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for client in clients:
        for event_id, received in client.received:
            if event_id not in chosen:
                continue
            published = measure.events[event_id]
            from_reading.append((received - published.reading) * 1000.0)
            from_commit.append((received - published.commit) * 1000.0)
            first[event_id] = min(first.get(event_id, received), received)
            last[event_id] = max(last.get(event_id, received), received)
    ingest = [(measure.events[i].commit - measure.events[i].reading) * 1000.0 for i in wanted]
    to_first = [(first[i] - measure.events[i].commit) * 1000.0 for i in wanted if i in first]
    to_all = [(last[i] - measure.events[i].commit) * 1000.0 for i in wanted if i in last]
    window = (
        max(last.values()) - min(measure.events[i].commit for i in wanted)
        if wanted and last
        else 0.0
    )
    deliveries = len(from_commit)
    before, after = rss["before"], rss["end"]
    result = Result(
        clients=run.clients,
        vans=run.vans,
        events=len(wanted),
        deliveries=deliveries,
        expected=run.events * run.clients,
        reading_to_delivered=Spread.of(from_reading),
        commit_to_delivered=Spread.of(from_commit),
        reading_to_commit=Spread.of(ingest),
        commit_to_first=Spread.of(to_first),
        commit_to_all=Spread.of(to_all),
        events_per_s=len(wanted) / window if window > 0 else 0.0,
        deliveries_per_s=deliveries / window if window > 0 else 0.0,
        rss_before_kib=before,
        rss_open_kib=rss["open"],
        rss_end_kib=after,
        kib_per_client=(after - before) / run.clients,
        cores=cores,
        seconds=seconds,
    )
    if deliveries != result.expected:
        result.failures.append(f"{deliveries} of {result.expected} deliveries")
    if not result.reading_to_delivered.p99 < TARGET_P99_MS:
        result.failures.append(
            f"reading -> delivered p99 {result.reading_to_delivered.p99:.0f} ms "
            f">= {TARGET_P99_MS:.0f} ms"
        )
    return result


def _bench(run: _Run) -> Result:
    started = time.monotonic()
    say(f"starting {mosquitto_version()}, the central service and {run.vans} simulated vans")
    token = _create_token(run.db)
    central = run.start_central()
    simulators, agent = run.start_vans()
    wait_for(
        lambda: len(_van_positions(run.db)) == run.vans,
        START_SECONDS,
        "a position of every van in the feed",
        [central, agent, *simulators],
    )
    pids = {
        "central": [central.pid],
        "central ingest store": _children_of(central.pid),
        "clients (this process)": [os.getpid()],
        "agent": [agent.pid],
        "mosquitto": [run.broker.process.pid] if run.broker.process is not None else [],
        "gps simulators": [s.pid for s in simulators],
    }
    measure, clients, rss, cpu_from, cpu_to = _measure(run, central, token, pids)
    if not central.alive():
        raise BenchError(f"the central service exited; its log ends:\n{central.tail()}")
    return _result(
        run, measure, clients, rss, cpu_to.cores_since(cpu_from), time.monotonic() - started
    )


def _ms(spread: Spread) -> str:
    return f"{spread.p50:7.1f} {spread.p99:7.1f} {spread.max:7.1f}"


def report(result: Result) -> str:
    """The human-readable table."""
    lines = [
        f"stream benchmark: {result.clients} clients (one centre token), {result.vans} vans at "
        f"1 fix/s, {result.events} van positions; {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}",
        f"  deliveries: {result.deliveries} of {result.expected}",
        "                                      p50     p99     max (ms)",
        f"  reading -> delivered (per client) {_ms(result.reading_to_delivered)}",
        f"  commit  -> delivered (per client) {_ms(result.commit_to_delivered)}",
        f"  commit  -> the first client has it{_ms(result.commit_to_first)}",
        f"  commit  -> every client has it    {_ms(result.commit_to_all)}",
        f"  reading -> commit (ingest)        {_ms(result.reading_to_commit)}",
        f"  delivered: {result.events_per_s:.1f} events/s, {result.deliveries_per_s:.0f} "
        f"deliveries/s",
        f"  central RSS: {result.rss_before_kib / 1024:.1f} MiB before, "
        f"{result.rss_open_kib / 1024:.1f} MiB with {result.clients} streams open, "
        f"{result.rss_end_kib / 1024:.1f} MiB at the end: "
        f"{result.kib_per_client:.1f} KiB per client",
        "  cores during the run: "
        + ", ".join(f"{name} {used:.2f}" for name, used in result.cores.items()),
        f"  target reading -> delivered p99 < {result.target_p99_ms:.0f} ms: "
        + ("met" if result.reading_to_delivered.p99 < result.target_p99_ms else "MISSED"),
        "result: "
        + ("all targets met" if not result.failures else "FAILED: " + "; ".join(result.failures))
        + f" (run took {result.seconds:.0f} s)",
    ]
    return "\n".join(lines)


def as_json(result: Result) -> str:
    """The machine-readable report: every figure of the table, delays in milliseconds."""
    return figures_json(result)


def run_stream_bench(
    clients: int, events: int, vans: int, workdir: Path | None, *, json_output: bool = False
) -> int:
    """Run the benchmark and print its report; 0 when every target is met, 1 otherwise."""
    if clients < 1 or events < 1 or vans < 1:
        print("precinct bench stream: need --clients, --events and --vans >= 1", file=sys.stderr)
        return 2
    with bench_root("stream", workdir) as (root, keep):
        logs = root / "logs"
        logs.mkdir()
        children = Children(logs)
        try:
            with _broker(root / "broker") as broker:
                try:
                    result = _bench(_Run(root, children, broker, clients, events, vans))
                finally:
                    children.stop_all()
        except (BenchError, StreamClientError, OSError, sqlite3.Error) as exc:
            print(f"stream benchmark failed: {exc}", flush=True)
            if keep:
                print(f"logs are in {logs}", flush=True)
            return 1
    print(as_json(result) if json_output else report(result), flush=True)
    return 0 if not result.failures else 1
