"""Device benchmark: codec throughput, and an edge agent's CPU and memory under device load.

``precinct bench devices`` measures two things.

Codecs: frames decoded per CPU second for each device codec (SCP/1, the wristband
characteristics, NMEA, gpsd JSON) and, for context, the cost of storing a reading in the outbox
(:mod:`bench.devices_codecs`).

The agent under load: one real agent (``precinct agent``) reads 4 cabinets, 50 wristbands and
1 GPS receiver at their normal rates, through the same simulators the demo uses, all real
processes around a Mosquitto of the benchmark's own:

- 4 SCP/1 lock boards (``precinct cabinet simulate``, 8 stocked slots), each on its own pty as 4
  cabinets on 4 serial ports would be, polled at the default ``poll_interval`` of 1 s (events,
  slot status; RFID inventory every 30 s);
- 50 bands (``precinct wristband simulate --bands 50``): a heart rate notification every second
  and an advertisement every 500 ms each, reached through one emulated HCI controller over TCP,
  so the agent has one wristband fleet device of 50 bands. With emulated bands the agent runs a
  bumble host stack where a real station would use BlueZ, outside the process;
- 1 GPS (``precinct gps simulate --loop``) replaying the demo route at 1 Hz with GGA, GSA, three
  GSV and RMC per epoch, as a common receiver sends.

The same agent with no device at all runs beside it over the same window: that is the baseline
of the ratios. A paho subscriber in this process takes every reading from the broker (so
Mosquitto queues nothing; no central service is needed for an agent to publish) and says when
all 50 bands have delivered a heart rate, which ends the warm-up. Over the window the agents'
CPU time (utime + stime) and memory (VmRSS, VmHWM) are sampled from /proc every second, and
their ``/metrics`` read at both ends. The simulators' CPU is reported separately: they are not
the agent.

With ``--profile`` a third agent, with the same devices, then runs under
:mod:`bench.devices_sampler` (CPU-time sampling) for another window, and the report says
where its CPU goes, by component.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.devices_codecs import CodecResult, nmea_epochs, run_codecs
from bench.devices_procs import Metrics, ReadingTap, delta, first_line, memory_kib, scrape
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
    thread_cpu,
    wait_for,
)

LOADED_AGENT = "bench-devices"
IDLE_AGENT = "bench-idle"
PROFILED_AGENT = "bench-devices-profiled"
CABINETS = 4
CABINET_SLOTS = 8
BANDS = 50
FLEET_ID = "wristbands"
GPS_ID = "gps-1"
TARGET_RSS_MIB = 60.0
TARGET_CPU_PERCENT = 5.0
DEFAULT_SECONDS = 60.0
WARMUP_SECONDS = 180.0
# After the last band delivered its first heart rate: the connection work has to finish.
SETTLE_SECONDS = 5.0
SAMPLE_SECONDS = 1.0
# Growth above this at the end of a window is worth a warning: the figure is not a plateau yet.
RSS_RISING_MIB_PER_MIN = 0.25
_MIB = 1024.0


def _cabinet_id(n: int) -> str:
    return f"cabinet-{n}"


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(value)


# ---------------------------------------------------------------------------------------------
# The rig: broker, simulators, agents


@dataclass
class _Agent:
    name: str
    child: Child
    metrics_url: str


@dataclass
class _Rig:
    root: Path
    children: Children
    broker: Mosquitto
    tap: ReadingTap
    cabinets: list[Child] = field(default_factory=list)
    cabinet_ports: list[str] = field(default_factory=list)
    gps: Child | None = None
    gps_port: str = ""
    bands: Child | None = None
    bands_port: int = 0

    @property
    def simulators(self) -> dict[str, int]:
        pids = {
            f"cabinet simulator {n}": child.pid for n, child in enumerate(self.cabinets, start=1)
        }
        if self.gps is not None:
            pids["GPS simulator"] = self.gps.pid
        if self.bands is not None:
            pids["wristband simulator"] = self.bands.pid
        if self.broker.process is not None:
            pids["Mosquitto"] = self.broker.process.pid
        return pids

    def start_devices(self) -> None:
        for n in range(1, CABINETS + 1):
            child = self.children.start(
                f"cabinet-sim-{n}",
                "edge_agent.command_line",
                ["cabinet", "simulate", "--slots", str(CABINET_SLOTS), "--addr", "1"],
            )
            self.cabinets.append(child)
        track = self.root / "gps-track.nmea"
        track.write_bytes(b"".join(nmea_epochs(datetime.now(UTC), satellites_in_view=True)))
        self.gps = self.children.start(
            "gps-sim",
            "edge_agent.command_line",
            ["gps", "simulate", "--track", str(track), "--loop"],
        )
        self.cabinet_ports = [first_line(child, "/") for child in self.cabinets]
        self.gps_port = first_line(self.gps, "/")
        self.start_bands()

    def start_bands(self) -> None:
        """A fresh wristband simulator (one agent per HCI transport)."""
        if self.bands is not None:
            self.children.stop(self.bands)
        self.bands_port = free_port()
        bands = self.bands = self.children.start(
            "wristband-sim",
            "edge_agent.command_line",
            [
                "wristband",
                "simulate",
                "--bands",
                str(BANDS),
                "--seed",
                "1",
                "--hci",
                f"tcp-server:127.0.0.1:{self.bands_port}",
                "--log-level",
                "warning",
            ],
        )
        wait_for(
            lambda: bands.output().count(" advertising as ") >= BANDS,
            60,
            f"{BANDS} emulated bands to advertise",
            [bands],
        )

    def devices_config(self, agent_id: str) -> Path:
        from devices.wristband.simulator import band_address, band_id

        state = self.root / "state" / agent_id
        state.mkdir(parents=True, exist_ok=True)
        lines = [f"id = {_toml(agent_id)}"]
        for n, port in enumerate(self.cabinet_ports, start=1):
            lines += [
                "[[devices]]",
                'kind = "cabinet"',
                f"id = {_toml(_cabinet_id(n))}",
                f"transport = {_toml(port)}",
                f"state_dir = {_toml(str(state))}",
            ]
        bands = ", ".join(
            f"{{ id = {_toml(band_id(n))}, address = {_toml(band_address(n))} }}"
            for n in range(1, BANDS + 1)
        )
        lines += [
            "[[devices]]",
            'kind = "wristband"',
            f"id = {_toml(FLEET_ID)}",
            'transport = "ble"',
            f"backend = {_toml(f'bumble:tcp-client:127.0.0.1:{self.bands_port}')}",
            f"bands = [{bands}]",
        ]
        lines += [
            "[[devices]]",
            'kind = "gps"',
            f"id = {_toml(GPS_ID)}",
            f"transport = {_toml(self.gps_port)}",
        ]
        path = self.root / f"{agent_id}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_agent(
        self, agent_id: str, config: Path | None, sampler_out: Path | None = None
    ) -> _Agent:
        port = free_port()
        args = [
            "agent",
            "--id",
            agent_id,
            "--broker",
            self.broker.url,
            "--data-dir",
            str(self.root / "agents" / agent_id),
            "--metrics-listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ]
        if config is not None:
            args += ["--config", str(config)]
        if sampler_out is None:
            child = self.children.start(agent_id, "edge_agent.command_line", args)
        else:
            child = self.children.start(
                agent_id, "bench.devices_sampler", ["--out", str(sampler_out), "--", *args]
            )
        return _Agent(agent_id, child, f"http://127.0.0.1:{port}/metrics")


@contextmanager
def _broker(workdir: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir)
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        except (AssertionError, OSError):
            broker.kill()


def _connected(agent: _Agent) -> bool:
    metrics = scrape(agent.metrics_url)
    return metrics is not None and metrics.total("precinct_agent_connected") == 1


def _warm_up(rig: _Rig, agent: _Agent, watch: Sequence[Child]) -> float:
    """Wait until every band delivered a heart rate and every other device gave frames."""
    wanted = {_cabinet_id(n) for n in range(1, CABINETS + 1)} | {GPS_ID}

    def ready() -> bool:
        if len(rig.tap.devices_with(agent.name, "heart_rate")) < BANDS:
            return False
        metrics = scrape(agent.metrics_url)
        if metrics is None:
            return False
        frames = metrics.by("precinct_agent_device_frames_total", "device")
        return all(frames.get((device,), 0.0) > 0 for device in wanted)

    started = time.monotonic()
    try:
        wait_for(
            ready,
            WARMUP_SECONDS,
            f"{agent.name}: a heart rate from every band and frames from every cabinet and the GPS",
            [agent.child, *watch],
            interval=0.5,
        )
    except BenchError:
        heard = len(rig.tap.devices_with(agent.name, "heart_rate"))
        say(f"{agent.name}: {heard} of {BANDS} bands delivered a heart rate")
        raise
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# The measured window


@dataclass(frozen=True)
class _Sample:
    at: float
    cpu: float | None
    main_thread: float | None
    rss_kib: int | None
    hwm_kib: int | None

    @classmethod
    def take(cls, pid: int) -> _Sample:
        memory = memory_kib(pid)
        return cls(
            time.monotonic(),
            cpu_seconds(pid),
            thread_cpu(pid).get(pid),
            memory[0] if memory else None,
            memory[1] if memory else None,
        )


@dataclass
class _Observed:
    """One agent over the window."""

    name: str
    samples: list[_Sample]
    before: Metrics
    after: Metrics
    kinds: Counter[str]

    @property
    def seconds(self) -> float:
        return self.samples[-1].at - self.samples[0].at

    def _percent(self, values: Sequence[float | None]) -> float:
        first, last = values[0], values[-1]
        if first is None or last is None or self.seconds <= 0:
            return float("nan")
        return 100.0 * (last - first) / self.seconds

    @property
    def cpu_percent(self) -> float:
        return self._percent([s.cpu for s in self.samples])

    @property
    def main_thread_percent(self) -> float:
        return self._percent([s.main_thread for s in self.samples])

    def _rss(self) -> list[int]:
        return [s.rss_kib for s in self.samples if s.rss_kib is not None]

    @property
    def rss_start_mib(self) -> float:
        return self._rss()[0] / _MIB

    @property
    def rss_end_mib(self) -> float:
        return self._rss()[-1] / _MIB

    @property
    def rss_max_mib(self) -> float:
        return max(self._rss()) / _MIB

    @property
    def rss_tail_mib_per_min(self) -> float:
        """RSS growth over the last third of the window, per minute: is it levelling off?"""
        points = [(s.at, s.rss_kib) for s in self.samples if s.rss_kib is not None]
        tail = [p for p in points if p[0] >= points[-1][0] - self.seconds / 3]
        if len(tail) < 2 or tail[-1][0] <= tail[0][0]:
            return 0.0
        return 60.0 * (tail[-1][1] - tail[0][1]) / _MIB / (tail[-1][0] - tail[0][0])

    @property
    def hwm_mib(self) -> float:
        values = [s.hwm_kib for s in self.samples if s.hwm_kib is not None]
        return values[-1] / _MIB if values else float("nan")

    def rate(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        window = self.after.at - self.before.at
        return (
            {
                key: value / window
                for key, value in delta(self.before, self.after, name, *keys).items()
            }
            if window > 0
            else {}
        )


def _scrape_or_fail(agent: _Agent) -> Metrics:
    metrics = scrape(agent.metrics_url)
    if metrics is None:
        raise BenchError(f"{agent.name}: /metrics did not answer")
    return metrics


def _window(
    rig: _Rig, agents: Sequence[_Agent], seconds: float, watch: Sequence[Child]
) -> tuple[dict[str, _Observed], dict[str, float]]:
    """Sample the agents for ``seconds``; returns them and the simulators' CPU in % of a core."""
    others = rig.simulators
    others_before = {name: cpu_seconds(pid) for name, pid in others.items()}
    before = {agent.name: _scrape_or_fail(agent) for agent in agents}
    samples: dict[str, list[_Sample]] = {agent.name: [] for agent in agents}
    start = time.monotonic()
    tick = 0
    while True:
        for agent in agents:
            samples[agent.name].append(_Sample.take(agent.child.pid))
        for child in (*[a.child for a in agents], *watch):
            if not child.alive():
                raise BenchError(
                    f"{child.name} exited ({child.process.returncode}) during "
                    f"the measurement; its log ends:\n{child.tail()}"
                )
        if time.monotonic() - start >= seconds:
            break
        tick += 1
        time.sleep(max(0.0, start + min(seconds, tick * SAMPLE_SECONDS) - time.monotonic()))
    end = time.monotonic()
    after = {agent.name: _scrape_or_fail(agent) for agent in agents}
    others_cores: dict[str, float] = {}
    for name, pid in others.items():
        first, last = others_before[name], cpu_seconds(pid)
        if first is not None and last is not None:
            others_cores[name] = 100.0 * (last - first) / (end - start)
    observed = {
        agent.name: _Observed(
            agent.name,
            samples[agent.name],
            before[agent.name],
            after[agent.name],
            rig.tap.kinds(agent.name, start, end),
        )
        for agent in agents
    }
    return observed, others_cores


