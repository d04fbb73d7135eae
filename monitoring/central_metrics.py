"""Metrics the central service exposes on ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Reading time -> commit: sub-millisecond on a quiet broker, minutes after an outage backlog.
LAG_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True, slots=True)
class CentralMetrics:
    ingested: Counter
    duplicates: Counter
    gaps: Counter
    missing: Gauge
    rejected: Counter
    lag: Histogram
    batch_size: Histogram
    write_errors: Counter
    store_disk_full: Gauge
    store_disk_free: Gauge
    agents_online: Gauge
    broker_connected: Gauge
    replay_requests: Counter
    agent_resets: Counter
    api_rate_limited: Counter
    alarms_open: Gauge
    alarm_latency: Histogram
    alarm_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> CentralMetrics:
        return cls(
            ingested=Counter(
                "precinct_ingest_messages_total",
                "Data messages stored (each agent/epoch/seq once)",
                ["class"],
                registry=registry,
            ),
            duplicates=Counter(
                "precinct_ingest_duplicates_total",
                "Data messages received again for an agent/epoch/seq already stored",
                registry=registry,
            ),
            gaps=Counter(
                "precinct_ingest_gaps_total",
                "Times an agent's sequence jumped ahead of the next expected number",
                registry=registry,
            ),
            missing=Gauge(
                "precinct_ingest_missing_messages",
                "Numbers below the highest of each agent's epochs that are not stored, summed",
                registry=registry,
            ),
            rejected=Counter(
                "precinct_ingest_rejected_total",
                "Messages quarantined, by reason",
                ["reason"],
                registry=registry,
            ),
            lag=Histogram(
                "precinct_ingest_lag_seconds",
                "Reading time to commit in the store",
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "precinct_ingest_batch_messages",
                "Messages per store commit",
                buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                registry=registry,
            ),
            write_errors=Counter(
                "precinct_ingest_write_errors_total",
                "Store commits that failed and were retried (nothing is acknowledged before)",
                registry=registry,
            ),
            store_disk_full=Gauge(
                "precinct_store_disk_full",
                "1 while the store's disk is full: nothing is acknowledged until it commits again",
                registry=registry,
            ),
            store_disk_free=Gauge(
                "precinct_store_disk_free_bytes",
                "Bytes free for an unprivileged writer on the store's file system",
                registry=registry,
            ),
            agents_online=Gauge(
                "precinct_agents_online", "Agents whose last status is online", registry=registry
            ),
            broker_connected=Gauge(
                "precinct_ingest_connected",
                "1 while ingest is connected to the broker",
                registry=registry,
            ),
            replay_requests=Counter(
                "precinct_ingest_replay_requests_total",
                "Ranges of missing messages an agent was asked to publish again",
                registry=registry,
            ),
            agent_resets=Counter(
                "precinct_ingest_agent_resets_total",
                "Agents that came back with a new outbox epoch (a wiped or replaced disk)",
                registry=registry,
            ),
            api_rate_limited=Counter(
                "precinct_api_rate_limited_total",
                "API requests answered 429, by limit (token: one token's requests; "
                "auth_failure: failed authentications from one client address)",
                ["reason"],
                registry=registry,
            ),
            alarms_open=Gauge(
                "precinct_alarms_open",
                "Alarms open (raised, neither acknowledged nor cleared), by kind and severity",
                ["kind", "severity"],
                registry=registry,
            ),
            alarm_latency=Histogram(
                "precinct_alarm_latency_seconds",
                "A device event's reading time to the commit of the alarm it raised",
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            alarm_errors=Counter(
                "precinct_alarm_derivation_errors_total",
                "Alarm derivation runs that did not finish (retried from the stored cursors)",
                registry=registry,
            ),
        )
