"""The Grafana dashboards (Centre, Agent, Broker), built with grafana-foundation-sdk and written as
JSON under ``monitoring/dashboards/``.

Regenerate after changing this file: ``python -m monitoring.dashboards`` (``--check`` only
compares). The SDK is a development dependency: nothing the central or the agent runs imports
this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
REGENERATE = "python -m monitoring.dashboards"

# Every panel and variable queries the Prometheus the importer picks in this variable.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
AGENT_FILTER = 'agent=~"$agent"'

# Grafana unit ids.
MESSAGES_PER_SECOND = "mps"
SECONDS = "s"
BYTES = "bytes"
COUNT = "short"
UP_DOWN = "bool_on_off"

_GREEN_THEN_RED_AT_ONE = [Threshold(None, "green"), Threshold(1, "red")]


class _Panels:
    """Numbers the panels of one dashboard in the order they are added."""

    def __init__(self) -> None:
        self._next_id = 0

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id


class _PanelBuilder(Protocol):
    """What every panel builder of the SDK has (each is its own class, without a common base
    that declares these)."""

    def id(self, id_val: int, /) -> Self: ...
    def title(self, title: str, /) -> Self: ...
    def description(self, description: str, /) -> Self: ...
    def datasource(self, datasource: DataSourceRef, /) -> Self: ...
    def unit(self, unit: str, /) -> Self: ...
    def span(self, w: int, /) -> Self: ...
    def height(self, h: int, /) -> Self: ...


_PanelT = TypeVar("_PanelT", bound=_PanelBuilder)


def _framed(
    panel: _PanelT,
    ids: _Panels,
    title: str,
    description: str,
    unit: str,
    width: int,
    height: int,
) -> _PanelT:
    """``panel`` with the next id, its texts and unit, the dashboard's Prometheus, and its
    size on Grafana's 24-column grid."""
    return (
        panel.id(ids.next_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
    )


def _query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)