# ---------------------------------------------------------------------------------------------
# Where the CPU goes (--profile)

_SITE_COMPONENTS = {
    "bumble": "BLE emulation: bumble host stack, pyee",
    "pyee": "BLE emulation: bumble host stack, pyee",
    "bleak": "BLE: bleak",
    "bleak_retry_connector": "BLE: bleak",
    "aiomqtt": "uplink: aiomqtt, paho, uplink.py",
    "paho": "uplink: aiomqtt, paho, uplink.py",
    "serial": "cabinets: driver, pyserial",
    "serial_asyncio_fast": "cabinets: driver, pyserial",
    "pynmeagps": "GPS: driver, NMEA, pynmeagps",
    "prometheus_client": "agent: supervisor, metrics, other",
}
_PROJECT_COMPONENTS = (
    ("devices/wristband/bumble_backend.py", "BLE emulation: bleak backend over bumble"),
    ("devices/wristband/gap.py", "BLE emulation: bleak backend over bumble"),
    ("devices/wristband/", "wristbands: fleet driver, presence, alarms, codec"),
    ("devices/cabinet/", "cabinets: driver, pyserial"),
    ("devices/gps/", "GPS: driver, NMEA, pynmeagps"),
    ("edge_agent/outbox.py", "outbox: envelope, SQLite"),
    ("edge_agent/wire.py", "outbox: envelope, SQLite"),
    ("edge_agent/uplink.py", "uplink: aiomqtt, paho, uplink.py"),
    ("edge_agent/", "agent: supervisor, metrics, other"),
    ("monitoring/", "agent: supervisor, metrics, other"),
)
_ENTRY_FRAMES = (
    "project:edge_agent/command_line.py:",
    "project:edge_agent/cli.py:",
    "project:bench/",
)


