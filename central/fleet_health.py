"""The centre's view of its fleet as Prometheus families: pure, from a snapshot of live state.

What each value means (the alert rules rely on it):

- ``precinct_agent_up{agent,station}``: 1 while the agent's last status at the centre is a birth,
  0 after its will or goodbye, and 0 for an agent known only from its readings (no status yet).
  An agent the centre never heard of has no series. ``station`` is ``""`` when unknown.
- ``precinct_agent_last_seen_timestamp_seconds{agent}``: the centre's clock when anything of the
  agent (reading, status, health report) was last committed; absent before that.
- ``precinct_agent_missing_messages{agent}``: numbers of the current epoch, from its first up to
  its highest, not stored (what gap repair still waits for); 0 with nothing missing.
- ``precinct_agent_reported_*{agent}`` and ``precinct_agent_health_timestamp_seconds{agent}``:
  the agent's latest health report (its birth or a periodic report) as it said it, kept across
  the centre's restarts; absent for an agent that never sent one (a previous release). They are
  what the agent knew when it reported: with the agent offline they stay at its last report, so
  read them with ``precinct_agent_health_timestamp_seconds`` (the agent's clock when taken).
  ``…_certificate_expiry_timestamp_seconds`` is absent for an agent without a client certificate.
- ``precinct_device_up{agent,device,class}``: 1 while the device's last availability reading is
  online, else 0; only devices that report availability (cabinets, wristband scanners, GPS
  receivers; not each band) have a series. It is the device's state as its agent last reported
  it: with the agent offline it keeps that value (join with ``precinct_agent_up``).
- ``precinct_rooms_in_use{type}``: rooms with a session running now (started, not ended, the
  person not gone), for every room type the centre has rooms of (0 when none runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import Metric

from central.metric_families import empty_family, spec_named
from monitoring.fleet_metrics import BROKER_METRICS, FLEET_METRICS


@dataclass(frozen=True, slots=True)
class ReportedHealth:
    taken_at: datetime
    outbox_depth: int
    outbox_oldest_age_seconds: float
    disk_full: bool
    certificate_expires: datetime | None


@dataclass(frozen=True, slots=True)
class AgentState:
    agent: str
    station: str | None
    online: bool
    last_seen: datetime | None
    missing: int
    health: ReportedHealth | None


@dataclass(frozen=True, slots=True)
class DeviceState:
    agent: str
    device: str
    device_class: str | None
    online: bool


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    agents: tuple[AgentState, ...] = ()
    devices: tuple[DeviceState, ...] = ()
    rooms_in_use: Mapping[str, int] | None = None


def fleet_families(snapshot: FleetSnapshot) -> list[Metric]:
    """Every family of ``FLEET_METRICS``, in its order, with the snapshot's samples."""
    families = {spec.name: empty_family(spec) for spec in FLEET_METRICS}

    def add(name: str, labels: list[str], value: float) -> None:
        families[name].add_metric(labels, value)

    for agent in snapshot.agents:
        one = [agent.agent]
        add("precinct_agent_up", [agent.agent, agent.station or ""], 1 if agent.online else 0)
        if agent.last_seen is not None:
            add("precinct_agent_last_seen_timestamp_seconds", one, agent.last_seen.timestamp())
        add("precinct_agent_missing_messages", one, agent.missing)
        health = agent.health
        if health is None:
            continue
        add("precinct_agent_reported_outbox_depth", one, health.outbox_depth)
        add(
            "precinct_agent_reported_outbox_oldest_age_seconds",
            one,
            health.outbox_oldest_age_seconds,
        )
        add("precinct_agent_reported_disk_full", one, 1 if health.disk_full else 0)
        if health.certificate_expires is not None:
            add(
                "precinct_agent_reported_certificate_expiry_timestamp_seconds",
                one,
                health.certificate_expires.timestamp(),
            )
        add("precinct_agent_health_timestamp_seconds", one, health.taken_at.timestamp())
    for device in snapshot.devices:
        add(
            "precinct_device_up",
            [device.agent, device.device, device.device_class or ""],
            1 if device.online else 0,
        )
    for room_type, running in sorted((snapshot.rooms_in_use or {}).items()):
        add("precinct_rooms_in_use", [room_type], running)
    result: list[Metric] = list(families.values())
    return result


def broker_families(values: Mapping[str, int], last_update: float | None) -> list[Metric]:
    """Every family of ``BROKER_METRICS``; a value the broker has not sent yet has no sample."""
    families: list[Metric] = []
    last = spec_named(BROKER_METRICS, "precinct_broker_sys_last_update_timestamp_seconds")
    for spec in BROKER_METRICS:
        family = empty_family(spec)
        if spec is last:
            if last_update is not None:
                family.add_metric([], last_update)
        elif spec.name in values:
            family.add_metric([], values[spec.name])
        families.append(family)
    return families
