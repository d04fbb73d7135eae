"""Metrics an edge agent exposes on its own ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    outbox_depth: Gauge
    outbox_oldest_age: Gauge
    outbox_full: Gauge
    disk_full: Gauge
    events_refused: Counter
    published: Counter
    dropped: Counter
    reconnects: Counter
    connected: Gauge
    commands: Counter
    device_frames: Counter
    device_errors: Counter
    device_last_seen: Gauge
    device_online: Gauge
    device_restarts: Counter
    certificate_expiry: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AgentMetrics:
        return cls(
            outbox_depth=Gauge(
                "precinct_agent_outbox_depth",
                "Messages waiting in the outbox",
                ["class"],
                registry=registry,
            ),
            outbox_oldest_age=Gauge(
                "precinct_agent_outbox_oldest_age_seconds",
                "Age of the oldest message waiting in the outbox",
                registry=registry,
            ),
            outbox_full=Gauge(
                "precinct_agent_outbox_full",
                "1 while the outbox holds only events at its bound and refuses telemetry",
                registry=registry,
            ),
            disk_full=Gauge(
                "precinct_agent_disk_full",
                "1 while the outbox's disk is full: telemetry refused, events from the reserve",
                registry=registry,
            ),
            events_refused=Counter(
                "precinct_agent_events_refused_total",
                "Events handed back to their source because not even the reserve could hold them",
                registry=registry,
            ),
            published=Counter(
                "precinct_agent_published_total",
                "Messages acknowledged by the broker",
                ["class"],
                registry=registry,
            ),
            dropped=Counter(
                "precinct_agent_dropped_total",
                "Messages dropped before publishing, by reason",
                ["class", "reason"],
                registry=registry,
            ),
            reconnects=Counter(
                "precinct_agent_reconnects_total",
                "Connection attempts after the first",
                registry=registry,
            ),
            connected=Gauge(
                "precinct_agent_connected", "1 while connected to the broker", registry=registry
            ),
            commands=Counter(
                "precinct_agent_commands_total",
                "Commands received, by outcome",
                ["outcome"],
                registry=registry,
            ),
            device_frames=Counter(
                "precinct_agent_device_frames_total",
                "Frames, notifications or sentences decoded, per device",
                ["device"],
                registry=registry,
            ),
            device_errors=Counter(
                "precinct_agent_device_errors_total",
                "Device errors, by kind",
                ["device", "kind"],
                registry=registry,
            ),
            device_last_seen=Gauge(
                "precinct_agent_device_last_seen_timestamp_seconds",
                "When the device last produced a good frame (Unix time)",
                ["device"],
                registry=registry,
            ),
            device_online=Gauge(
                "precinct_agent_device_online",
                "1 while the device answers",
                ["device"],
                registry=registry,
            ),
            device_restarts=Counter(
                "precinct_agent_device_restarts_total",
                "Times a device driver failed unexpectedly and was restarted",
                ["device"],
                registry=registry,
            ),
            certificate_expiry=Gauge(
                "precinct_agent_certificate_expiry_timestamp_seconds",
                "When the agent's broker certificate expires (Unix time); 0 without one",
                registry=registry,
            ),
        )