def _any(*prefixes: str) -> Callable[[str], bool]:
    return lambda key: key.startswith(prefixes)


def _bumble_formatting(key: str) -> bool:
    # bumble builds the text of every HCI packet and ATT PDU for logger.debug in f-strings,
    # whether or not debug logging is on.
    return key.startswith("site:bumble/") and (
        key.endswith(".__str__") or key.startswith("site:bumble/colors.py:")
    )


_INCLUSIVE: tuple[tuple[str, Callable[[str], bool]], ...] = (
    (
        "BLE emulation (bumble host + bleak backend over it)",
        _any(
            "site:bumble/",
            "project:devices/wristband/bumble_backend.py",
            "project:devices/wristband/gap.py",
        ),
    ),
    ("  of which bumble formatting packets for its debug log", _bumble_formatting),
    (
        "wristbands, all of it (emulation, bleak, fleet driver)",
        _any("site:bumble/", "site:bleak", "project:devices/wristband/"),
    ),
    ("cabinets", _any("project:devices/cabinet/", "site:serial")),
    ("GPS", _any("project:devices/gps/", "site:pynmeagps/")),
    ("outbox put (from any source)", _any("project:edge_agent/outbox.py:Outbox.put")),
    ("uplink publishing", _any("project:edge_agent/uplink.py", "site:aiomqtt/", "site:paho/")),
)