def _timeseries(
    ids: _Panels,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    width: int = 12,
) -> timeseries.Panel:
    panel = _framed(timeseries.Panel(), ids, title, description, unit, width, height=8).legend(
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _stat(
    ids: _Panels,
    title: str,
    description: str,
    unit: str,
    expr: str,
    red_from_one: bool = False,
    width: int = 4,
) -> stat.Panel:
    panel = _framed(stat.Panel(), ids, title, description, unit, width, height=4).with_target(
        _query(expr).instant()
    )
    if red_from_one:
        panel = panel.thresholds(
            dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(_GREEN_THEN_RED_AT_ONE)
        )
    return panel


def _base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["precinct"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .annotation(
            # Grafana's own annotations and alerts, as every new dashboard has them.
            dashboard.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .with_variable(
            dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
        )
    )


def centre() -> DashboardModel:
    ids = _Panels()
    rate = "[$__rate_interval]"
    board = _base(
        "precinct-centre",
        "Precinct: Centre",
        "Ingest, the fleet at a glance, alarms, custody clocks, rooms and bookings.",
    )
    board = (
        board.with_row(dashboard.Row("Fleet and ingest").id(ids.next_id()))
        .with_panel(
            _stat(
                ids,
                "Agents online",
                "Agents whose last status is online.",
                COUNT,
                "sum(precinct_agent_up)",
            )
        )
        .with_panel(
            _stat(
                ids,
                "Agents offline",
                "Enrolled agents whose last status is offline (AgentOffline).",
                COUNT,
                "count(precinct_agent_up == 0) or vector(0)",
                red_from_one=True,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Devices down",
                "Devices whose last state at the centre is offline.",
                COUNT,
                "count(precinct_device_up == 0) or vector(0)",
                red_from_one=True,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Ingest connected",
                "1 while ingest is connected to the broker (IngestDisconnected).",
                UP_DOWN,
                "min(precinct_ingest_connected)",
            )
        )
        .with_panel(
            _stat(
                ids,
                "Missing messages",
                "Sequence numbers not stored below each agent's "
                "highest, summed (IngestGapsPersisting).",
                COUNT,
                "sum(precinct_ingest_missing_messages)",
                red_from_one=True,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Store disk free",
                "Bytes free on the store's file system (CentralStoreDiskLow).",
                BYTES,
                "min(precinct_store_disk_free_bytes)",
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Ingest rate",
                "Data messages stored per second, by class.",
                MESSAGES_PER_SECOND,
                [
                    _query(
                        f"sum by (class) (rate(precinct_ingest_messages_total{rate}))", "{{class}}"
                    ),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Ingest lag",
                "Reading time to commit in the store (IngestLagHigh).",
                SECONDS,
                [
                    _query(
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(precinct_ingest_lag_seconds_bucket{rate})))",
                        "p50",
                    ),
                    _query(
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(precinct_ingest_lag_seconds_bucket{rate})))",
                        "p95",
                        "B",
                    ),
                    _query(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate(precinct_ingest_lag_seconds_bucket{rate})))",
                        "p99",
                        "C",
                    ),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Rejected, duplicates and gaps",
                "Messages quarantined by reason "
                "(IngestRejectedRate), messages received again, sequence jumps.",
                MESSAGES_PER_SECOND,
                [
                    _query(
                        f"sum by (reason) (rate(precinct_ingest_rejected_total{rate}))",
                        "rejected {{reason}}",
                    ),
                    _query(f"sum(rate(precinct_ingest_duplicates_total{rate}))", "duplicates", "B"),
                    _query(f"sum(rate(precinct_ingest_gaps_total{rate}))", "gaps", "C"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Agents up",
                "Each agent's last status at the centre: 1 online, 0 offline.",
                UP_DOWN,
                [
                    _query(
                        "max by (agent, station) (precinct_agent_up)", "{{agent}} ({{station}})"
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Alarms and custody").id(ids.next_id()))
        .with_panel(
            _timeseries(
                ids,
                "Open alarms by severity",
                "Alarms raised and neither acknowledged nor cleared (AlarmUnacknowledged).",
                COUNT,
                [
                    _query("sum by (severity) (precinct_alarms_open)", "{{severity}}"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Persons in custody by clock level",
                "Persons held, by the level of "
                "their custody clock (CustodyClockRed, CustodyClockExceeded).",
                COUNT,
                [
                    _query("sum by (level) (precinct_custody_persons)", "{{level}}"),
                ],
            )
        )
        .with_row(dashboard.Row("Rooms and bookings").id(ids.next_id()))
        .with_panel(
            _timeseries(
                ids,
                "Rooms in use",
                "Rooms with a session running now, by room type.",
                COUNT,
                [_query("sum by (type) (precinct_rooms_in_use)", "{{type}}")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Booking answers per hour",
                "Booking requests answered in the past "
                "hour, by outcome: placed, waitlisted, refused.",
                COUNT,
                [
                    _query(
                        "sum by (outcome) (increase(precinct_booking_answers_total[1h]))",
                        "{{outcome}}",
                    ),
                ],
            )
        )
        .with_panel(
            _stat(
                ids,
                "Refused today",
                "Booking requests refused in the past 24 hours.",
                COUNT,
                'sum(increase(precinct_booking_answers_total{outcome="refused"}[24h])) '
                "or vector(0)",
            )
        )
        .with_panel(
            _stat(
                ids,
                "Unplaced persons",
                "Persons of active bookings the plan could not place.",
                COUNT,
                "sum(precinct_plan_unassigned_persons)",
                red_from_one=True,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Plan violations (24 h)",
                "Hard-rule violations the plan checker found (PlanViolation; must stay 0).",
                COUNT,
                "sum(increase(precinct_plan_violations_total[24h])) or vector(0)",
                red_from_one=True,
            )
        )
    )
    return board.build()


def agent() -> DashboardModel:
    ids = _Panels()
    rate = "[$__rate_interval]"
    board = _base(
        "precinct-agent",
        "Precinct: Agent",
        "One agent or several: what the centre hears from them (vans on mobile links included) "
        "and what their own /metrics say where Prometheus can scrape them.",
    ).with_variable(
        dashboard.QueryVariable("agent")
        .label("Agent")
        .datasource(DATASOURCE)
        .query("label_values(precinct_agent_up, agent)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )
    board = (
        board.with_row(dashboard.Row("As the centre hears it").id(ids.next_id()))
        .with_panel(
            _timeseries(
                ids,
                "Up",
                "The agent's last status at the centre: 1 online, 0 offline (AgentOffline).",
                UP_DOWN,
                [
                    _query(f"max by (agent) (precinct_agent_up{{{AGENT_FILTER}}})", "{{agent}}"),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Since last heard",
                "Time since the centre last received anything from the agent.",
                SECONDS,
                [
                    _query(
                        "time() - max by (agent) "
                        f"(precinct_agent_last_seen_timestamp_seconds{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Missing messages",
                "Sequence numbers below the agent's highest not "
                "stored at the centre (IngestGapsPersisting).",
                COUNT,
                [
                    _query(
                        f"max by (agent) (precinct_agent_missing_messages{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Outbox depth (reported)",
                "Messages not yet acknowledged, as the "
                "agent's last health report said (AgentOutboxBacklog).",
                COUNT,
                [
                    _query(
                        f"max by (agent) (precinct_agent_reported_outbox_depth{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Outbox oldest (reported)",
                "Age of the oldest unacknowledged "
                "message at the last health report (AgentOutboxOldest).",
                SECONDS,
                [
                    _query(
                        "max by (agent) (precinct_agent_reported_outbox_oldest_age_"
                        f"seconds{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Disk full (reported)",
                "1 if the last health report said the outbox disk is full (AgentDiskFull).",
                UP_DOWN,
                [
                    _query(
                        f"max by (agent) (precinct_agent_reported_disk_full{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Since last health report",
                "Age of the last health report that "
                "reached the centre: the reported figures are this old.",
                SECONDS,
                [
                    _query(
                        "time() - max by (agent) "
                        f"(precinct_agent_health_timestamp_seconds{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Certificate expires in",
                "Time left on the agent's client "
                "certificate, as it last reported (AgentCertificateExpiresSoon).",
                SECONDS,
                [
                    _query(
                        "min by (agent) (precinct_agent_reported_certificate_expiry_"
                        f"timestamp_seconds{{{AGENT_FILTER}}}) - time()",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Devices down",
                "Devices whose last state at the centre is offline, by class (DeviceSilent).",
                COUNT,
                [
                    _query(
                        f"sum by (agent, class) (1 - precinct_device_up{{{AGENT_FILTER}}})",
                        "{{agent}} {{class}}",
                    ),
                ],
                width=8,
            )
        )
        .with_row(dashboard.Row("Scraped from the agent").id(ids.next_id()))
        .with_panel(
            _timeseries(
                ids,
                "Outbox depth",
                "Messages waiting in the outbox, by class.",
                COUNT,
                [
                    _query(
                        f"sum by (agent, class) (precinct_agent_outbox_depth{{{AGENT_FILTER}}})",
                        "{{agent}} {{class}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Outbox oldest",
                "Age of the oldest message waiting in the outbox.",
                SECONDS,
                [
                    _query(
                        "max by (agent) "
                        f"(precinct_agent_outbox_oldest_age_seconds{{{AGENT_FILTER}}})",
                        "{{agent}}",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Disk and outbox full",
                "1 while the outbox's disk is full or the outbox refuses telemetry at its bound.",
                UP_DOWN,
                [
                    _query(
                        f"max by (agent) (precinct_agent_disk_full{{{AGENT_FILTER}}})",
                        "{{agent}} disk full",
                    ),
                    _query(
                        f"max by (agent) (precinct_agent_outbox_full{{{AGENT_FILTER}}})",
                        "{{agent}} outbox full",
                        "B",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Published and dropped",
                "Messages the broker acknowledged, and "
                "messages dropped before publishing by reason.",
                MESSAGES_PER_SECOND,
                [
                    _query(
                        "sum by (agent) "
                        f"(rate(precinct_agent_published_total{{{AGENT_FILTER}}}{rate}))",
                        "{{agent}} published",
                    ),
                    _query(
                        "sum by (agent, reason) "
                        f"(rate(precinct_agent_dropped_total{{{AGENT_FILTER}}}{rate}))",
                        "{{agent}} dropped {{reason}}",
                        "B",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Connection",
                "1 while connected to the broker, and reconnection attempts in the past hour.",
                COUNT,
                [
                    _query(
                        f"max by (agent) (precinct_agent_connected{{{AGENT_FILTER}}})",
                        "{{agent}} connected",
                    ),
                    _query(
                        "sum by (agent) (increase("
                        f"precinct_agent_reconnects_total{{{AGENT_FILTER}}}[1h]))",
                        "{{agent}} reconnects",
                        "B",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Device errors per hour",
                "Device errors by device and kind, and driver restarts, in the past hour.",
                COUNT,
                [
                    _query(
                        "sum by (agent, device, kind) (increase("
                        f"precinct_agent_device_errors_total{{{AGENT_FILTER}}}[1h]))",
                        "{{agent}} {{device}} {{kind}}",
                    ),
                    _query(
                        "sum by (agent, device) (increase("
                        f"precinct_agent_device_restarts_total{{{AGENT_FILTER}}}[1h]))",
                        "{{agent}} {{device}} restarts",
                        "B",
                    ),
                ],
                width=8,
            )
        )
    )
    return board.build()


def broker() -> DashboardModel:
    ids = _Panels()
    rate = "[$__rate_interval]"
    board = _base(
        "precinct-broker",
        "Precinct: Broker",
        "Mosquitto as the central reads it from $SYS: clients, stored messages, dropped "
        "publishes (data loss), heap and uptime.",
    )
    board = (
        board.with_row(dashboard.Row("Broker").id(ids.next_id()))
        .with_panel(
            _stat(
                ids,
                "Dropped publishes (24 h)",
                "Publishes the broker dropped: data loss (BrokerDroppedPublishes).",
                COUNT,
                "sum(increase(precinct_broker_publish_dropped_total[24h])) or vector(0)",
                red_from_one=True,
                width=6,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Since last $SYS update",
                "Time since the central last heard the broker's "
                "$SYS topics (BrokerDown when stale).",
                SECONDS,
                "time() - max(precinct_broker_sys_last_update_timestamp_seconds)",
                width=6,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Uptime",
                "Time since the broker started.",
                SECONDS,
                "max(precinct_broker_uptime_seconds)",
                width=6,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Clients connected",
                "Clients connected to the broker now.",
                COUNT,
                "max(precinct_broker_clients_connected)",
                width=6,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Clients connected",
                "Clients connected to the broker.",
                COUNT,
                [
                    _query("max(precinct_broker_clients_connected)", "clients"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Messages stored",
                "Messages the broker holds, retained and queued.",
                COUNT,
                [_query("max(precinct_broker_messages_stored)", "stored")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Dropped publishes",
                "Publishes dropped per second: queues or inflight limits full.",
                MESSAGES_PER_SECOND,
                [
                    _query(f"sum(rate(precinct_broker_publish_dropped_total{rate}))", "dropped"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Heap",
                "The broker's heap in use.",
                BYTES,
                [
                    _query("max(precinct_broker_heap_bytes)", "heap"),
                ],
            )
        )
    )
    return board.build()


def render() -> dict[str, str]:
    """Each dashboard's file name and JSON text, as committed."""
    boards = {"centre.json": centre(), "agent.json": agent(), "broker.json": broker()}
    return {
        name: json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
        for name, board in boards.items()
    }


def stale_files(directory: Path) -> list[str]:
    """The dashboard files under ``directory`` that differ from what this module generates."""
    stale = []
    for name, text in render().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DASHBOARDS_DIR, help="where the JSON goes")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a file differs; write nothing"
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if args.check:
        stale = stale_files(directory)
        for name in stale:
            print(f"{directory / name} is out of date: run {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (directory / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
