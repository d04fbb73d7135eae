"""What the central exports about the agents, devices and broker it watches.

These come from the centre's live state (agents' births, status and health messages, the stored
sequence gaps, the devices' last states) and from the broker's ``$SYS`` topics, not from a scrape
of the agents: a van on a mobile link cannot be scraped, but its messages still reach the centre.

Label cardinality is bounded by what is enrolled: ``agent`` takes one value per agent (a district:
tens), ``device`` one per configured device (hundreds), ``class`` one of the device classes,
``station`` one per station, ``type`` one per room type. Nothing here is labelled by a person,
booking, band reading or message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()


FLEET_METRICS = (
    MetricSpec(
        "precinct_agent_up",
        "gauge",
        "1 while the agent's last status at the centre is online, else 0",
        ("agent", "station"),
    ),
    MetricSpec(
        "precinct_agent_last_seen_timestamp_seconds",
        "gauge",
        "When the centre last received anything from the agent (Unix time)",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_missing_messages",
        "gauge",
        "Sequence numbers below the agent's highest (in its current epoch) not stored",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_reported_outbox_depth",
        "gauge",
        "Messages in the agent's outbox not yet acknowledged, as its last health report said",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_reported_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest unacknowledged message in the agent's outbox when it last reported",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_reported_disk_full",
        "gauge",
        "1 if the agent's last health report said its outbox disk is full",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_reported_certificate_expiry_timestamp_seconds",
        "gauge",
        "When the agent's client certificate expires (Unix time), as it last reported",
        ("agent",),
    ),
    MetricSpec(
        "precinct_agent_health_timestamp_seconds",
        "gauge",
        "When the agent took its last health report that reached the centre (Unix time)",
        ("agent",),
    ),
    MetricSpec(
        "precinct_device_up",
        "gauge",
        "1 while the device's last state at the centre is online, else 0",
        ("agent", "device", "class"),
    ),
    MetricSpec(
        "precinct_rooms_in_use",
        "gauge",
        "Rooms with a session running now, by room type",
        ("type",),
    ),
)

BROKER_METRICS = (
    MetricSpec(
        "precinct_broker_clients_connected",
        "gauge",
        "Clients connected to the broker ($SYS/broker/clients/connected)",
    ),
    MetricSpec(
        "precinct_broker_messages_stored",
        "gauge",
        "Messages the broker holds, retained and queued ($SYS/broker/messages/stored)",
    ),
    MetricSpec(
        "precinct_broker_publish_dropped",
        "counter",
        "Publishes the broker dropped, queues or inflight limits full: data loss "
        "($SYS/broker/publish/messages/dropped)",
    ),
    MetricSpec(
        "precinct_broker_heap_bytes",
        "gauge",
        "The broker's heap in use ($SYS/broker/heap/current)",
    ),
    MetricSpec(
        "precinct_broker_uptime_seconds",
        "gauge",
        "Seconds since the broker started ($SYS/broker/uptime)",
    ),
    MetricSpec(
        "precinct_broker_sys_last_update_timestamp_seconds",
        "gauge",
        "When the central last received a $SYS message from the broker (Unix time)",
    ),
)