def _component(stack: Sequence[str]) -> str:
    """The first component found from the innermost frame outward; stdlib is its caller's."""
    for key in stack:
        origin, path, _ = key.split(":", 2)
        if origin in ("stdlib", "other") or key.startswith(_ENTRY_FRAMES):
            continue
        if origin == "site":
            package = path.split("/", 1)[0].removesuffix(".py")
            return _SITE_COMPONENTS.get(package, f"other: {package}")
        for prefix, name in _PROJECT_COMPONENTS:
            if path.startswith(prefix):
                return name
        return "agent: supervisor, metrics, other"
    innermost = stack[0] if stack else ""
    if innermost.startswith("stdlib:selectors.py"):
        return "epoll (signal wake-ups, other threads)"
    return "asyncio event loop, other stdlib"


def _profile_lines(data: Mapping[str, object], cpu_percent: float, seconds: float) -> list[str]:
    raw_stacks = data.get("stacks")
    stacks = (
        [(int(count), [str(k) for k in keys]) for count, keys in raw_stacks]
        if isinstance(raw_stacks, list)
        else []
    )
    total = sum(count for count, _ in stacks)
    if not total:
        return ["  no samples (the profiled agent did not write its stacks)"]
    components: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for count, stack in stacks:
        components[_component(stack)] += count
        functions[stack[0] if stack else "?"] += count
    cpu = cpu_percent * seconds / 100.0
    lines = [
        f"  {total} samples in {cpu:.2f} s of CPU (one per {1000 * cpu / total:.1f} ms); "
        f"agent CPU under the sampler {cpu_percent:.2f} % of one core. Self time by "
        "component:"
    ]
    for name, count in components.most_common():
        share = count / total
        lines.append(
            f"    {name:<52s} {100 * share:5.1f} %  ({cpu_percent * share:.2f} % of a core)"
        )
    lines.append("  inclusive (a frame of it anywhere on the stack):")
    for name, matches in _INCLUSIVE:
        count = sum(c for c, stack in stacks if any(matches(k) for k in stack))
        share = count / total
        lines.append(
            f"    {name:<52s} {100 * share:5.1f} %  ({cpu_percent * share:.2f} % of a core)"
        )
    lines.append("  busiest innermost frames:")
    for key, count in functions.most_common(10):
        origin, path, function = key.split(":", 2)
        lines.append(f"    {100 * count / total:5.1f} %  {path}:{function} ({origin})")
    return lines


