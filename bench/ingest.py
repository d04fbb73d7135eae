"""Ingest benchmark: agents -> Mosquitto -> one central process, against a bare paho subscriber.

Everything is a real process around one Mosquitto of the benchmark's own.

Throughput phase: the agents publish pre-filled outboxes while neither the central service nor
the bare subscriber is connected, so the broker queues every message for both persistent
sessions. Then the bare subscriber (paho, counting only) and the central service drain their
sessions one after the other, each without publishers competing for the cores. Central
throughput is read from the store (``received_at`` of the committed rows), the ceiling from the
subscriber's own receive times.

Latency phase: fresh agents publish live at a fixed total rate into the running central service;
reading -> commit latency is ``received_at - time`` of every stored row. ``received_at`` is taken
once per batch, just before its transaction begins, so the figures leave out the commit itself
(WAL with synchronous=NORMAL: no fsync, well under a millisecond for these batches).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ingest_subscriber import create_session
from bench.processes import (
    POLL_SECONDS,
    BenchError,
    Child,
    Children,
    Mosquitto,
    bench_root,
    cpu_seconds,
    free_port,
    mosquitto_version,
    say,
    thread_cpu,
    wait_for,
)
from edge_agent.outbox import Outbox
from edge_agent.synthetic import synthetic_readings
from edge_agent.wire import format_time
from monitoring.figures import nearest_rank

log = logging.getLogger(__name__)

CENTRAL_CLIENT_ID = "precinct-central"
BARE_CLIENT_ID = "precinct-bench-bare"
TARGET_MSG_S = 10_000.0
TARGET_RATIO = 0.6
LIVE_SECONDS = 10.0
PREFILL_CHUNK = 5_000
# A drain that makes no progress for this long is over, whatever the overall deadline says.
STALL_SECONDS = 60.0
# The central service is a batch consumer of the broker: switch gap repair off, so that no replay
# commands run during the measurement.
CENTRAL_ENV = {"PRECINCT_REPAIR_INTERVAL": "0"}


# ---------------------------------------------------------------------------------------------
# Child processes


@contextmanager
def _broker(workdir: Path, max_queued: int) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir, max_queued=max_queued)
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        except (AssertionError, subprocess.TimeoutExpired, OSError):
            broker.kill()


# ---------------------------------------------------------------------------------------------
# Observation: HTTP, the store, CPU time


def _http_get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 - our own central service on loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def _metric(text: str, name: str) -> float:
    """The first sample called ``name`` in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rpartition(" ")[2])
    return 0.0


def _store(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=10)
    conn.execute("PRAGMA query_only=1")
    return conn


def _in(names: Sequence[str]) -> str:
    return "(" + ", ".join("?" * len(names)) + ")"


