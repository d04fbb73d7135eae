"""The broker's ``$SYS`` topics, read into the centre's ``precinct_broker_*`` metrics.

Mosquitto publishes its own counters under ``$SYS/broker/…`` every ``sys_interval`` seconds (10 by
default), retained, as text: ``"17"``, or ``"4417 seconds"`` for the uptime. Parsing is pure; the
values are bytes from the network like any other, so a malformed one raises
:class:`SysValueError` (the caller counts it and goes on) and a topic not exported is ignored.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Final

from central.metric_families import spec_named
from monitoring.fleet_metrics import BROKER_METRICS, MetricSpec

SYS_FILTER: Final = "$SYS/#"
SYS_PREFIX: Final = "$SYS/"
# Longer than any number Mosquitto writes; a longer payload is refused unread.
MAX_VALUE_BYTES: Final = 64
_MAX_VALUE: Final = 2**63 - 1


def _spec(name: str) -> MetricSpec:
    return spec_named(BROKER_METRICS, name)


# Topic -> (metric, the unit word Mosquitto may write after the number).
SYS_TOPICS: Final[dict[str, tuple[MetricSpec, str | None]]] = {
    "$SYS/broker/clients/connected": (_spec("precinct_broker_clients_connected"), None),
    "$SYS/broker/messages/stored": (_spec("precinct_broker_messages_stored"), None),
    "$SYS/broker/publish/messages/dropped": (_spec("precinct_broker_publish_dropped"), None),
    # Mosquitto 2 writes the bare number of bytes; 1.x wrote "N bytes".
    "$SYS/broker/heap/current": (_spec("precinct_broker_heap_bytes"), "bytes"),
    # "N seconds" from Mosquitto; the bare number from amqtt's $SYS plugin.
    "$SYS/broker/uptime": (_spec("precinct_broker_uptime_seconds"), "seconds"),
}
LAST_UPDATE: Final = _spec("precinct_broker_sys_last_update_timestamp_seconds")
_VALUE = re.compile(r"([0-9]{1,19})(?: ([a-z]{1,16}))?")


class SysValueError(ValueError):
    """A ``$SYS`` value of an exported topic that is not what the broker writes."""

    def __init__(self, topic: str, detail: str) -> None:
        super().__init__(f"{topic}: {detail}")
        self.topic = topic


@dataclass(frozen=True, slots=True)
class SysReading:
    metric: MetricSpec
    value: int


def parse_sys(topic: str, payload: bytes) -> SysReading | None:
    """The reading of one ``$SYS`` message; None for a topic that is not exported."""
    known = SYS_TOPICS.get(topic)
    if known is None:
        return None
    metric, unit = known
    if len(payload) > MAX_VALUE_BYTES:
        raise SysValueError(topic, f"{len(payload)} bytes")
    try:
        text = payload.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SysValueError(topic, "not ASCII") from None
    match = _VALUE.fullmatch(text)
    if match is None or (match.group(2) is not None and match.group(2) != unit):
        raise SysValueError(
            topic, f"{text[:20]!r} is not a count" + (f" of {unit}" if unit else "")
        )
    value = int(match.group(1))
    if value > _MAX_VALUE:
        raise SysValueError(topic, "out of range")
    return SysReading(metric, value)


class BrokerSysState:
    """The latest ``$SYS`` values, written by the ingest network thread, read by scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}
        self._last_update: float | None = None

    def observe(self, topic: str, payload: bytes, now: float) -> None:
        """Record one ``$SYS`` message received at ``now`` (Unix time); raises
        :class:`SysValueError` for a malformed value, after noting that the broker spoke."""
        with self._lock:
            self._last_update = now
        reading = parse_sys(topic, payload)
        if reading is not None:
            with self._lock:
                self._values[reading.metric.name] = reading.value

    def snapshot(self) -> tuple[dict[str, int], float | None]:
        with self._lock:
            return dict(self._values), self._last_update