def _profile(rig: _Rig, seconds: float) -> list[str]:
    say("profile: a fresh wristband simulator and the loaded agent under the sampler")
    rig.start_bands()
    out = rig.root / "profile.json"
    agent = rig.start_agent(PROFILED_AGENT, rig.devices_config(PROFILED_AGENT), out)
    watch = [*rig.cabinets, *([rig.gps] if rig.gps else []), *([rig.bands] if rig.bands else [])]
    warm = _warm_up(rig, agent, watch)
    time.sleep(SETTLE_SECONDS)
    say(f"profile: warm after {warm:.0f} s; sampling for {seconds:.0f} s")
    agent.child.process.send_signal(signal.SIGUSR2)  # the sampler starts
    observed, _ = _window(rig, [agent], seconds, watch)
    agent.child.process.send_signal(signal.SIGUSR2)  # and stops
    rig.children.stop(agent.child)
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return [f"  no profile: {exc}"]
    return _profile_lines(data, observed[agent.name].cpu_percent, observed[agent.name].seconds)


# ---------------------------------------------------------------------------------------------
# The report


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _codec_lines(
    codecs: Sequence[CodecResult], notes: Sequence[str], loaded: _Observed
) -> list[str]:
    lines = ["codecs (CPU time of one thread, decoding a pre-encoded corpus in a loop):"]
    for result in codecs:
        unit = "readings" if result.key == "outbox" else "frames"
        lines.append(
            f"  {result.name:<66s} {result.rate:>11,.0f} {unit}/s {result.micros:7.1f} us each"
        )
    lines.extend(f"  ({note})" for note in notes)
    costs = {result.key: result.micros for result in codecs}
    frames = {
        key[0]: value
        for key, value in loaded.rate("precinct_agent_device_frames_total", "device").items()
    }
    window = loaded.seconds
    heart_rates = loaded.kinds.get("heart_rate", 0) / window if window > 0 else 0.0
    cabinet_frames = sum(v for k, v in frames.items() if k.startswith("cabinet-"))
    fleet = frames.get(FLEET_ID, 0.0)
    gps = frames.get(GPS_ID, 0.0)
    decode = (
        cabinet_frames * costs.get("scp1", 0.0)
        + heart_rates * costs.get("heart_rate", 0.0)
        + max(0.0, fleet - heart_rates) * costs.get("mirror", 0.0)
        + gps * costs.get("nmea", 0.0)
    ) / 1e4
    published = sum(loaded.rate("precinct_agent_published_total").values())
    store = published * costs.get("outbox", 0.0) / 1e4
    lines.append(
        f"  at the load below, decoding costs {decode:.3f} % of a core (cabinets "
        f"{cabinet_frames:.1f} frames/s, wristbands {fleet:.1f}/s of which "
        f"{heart_rates:.1f} heart rates, GPS {gps:.1f} sentences/s) and storing "
        f"{published:.1f} readings/s {store:.3f} %"
    )
    return lines


