"""Processes and observation for ``precinct bench devices``: children, /proc, /metrics, MQTT.

Every process the benchmark starts is a :class:`Child` (``python -m MODULE ARGS``, output in a
log file, stdin from /dev/null) kept by :class:`Children`, which stops them in reverse order
(SIGTERM, then SIGKILL) however the run ends. CPU time and resident memory come from /proc; the
agent's own figures from its Prometheus ``/metrics``; what actually reached the broker from
:class:`ReadingTap`, a paho subscriber that counts readings by agent, device and kind.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.processes import (
    BenchError,
    Child,
    wait_for,
)
from edge_agent.broker_url import parse_broker_url
from edge_agent.wire import Channel, subscription

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Child processes


def first_line(child: Child, prefix: str, timeout: float = 20.0) -> str:
    """The first line of ``child``'s output that starts with ``prefix``."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [
            line.strip() for line in child.output().splitlines() if line.startswith(prefix)
        ][:1]
        return bool(found)

    wait_for(seen, timeout, f"{child.name} to print its port", [child], interval=0.05)
    return found[0]


# ---------------------------------------------------------------------------------------------
# /proc


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of process ``pid`` in KiB: resident now, and its peak."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if len(values) != 2:
        return None
    return values["VmRSS"], values["VmHWM"]


# ---------------------------------------------------------------------------------------------
# The agent's /metrics

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 - our own process on loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


@dataclass(frozen=True)
class Metrics:
    """One scrape of Prometheus text: samples by name and labels."""

    at: float
    samples: Mapping[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str, at: float) -> Metrics:
        samples: dict[tuple[str, Labels], float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = _SAMPLE.match(line)
            if match is None:
                continue
            labels = tuple(sorted(_LABEL.findall(match.group(2) or "")))
            try:
                samples[(match.group(1), labels)] = float(match.group(3))
            except ValueError:
                continue
        return cls(at, samples)

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Samples called ``name``, keyed by the values of labels ``keys``."""
        out: dict[tuple[str, ...], float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == name:
                found = dict(labels)
                key = tuple(found.get(k, "") for k in keys)
                out[key] = out.get(key, 0.0) + value
        return out

    def total(self, name: str) -> float:
        return sum(self.by(name).values())


def scrape(url: str) -> Metrics | None:
    status, text = http_get(url)
    return Metrics.parse(text, time.monotonic()) if status == 200 else None


def delta(before: Metrics, after: Metrics, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """Increase of counter ``name`` between two scrapes, per label values."""
    old = before.by(name, *keys)
    return {key: value - old.get(key, 0.0) for key, value in after.by(name, *keys).items()}


# ---------------------------------------------------------------------------------------------
# What reached the broker


class ReadingTap:
    """A paho subscriber counting the readings of every agent, by device and kind.

    It is the consumer the broker delivers to (QoS 1, clean session), so Mosquitto keeps no
    queue; it also tells when every band of an agent has delivered a heart rate.
    """

    def __init__(self, broker: str) -> None:
        self._url = parse_broker_url(broker)
        self._lock = threading.Lock()
        self._seen: list[tuple[float, str, str, str]] = []
        self._ready = threading.Event()
        self._problem: str | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="precinct-bench-tap",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if reason.is_failure:
            self._problem = f"connect refused: {reason}"
            self._ready.set()
            return
        client.subscribe([(subscription(Channel.TELEMETRY), 1), (subscription(Channel.EVENT), 1)])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Any,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._problem = "subscription refused: " + ", ".join(failed)
        self._ready.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            envelope = json.loads(message.payload)
            entry = (now, str(envelope["agent"]), str(envelope["device"]), str(envelope["kind"]))
        except (ValueError, KeyError, TypeError):
            entry = (now, "?", "?", "unreadable")
        with self._lock:
            self._seen.append(entry)

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self._url.host, self._url.port, keepalive=30)
        self._client.loop_start()
        if not self._ready.wait(timeout):
            raise BenchError(f"no SUBACK from the broker within {timeout:.0f} s")
        if self._problem:
            raise BenchError(self._problem)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def devices_with(self, agent: str, kind: str) -> set[str]:
        """Devices of ``agent`` that delivered at least one reading of ``kind``."""
        with self._lock:
            return {device for _, a, device, k in self._seen if a == agent and k == kind}

    def kinds(self, agent: str, start: float, end: float) -> Counter[str]:
        """Readings of ``agent`` received between ``start`` and ``end`` (monotonic), by kind."""
        with self._lock:
            return Counter(k for at, a, _, k in self._seen if a == agent and start <= at < end)