def _stored_total(conn: sqlite3.Connection, agents: Sequence[str]) -> int:
    # The store counts inserted rows per agent and epoch in the same transaction: no table scan.
    row = conn.execute(
        f"SELECT coalesce(sum(received), 0) FROM agent_epochs WHERE agent IN "  # noqa: S608
        f"{_in(agents)}",
        list(agents),
    ).fetchone()
    return int(row[0])


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _child_pid(pid: int) -> int | None:
    """The central's ingest store process: its spawned child that is not the resource tracker."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                return int(child)
    return None


@dataclass
class _CpuSample:
    """CPU seconds of some processes (and the threads of one) at one moment.

    ``at`` is ``time.perf_counter()``, which on Linux is the system-wide monotonic clock, so it
    compares with the bare subscriber's receive times; ``wall`` compares with the store's.
    """

    at: float
    wall: float
    processes: dict[str, float | None]
    threads: dict[int, float] = field(default_factory=dict)

    @classmethod
    def take(cls, pids: Mapping[str, int | None], threads_of: int | None = None) -> _CpuSample:
        return cls(
            time.perf_counter(),
            time.time(),
            {name: None if pid is None else cpu_seconds(pid) for name, pid in pids.items()},
            thread_cpu(threads_of) if threads_of is not None else {},
        )


def _within(
    samples: Sequence[_CpuSample], start: float, end: float, wall: bool = False
) -> tuple[_CpuSample | None, _CpuSample | None]:
    """The first and the last sample taken between ``start`` and ``end``."""
    inside = [x for x in samples if start <= (x.wall if wall else x.at) <= end]
    return (inside[0], inside[-1]) if len(inside) >= 2 else (None, None)


def _cores(before: _CpuSample | None, after: _CpuSample | None) -> dict[str, float]:
    """Cores used per process between two samples."""
    if before is None or after is None or after.at <= before.at:
        return {}
    wall = after.at - before.at
    used: dict[str, float] = {}
    for name, start in before.processes.items():
        end = after.processes.get(name)
        if start is not None and end is not None:
            used[name] = (end - start) / wall
    return used


def _thread_cores(before: _CpuSample | None, after: _CpuSample | None) -> list[float]:
    if before is None or after is None or after.at <= before.at:
        return []
    wall = after.at - before.at
    shares = [(end - before.threads.get(tid, 0.0)) / wall for tid, end in after.threads.items()]
    return sorted((s for s in shares if s >= 0.005), reverse=True)


def _format_cores(used: Mapping[str, float]) -> str:
    return (
        ", ".join(f"{name} {cores:.2f}" for name, cores in used.items())
        or "not sampled (window too short)"
    )


# ---------------------------------------------------------------------------------------------
# The phases


@dataclass
class _Setup:
    root: Path
    children: Children
    broker: Mosquitto
    db: Path
    http_port: int
    agents: int
    messages: int
    rate: float

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def broker_pid(self) -> int | None:
        return self.broker.process.pid if self.broker.process is not None else None

    def start_central(self, name: str) -> Child:
        return self.children.start(
            name,
            "edge_agent.command_line",
            [
                "central",
                "--broker",
                self.broker.url,
                "--db",
                str(self.db),
                "--listen",
                f"127.0.0.1:{self.http_port}",
                "--client-id",
                CENTRAL_CLIENT_ID,
                "--log-level",
                "warning",
            ],
            CENTRAL_ENV,
        )

    def wait_ready(self, central: Child) -> None:
        wait_for(
            lambda: _http_get(self.base + "/readyz")[0] == 200,
            60,
            "the central service to be ready",
            [central],
        )

    def metrics(self) -> str:
        status, text = _http_get(self.base + "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics answered {status}")
        return text

    def start_agents(
        self, ids: Sequence[str], extra: Sequence[str], env: Mapping[str, str]
    ) -> list[Child]:
        return [
            self.children.start(
                agent_id,
                "edge_agent.command_line",
                [
                    "agent",
                    "--id",
                    agent_id,
                    "--broker",
                    self.broker.url,
                    "--data-dir",
                    str(self.agent_dir(agent_id)),
                    "--log-level",
                    "warning",
                    *extra,
                ],
                env,
            )
            for agent_id in ids
        ]

    def agent_dir(self, agent_id: str) -> Path:
        return self.root / "agents" / agent_id


def _outbox_unsent(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE sent = 0").fetchone()[0])
    finally:
        conn.close()


def _outbox_last_seq(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return int(row[0]) - 1 if row else 0
    finally:
        conn.close()


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _create_sessions(setup: _Setup) -> None:
    """Subscribe both consumers once, so that the broker queues for them while they are away."""
    central = setup.start_central("central-subscribe")
    setup.wait_ready(central)
    setup.children.stop(central)
    create_session(setup.broker.url, BARE_CLIENT_ID)


def _prefill(setup: _Setup, ids: Sequence[str]) -> float:
    """Fill the agents' outboxes, let real agents publish them all; returns publish seconds."""
    now = datetime.now(UTC)
    for agent_id, count in zip(ids, _shares(setup.messages, setup.agents), strict=True):
        data_dir = setup.agent_dir(agent_id)
        data_dir.mkdir(parents=True)
        box = Outbox(
            data_dir / "outbox.sqlite3", agent_id, max_rows=setup.messages + 1000, keep_sent=0
        )
        try:
            for start in range(0, count, PREFILL_CHUNK):
                box.put(synthetic_readings(start, min(PREFILL_CHUNK, count - start), 0, now))
        finally:
            box.close()
    env = {
        "PRECINCT_BACKLOG_RATE": "1000000000",
        "PRECINCT_PUBLISH_WINDOW": "500",
        "PRECINCT_OUTBOX_MAX": str(setup.messages + 1000),
    }
    started = time.perf_counter()
    agents = setup.start_agents(ids, [], env)
    outboxes = [setup.agent_dir(agent_id) / "outbox.sqlite3" for agent_id in ids]
    wait_for(
        lambda: all(_outbox_unsent(path) == 0 for path in outboxes),
        max(120.0, setup.messages / 500),
        "the agents to publish their outboxes",
        agents,
        interval=0.5,
    )
    seconds = time.perf_counter() - started
    setup.children.stop(*agents)
    return seconds