def _agent_lines(observed: _Observed, warm: float) -> list[str]:
    other_threads = observed.cpu_percent - observed.main_thread_percent
    growth = observed.rss_end_mib - observed.rss_start_mib
    tail = observed.rss_tail_mib_per_min
    published = {
        key[0]: value
        for key, value in observed.rate("precinct_agent_published_total", "class").items()
    }
    frames = observed.rate("precinct_agent_device_frames_total", "device")
    errors = {
        key: value
        for key, value in delta(
            observed.before, observed.after, "precinct_agent_device_errors_total", "device", "kind"
        ).items()
        if value
    }
    since_start = {
        key: value
        for key, value in observed.after.by(
            "precinct_agent_device_errors_total", "device", "kind"
        ).items()
        if value
    }
    depth = observed.after.total("precinct_agent_outbox_depth")
    window = observed.seconds
    kinds = (
        ", ".join(f"{kind} {count / window:.2f}" for kind, count in observed.kinds.most_common())
        if window > 0
        else ""
    )
    return [
        f"agent under device load ({observed.name}): {window:.0f} s window, after a "
        f"{warm:.0f} s warm-up (every band delivered a heart rate) and {SETTLE_SECONDS:.0f} s",
        f"  CPU       {observed.cpu_percent:.2f} % of one core "
        f"({observed.cpu_percent * window / 100:.2f} s in {window:.0f} s; main thread "
        f"{observed.main_thread_percent:.2f} %, other threads {other_threads:.2f} %)",
        f"  RSS       {observed.rss_end_mib:.1f} MiB at the end, {observed.rss_max_mib:.1f} MiB "
        f"max in the window, peak since start (VmHWM) {observed.hwm_mib:.1f} MiB; "
        f"{growth:+.2f} MiB over the window, {tail:+.2f} MiB/min over its last third",
        f"  published {sum(published.values()):.1f} readings/s ("
        + ", ".join(f"{cls} {rate:.2f}" for cls, rate in sorted(published.items()))
        + f"); outbox depth at the end {depth:.0f}",
        "  frames/s  "
        + ", ".join(f"{key[0]} {_fmt_rate(rate)}" for key, rate in sorted(frames.items())),
        f"  readings/s by kind, as received from the broker: {kinds or 'none'}",
        *(
            [
                f"  RSS was still rising at the end of the window: run longer than "
                f"{window:.0f} s to see where it levels off"
            ]
            if tail > RSS_RISING_MIB_PER_MIN
            else []
        ),
        "  errors in the window: "
        + (
            ", ".join(
                f"{device} {kind} {value:.0f}" for (device, kind), value in sorted(errors.items())
            )
            or "none"
        )
        + "; since start: "
        + (
            ", ".join(
                f"{device} {kind} {value:.0f}"
                for (device, kind), value in sorted(since_start.items())
            )
            or "none"
        ),
    ]


