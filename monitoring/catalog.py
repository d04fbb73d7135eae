"""Every metric Precinct exports, read from the registries themselves: what the alert-rule lint,
the dashboards' checks and ``docs/metrics.md`` compare against, so none of them can drift."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from monitoring.agent_metrics import AgentMetrics
from monitoring.central_metrics import CentralMetrics
from monitoring.fleet_metrics import BROKER_METRICS, FLEET_METRICS, MetricSpec
from monitoring.planning_metrics import PlanningMetrics

Side = Literal["central", "agent"]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One metric family: ``name`` as exposed (a counter's with ``_total``)."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...]
    side: Side

    def series_names(self) -> tuple[str, ...]:
        """The sample names a query may use."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _wrapped(metrics: object, side: Side) -> Iterator[MetricInfo]:
    for field in fields(metrics):  # type: ignore[arg-type]
        metric = getattr(metrics, field.name)
        assert isinstance(metric, MetricWrapperBase)
        name = metric._name
        kind = str(metric._type)
        if kind == "counter":
            name = f"{name}_total"
        yield MetricInfo(name, kind, metric._documentation, tuple(metric._labelnames), side)


def _specified(specs: tuple[MetricSpec, ...]) -> Iterator[MetricInfo]:
    for spec in specs:
        name = f"{spec.name}_total" if spec.type == "counter" else spec.name
        yield MetricInfo(name, spec.type, spec.help, spec.labels, "central")


def metric_catalog() -> tuple[MetricInfo, ...]:
    """Every metric of the central's and the agent's ``/metrics``, sorted by name."""
    found = [
        *_wrapped(CentralMetrics.create(CollectorRegistry()), "central"),
        *_wrapped(PlanningMetrics.create(CollectorRegistry()), "central"),
        *_specified(FLEET_METRICS),
        *_specified(BROKER_METRICS),
        *_wrapped(AgentMetrics.create(CollectorRegistry()), "agent"),
    ]
    return tuple(sorted(found, key=lambda m: m.name))


def series_names() -> frozenset[str]:
    """Every sample name a rule or dashboard query may select."""
    return frozenset(s for m in metric_catalog() for s in m.series_names())