@dataclass
class _Bare:
    count: int
    rate: float
    cpu_cores: float
    broker_cores: dict[str, float]
    problem: str | None


def _bare_ceiling(setup: _Setup) -> _Bare:
    timeout = max(300.0, setup.messages / 500)
    subscriber = setup.children.start(
        "bare-subscriber",
        "bench.ingest_subscriber",
        [
            "--broker",
            setup.broker.url,
            "--client-id",
            BARE_CLIENT_ID,
            "--expect",
            str(setup.messages),
            "--timeout",
            str(timeout),
            "--idle",
            str(STALL_SECONDS),
        ],
    )
    pids = {"mosquitto": setup.broker_pid}
    samples = [_CpuSample.take(pids)]
    deadline = time.monotonic() + timeout + 30
    while subscriber.alive():
        if time.monotonic() > deadline:
            raise BenchError("the bare subscriber did not finish")
        time.sleep(POLL_SECONDS)
        samples.append(_CpuSample.take(pids))
    setup.children.stop(subscriber)
    result: dict[str, Any] | None = None
    for line in reversed(subscriber.log_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    if result is None:
        raise BenchError(
            f"the bare subscriber printed no result; its log ends:\n{subscriber.tail()}"
        )
    count = int(result["count"])
    first, last = float(result["first"]), float(result["last"])
    window = last - first
    rate = (count - 1) / window if count > 1 and window > 0 else 0.0
    cpu_cores = float(result["cpu_seconds"]) / window if window > 0 else 0.0
    return _Bare(
        count, rate, cpu_cores, _cores(*_within(samples, first, last)), result.get("problem")
    )


@dataclass
class _Drain:
    stored: int
    rate: float
    seconds: float
    batches: int
    duplicates_received: int
    duplicates_stored: int
    rejected: int
    per_agent_ok: bool
    per_agent_problems: list[str]
    cores: dict[str, float]
    threads: list[float]


def _central_drain(setup: _Setup, ids: Sequence[str]) -> tuple[Child, _Drain]:
    central = setup.start_central("central")
    conn = _store(setup.db)
    try:
        expected = setup.messages
        deadline = time.monotonic() + max(300.0, expected / 500)
        last_progress = time.monotonic()
        stored = 0
        pids: dict[str, int | None] = {"central": central.pid, "mosquitto": setup.broker_pid}
        samples: list[_CpuSample] = []
        while stored < expected:
            # The central's store process starts a moment after the central itself.
            pids["central store process"] = _child_pid(central.pid)
            if not central.alive():
                raise BenchError(
                    f"the central service exited ({central.process.returncode}); "
                    f"its log ends:\n{central.tail()}"
                )
            now = time.monotonic()
            try:
                current = _stored_total(conn, ids)
            except sqlite3.OperationalError:
                current = 0  # the schema is there from the first run; a lock is transient
            if current > stored:
                last_progress = now
                stored = current
            samples.append(_CpuSample.take(pids, central.pid))
            if now - last_progress > STALL_SECONDS or now > deadline:
                say(f"drain stalled at {stored} of {expected} messages")
                break
            time.sleep(POLL_SECONDS)
        wait_for(
            lambda: _http_get(setup.base + "/readyz")[0] == 200,
            60,
            "the central service to answer",
            [central],
        )
        metrics = setup.metrics()
        where, names = _in(ids), list(ids)
        count, low, high, batches = conn.execute(
            f"SELECT count(*), min(received_at), max(received_at), count(DISTINCT received_at) "  # noqa: S608
            f"FROM events WHERE agent IN {where}",
            names,
        ).fetchone()
        rate = seconds = 0.0
        first = last = None
        if count:
            # received_at is stamped once per batch, so the span from the first batch to the last
            # covers every message except those of the last batch.
            last_batch = conn.execute(
                f"SELECT count(*) FROM events WHERE agent IN {where} AND received_at = ?",  # noqa: S608
                [*names, high],
            ).fetchone()[0]
            seconds = (_parse_time(high) - _parse_time(low)).total_seconds()
            rate = (count - last_batch) / seconds if seconds > 0 else 0.0
            first, last = _within(
                samples, _parse_time(low).timestamp(), _parse_time(high).timestamp(), wall=True
            )
        stored_dups = conn.execute(
            f"SELECT count(*) FROM (SELECT agent, seq FROM events WHERE agent IN {where} "  # noqa: S608
            f"GROUP BY agent, seq HAVING count(*) > 1)",
            names,
        ).fetchone()[0]
        rejected = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        per_agent = {
            agent: (n, lo, hi)
            for agent, n, lo, hi in conn.execute(
                f"SELECT agent, count(*), min(seq), max(seq) FROM events WHERE agent IN {where} "  # noqa: S608
                f"GROUP BY agent",
                names,
            )
        }
        problems = []
        for agent_id, share in zip(ids, _shares(expected, setup.agents), strict=True):
            n, lo, hi = per_agent.get(agent_id, (0, None, None))
            if (n, lo, hi) != (share, 1, share):
                problems.append(f"{agent_id}: {n} rows, seq {lo}..{hi}, expected 1..{share}")
    finally:
        conn.close()
    drain = _Drain(
        stored=int(count),
        rate=rate,
        seconds=seconds,
        batches=int(batches),
        duplicates_received=int(_metric(metrics, "precinct_ingest_duplicates_total")),
        duplicates_stored=int(stored_dups),
        rejected=int(rejected),
        per_agent_ok=not problems,
        per_agent_problems=problems,
        cores=_cores(first, last),
        threads=_thread_cores(first, last),
    )
    return central, drain


@dataclass
class _Live:
    offered: float
    window: float
    measured: int
    expected: int
    stored: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    duplicates_received: int
    duplicates_stored: int
    problems: list[str]
    cores: dict[str, float]


def _live(setup: _Setup, central: Child, ids: Sequence[str]) -> _Live:
    before = setup.metrics()
    per_agent_rate = setup.rate / setup.agents
    agents = setup.start_agents(ids, ["--synthetic", repr(per_agent_rate)], {})
    conn = _store(setup.db)
    try:
        where, names = _in(ids), list(ids)

        def all_online() -> bool:
            row = conn.execute(
                f"SELECT count(*) FROM agents WHERE online = 1 AND agent IN "  # noqa: S608
                f"{where}",
                names,
            ).fetchone()
            return int(row[0]) == len(ids)

        wait_for(all_online, 60, "the live agents to come online", [central, *agents])
        # Readings stamped before every agent was connected waited for the connection, not for
        # ingest: the window starts once all are online.
        window_from = datetime.now(UTC)
        pids: dict[str, int | None] = {"central": central.pid, "mosquitto": setup.broker_pid}
        pids.update({agent.name: agent.pid for agent in agents})
        cpu_from = _CpuSample.take(pids)
        window_end = time.monotonic() + LIVE_SECONDS
        wait_for(
            lambda: time.monotonic() >= window_end,
            LIVE_SECONDS + 5,
            "the live window",
            [central, *agents],
        )
        cpu_to = _CpuSample.take(pids)
        window_to = datetime.now(UTC)
        setup.children.stop(*agents)
        last_seqs = {
            agent_id: _outbox_last_seq(setup.agent_dir(agent_id) / "outbox.sqlite3")
            for agent_id in ids
        }
        expected = sum(last_seqs.values())
        try:
            wait_for(
                lambda: _stored_total(conn, ids) >= expected,
                60,
                "the live messages to be stored",
                [central],
            )
        except BenchError as exc:
            say(str(exc))
        per_agent = {
            agent: (n, hi)
            for agent, n, hi in conn.execute(
                f"SELECT agent, count(*), max(seq) FROM events WHERE agent IN {where} "  # noqa: S608
                f"GROUP BY agent",
                names,
            )
        }
        problems = []
        stored = 0
        for agent_id, last_seq in last_seqs.items():
            n, hi = per_agent.get(agent_id, (0, None))
            stored += n
            if n != last_seq or (last_seq and hi != last_seq):
                problems.append(f"{agent_id}: {n} rows up to seq {hi}, published 1..{last_seq}")
        stored_dups = conn.execute(
            f"SELECT count(*) FROM (SELECT agent, seq FROM events WHERE agent IN {where} "  # noqa: S608
            f"GROUP BY agent, seq HAVING count(*) > 1)",
            names,
        ).fetchone()[0]
        latencies = sorted(
            (_parse_time(received) - _parse_time(stamped)).total_seconds() * 1000.0
            for stamped, received in conn.execute(
                f"SELECT time, received_at FROM events WHERE agent IN {where} "  # noqa: S608
                f"AND time >= ? AND time < ?",
                [*names, format_time(window_from), format_time(window_to)],
            )
        )
    finally:
        conn.close()
    after = setup.metrics()
    cores = _cores(cpu_from, cpu_to)
    agent_cores = [cores.pop(agent_id) for agent_id in ids if agent_id in cores]
    if agent_cores:
        cores["agents"] = sum(agent_cores)
    window = (window_to - window_from).total_seconds()
    duplicates = _metric(after, "precinct_ingest_duplicates_total") - _metric(
        before, "precinct_ingest_duplicates_total"
    )
    return _Live(
        offered=len(latencies) / window if window > 0 else 0.0,
        window=window,
        measured=len(latencies),
        expected=expected,
        stored=stored,
        p50_ms=nearest_rank(latencies, 0.50) if latencies else math.nan,
        p99_ms=nearest_rank(latencies, 0.99) if latencies else math.nan,
        max_ms=latencies[-1] if latencies else math.nan,
        duplicates_received=int(duplicates),
        duplicates_stored=int(stored_dups),
        problems=problems,
        cores=cores,
    )


# ---------------------------------------------------------------------------------------------
# The whole run


def _run(setup: _Setup) -> int:
    started = time.perf_counter()
    drain_ids = [f"bench-drain-{i}" for i in range(1, setup.agents + 1)]
    live_ids = [f"bench-live-{i}" for i in range(1, setup.agents + 1)]
    children = setup.children

    say("creating the persistent sessions of the central service and the bare subscriber")
    _create_sessions(setup)
    say(
        f"pre-filling {setup.agents} outboxes with {setup.messages} readings and publishing "
        f"them through the broker"
    )
    publish_seconds = _prefill(setup, drain_ids)
    say(f"published in {publish_seconds:.1f} s; draining the bare subscriber's session")
    bare = _bare_ceiling(setup)
    say(
        f"bare subscriber: {bare.count} messages, {bare.rate:.0f} msg/s; draining the central "
        f"service's session"
    )
    central, drain = _central_drain(setup, drain_ids)
    say(
        f"central: {drain.stored} stored, {drain.rate:.0f} msg/s; live phase for "
        f"{LIVE_SECONDS:.0f} s"
    )
    live = _live(setup, central, live_ids)
    children.stop(central)
    elapsed = time.perf_counter() - started

    ratio = drain.rate / bare.rate if bare.rate > 0 else 0.0
    drain_loss = setup.messages - drain.stored
    live_loss = live.expected - live.stored
    failures: list[str] = []
    if drain.rate < TARGET_MSG_S:
        failures.append(f"central throughput {drain.rate:.0f} < {TARGET_MSG_S:.0f} msg/s")
    if ratio < TARGET_RATIO:
        failures.append(f"ratio {ratio:.2f} < {TARGET_RATIO}")
    if bare.count != setup.messages:
        failures.append(
            f"bare subscriber received {bare.count} of {setup.messages} ({bare.problem})"
        )
    if drain_loss or not drain.per_agent_ok:
        failures.append(f"throughput phase lost {drain_loss} messages")
    if live_loss or live.problems:
        failures.append(f"live phase lost {live_loss} messages")
    if drain.duplicates_stored or live.duplicates_stored:
        failures.append("duplicates stored")
    if drain.rejected:
        failures.append(f"{drain.rejected} messages quarantined")

    drain_cores = _format_cores(drain.cores)
    if drain.threads:
        threads = ", ".join(f"{share:.2f}" for share in drain.threads[:3])
        drain_cores += f" (busiest central threads {threads})"
    lines = [
        f"ingest benchmark: {setup.agents} agents, {setup.messages} messages, "
        f"{mosquitto_version()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        f"  pre-fill: {setup.messages} readings published by the agents in "
        f"{publish_seconds:.1f} s and queued for both sessions",
        f"bare paho subscriber (counts only):          {bare.rate:7.0f} msg/s",
        f"  {bare.count} received; cores: subscriber {bare.cpu_cores:.2f}, "
        + (_format_cores(bare.broker_cores) if bare.broker_cores else "mosquitto not sampled"),
        f"central (validate, store, ack after commit): {drain.rate:7.0f} msg/s  "
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO})",
        f"  {drain.stored} rows committed in {drain.seconds:.1f} s, {drain.batches} commits "
        f"({drain.stored / max(1, drain.batches):.0f} msg/commit); "
        f"cores: {drain_cores}",
        f"target >= {TARGET_MSG_S:.0f} msg/s: "
        + ("met" if drain.rate >= TARGET_MSG_S else "MISSED"),
        f"loss {drain_loss}, duplicates {drain.duplicates_stored} (stored), duplicates received "
        f"{drain.duplicates_received} (redeliveries, harmless), quarantined {drain.rejected}, "
        f"seqs 1..N per agent: " + ("complete" if drain.per_agent_ok else "INCOMPLETE"),
    ]
    lines.extend(f"  {problem}" for problem in drain.per_agent_problems)
    lines += [
        f"live phase: {setup.rate:.0f} msg/s offered for {live.window:.0f} s by {setup.agents} "
        f"agents: latency p50 {live.p50_ms:.1f} ms, p99 {live.p99_ms:.1f} ms; loss {live_loss}, "
        f"duplicates {live.duplicates_stored}",
        f"  {live.measured} readings in the window ({live.offered:.0f} msg/s), max "
        f"{live.max_ms:.1f} ms, duplicates received {live.duplicates_received}; "
        f"cores: {_format_cores(live.cores)}",
    ]
    lines.extend(f"  {problem}" for problem in live.problems)
    verdict = "all targets met" if not failures else "FAILED: " + "; ".join(failures)
    lines.append(f"result: {verdict} (run took {elapsed:.0f} s)")
    print("\n".join(lines), flush=True)
    return 0 if not failures else 1


