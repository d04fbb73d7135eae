"""The collectors behind the centre's fleet and broker metrics: live state read at each scrape.

A scrape reads the store with three statements (agents with their current epoch and health,
devices with an availability, rooms in use by type), never one per agent, on a read-only
connection of its own. ``/metrics`` is a plain (threadpool) route, so the reads do not hold up
the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from central.broker_sys import BrokerSysState
from central.fleet_health import (
    AgentState,
    DeviceState,
    FleetSnapshot,
    ReportedHealth,
    broker_families,
    fleet_families,
)
from central.store import connect
from scheduling.lifecycle import BookingStatus

log = logging.getLogger(__name__)

_CAME = tuple(sorted(status.value for status in BookingStatus if status.arrived))
_AGENTS = (
    "SELECT a.agent, a.station, a.online, a.last_seen, "
    "coalesce(max(0, e.last_seq - e.first_seq + 1 - e.received), 0), "
    "h.taken_at, h.outbox_depth, h.outbox_oldest_age_seconds, h.disk_full, h.certificate_expires "
    "FROM agents a LEFT JOIN agent_epochs e ON e.agent = a.agent AND e.epoch = a.epoch "
    "LEFT JOIN agent_health h ON h.agent = a.agent ORDER BY a.agent"
)
_DEVICES = (
    "SELECT agent, device, class, online FROM devices WHERE online IS NOT NULL "
    "ORDER BY agent, device"
)
# The statuses are constants, bound as parameters.
_ROOMS_IN_USE = (
    "SELECT r.type, count(DISTINCT running.room) FROM rooms r LEFT JOIN ("  # noqa: S608
    "SELECT a.room FROM booking_persons p JOIN bookings b ON b.id = p.booking "
    "JOIN assignments a ON a.booking = p.booking AND a.person = p.person AND a.kind = 'session' "
    "WHERE p.session_started_at IS NOT NULL AND p.session_ended_at IS NULL "
    f"AND p.exited_at IS NULL AND b.status IN ({', '.join('?' for _ in _CAME)})"
    ") running ON running.room = r.id GROUP BY r.type"
)


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def read_fleet(conn: sqlite3.Connection) -> FleetSnapshot:
    agents = []
    for row in conn.execute(_AGENTS):
        agent, station, online, last_seen, missing, taken_at = row[:6]
        taken = _time(taken_at)
        health = None
        if taken is not None:
            depth, age, disk_full, expires = row[6:]
            health = ReportedHealth(taken, int(depth), float(age), bool(disk_full), _time(expires))
        agents.append(
            AgentState(
                str(agent),
                station if isinstance(station, str) else None,
                bool(online),
                _time(last_seen),
                int(missing),
                health,
            )
        )
    devices = tuple(
        DeviceState(str(agent), str(device), cls if isinstance(cls, str) else None, bool(online))
        for agent, device, cls, online in conn.execute(_DEVICES)
    )
    rooms = {str(room_type): int(count) for room_type, count in conn.execute(_ROOMS_IN_USE, _CAME)}
    return FleetSnapshot(tuple(agents), devices, rooms)


class FleetCollector(Collector):
    """Agents, devices and rooms from the store, at each scrape."""

    def __init__(self, db: Path) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        # The names exist before the first scrape, and in a registry nothing has reported to.
        return iter(fleet_families(FleetSnapshot()))

    def collect(self) -> Iterator[Metric]:
        try:
            conn = connect(self._db, readonly=True)
            try:
                snapshot = read_fleet(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            # The other metrics still go out; the families stay empty for this scrape.
            log.warning("fleet metrics: the store could not be read: %s", exc)
            snapshot = FleetSnapshot()
        return iter(fleet_families(snapshot))


class BrokerCollector(Collector):
    """The broker's ``$SYS`` values as ingest last received them."""

    def __init__(self, state: BrokerSysState) -> None:
        self._state = state

    def describe(self) -> Iterator[Metric]:
        return iter(broker_families({}, None))

    def collect(self) -> Iterator[Metric]:
        values, last_update = self._state.snapshot()
        return iter(broker_families(values, last_update))