def _ratio(loaded: float, idle: float) -> str:
    return f"x{loaded / idle:.2f}" if idle > 0 else "no ratio: the idle agent used no clock tick"


def _report(
    codecs: Sequence[CodecResult],
    notes: Sequence[str],
    loaded: _Observed,
    idle: _Observed,
    others: Mapping[str, float],
    warm: float,
    profile: Sequence[str] | None,
    elapsed: float,
) -> int:
    rss_ok = loaded.rss_max_mib < TARGET_RSS_MIB
    cpu_ok = loaded.cpu_percent < TARGET_CPU_PERCENT
    cabinet_sims = [v for k, v in others.items() if k.startswith("cabinet simulator")]
    lines = [
        f"devices benchmark: {CABINETS} cabinets (SCP/1, {CABINET_SLOTS} slots, poll 1 s, one "
        f"pty each), {BANDS} wristbands (heart rate 1 s, advertising 500 ms, emulated, bumble "
        f"HCI over TCP), 1 GPS (1 Hz, GGA GSA 3xGSV RMC); {mosquitto_version()}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "  (the emulated bands put a bumble host stack, HCI to GATT, inside the agent process; "
        "with a real adapter BlueZ does that work outside it: --profile shows its share)",
        *_codec_lines(codecs, notes, loaded),
        *_agent_lines(loaded, warm),
        f"idle agent ({idle.name}, no devices), same window:",
        f"  CPU       {idle.cpu_percent:.2f} % of one core "
        f"({idle.cpu_percent * idle.seconds / 100:.2f} s in {idle.seconds:.0f} s); "
        f"RSS {idle.rss_end_mib:.1f} MiB at the end, {idle.rss_max_mib:.1f} MiB max; published "
        f"{sum(idle.rate('precinct_agent_published_total').values()):.1f} readings/s",
        f"device load vs idle agent: CPU {loaded.cpu_percent:.2f} % vs {idle.cpu_percent:.2f} %"
        f" ({loaded.cpu_percent - idle.cpu_percent:+.2f} points, "
        f"{_ratio(loaded.cpu_percent, idle.cpu_percent)}); RSS {loaded.rss_max_mib:.1f} MiB vs "
        f"{idle.rss_max_mib:.1f} MiB ({loaded.rss_max_mib - idle.rss_max_mib:+.1f} MiB, "
        f"{_ratio(loaded.rss_max_mib, idle.rss_max_mib)})",
        "not the agent, % of one core over the window: "
        + ", ".join(
            f"{name} {value:.2f}"
            for name, value in others.items()
            if not name.startswith("cabinet simulator")
        )
        + (
            f", cabinet simulators {sum(cabinet_sims):.2f} ({len(cabinet_sims)})"
            if cabinet_sims
            else ""
        ),
    ]
    if profile is not None:
        lines.append(
            "where the loaded agent's CPU goes (a second agent, same devices, under a "
            "CPU-time sampler):"
        )
        lines.extend(profile)
    lines += [
        f"target RSS < {TARGET_RSS_MIB:.0f} MiB (max VmRSS in the window): "
        + ("met" if rss_ok else "MISSED")
        + f" ({loaded.rss_max_mib:.1f} MiB)",
        f"target CPU < {TARGET_CPU_PERCENT:.0f} % of one core (mean over the window): "
        + ("met" if cpu_ok else "MISSED")
        + f" ({loaded.cpu_percent:.2f} %)",
        "result: "
        + (
            "all targets met"
            if rss_ok and cpu_ok
            else "FAILED: "
            + "; ".join(
                text for ok, text in ((rss_ok, "resident memory"), (cpu_ok, "CPU")) if not ok
            )
        )
        + f" (run took {elapsed:.0f} s)",
    ]
    print("\n".join(lines), flush=True)
    return 0 if rss_ok and cpu_ok else 1


# ---------------------------------------------------------------------------------------------
# The whole run


def _run(root: Path, seconds: float, profile: bool) -> int:
    started = time.monotonic()
    say("codecs: decoding pre-encoded corpora")
    codecs, notes = run_codecs()
    logs = root / "logs"
    logs.mkdir()
    children = Children(logs)
    with _broker(root / "broker") as broker:
        tap = ReadingTap(broker.url)
        tap.start()
        rig = _Rig(root, children, broker, tap)
        try:
            say(
                f"starting {CABINETS} cabinet simulators, the GPS simulator and {BANDS} "
                "emulated bands"
            )
            rig.start_devices()
            idle = rig.start_agent(IDLE_AGENT, None)
            loaded = rig.start_agent(LOADED_AGENT, rig.devices_config(LOADED_AGENT))
            watch = [
                *rig.cabinets,
                *([rig.gps] if rig.gps else []),
                *([rig.bands] if rig.bands else []),
                idle.child,
            ]
            warm = _warm_up(rig, loaded, watch)
            wait_for(lambda: _connected(idle), 30, "the idle agent to connect", watch)
            say(
                f"every band delivered a heart rate after {warm:.0f} s; settling for "
                f"{SETTLE_SECONDS:.0f} s, then measuring for {seconds:.0f} s"
            )
            time.sleep(SETTLE_SECONDS)
            observed, others = _window(rig, [loaded, idle], seconds, watch)
            children.stop(loaded.child)
            children.stop(idle.child)
            profile_lines = _profile(rig, seconds) if profile else None
        finally:
            children.stop_all()
            tap.stop()
    return _report(
        codecs,
        notes,
        observed[LOADED_AGENT],
        observed[IDLE_AGENT],
        others,
        warm,
        profile_lines,
        time.monotonic() - started,
    )


def _run_in(root: Path, seconds: float, profile: bool, *, keep: bool) -> int:
    try:
        return _run(root, seconds, profile)
    except (BenchError, AssertionError, OSError) as exc:
        print(f"devices benchmark failed: {exc}", flush=True)
        if keep:
            print(f"logs are in {root / 'logs'}", flush=True)
        return 1


def run_devices_bench(
    seconds: float = DEFAULT_SECONDS, workdir: Path | None = None, profile: bool = False
) -> int:
    """Run the benchmark, print its report; 0 when every target is met, 1 otherwise."""
    if not seconds >= 1:
        print("precinct bench devices: --seconds must be at least 1", file=sys.stderr)
        return 2
    with bench_root("devices", workdir) as (root, keep):
        return _run_in(root, seconds, profile, keep=keep)