def _run_in(root: Path, agents: int, messages: int, rate: float, *, keep: bool) -> int:
    logs = root / "logs"
    logs.mkdir()
    children = Children(logs)
    try:
        # Each of the two sessions holds every message until drained.
        with _broker(root / "broker", max_queued=2 * messages + 100_000) as broker:
            try:
                setup = _Setup(
                    root,
                    children,
                    broker,
                    root / "central.sqlite3",
                    free_port(),
                    agents,
                    messages,
                    rate,
                )
                return _run(setup)
            finally:
                children.stop_all()
    except (BenchError, AssertionError, OSError, sqlite3.Error) as exc:
        print(f"ingest benchmark failed: {exc}", flush=True)
        if keep:
            print(f"logs are in {logs}", flush=True)
        return 1


def run_ingest_bench(agents: int, messages: int, rate: float, workdir: Path | None) -> int:
    """Run the benchmark, print its report; 0 when every target is met, 1 otherwise."""
    if agents < 1 or messages < agents or rate <= 0:
        print(
            "precinct bench ingest: need --agents >= 1, --messages >= --agents, --rate > 0",
            file=sys.stderr,
        )
        return 2
    with bench_root("ingest", workdir) as (root, keep):
        return _run_in(root, agents, messages, rate, keep=keep)
