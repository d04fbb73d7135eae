"""Metric families built from the specifications of ``monitoring.fleet_metrics``.

The centre's fleet and broker metrics are read from its live state at each scrape, so they are
families yielded by custom collectors rather than ``prometheus_client`` metric objects; the name,
type, help and labels come from the one specification, never written twice.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from monitoring.fleet_metrics import MetricSpec

Family = CounterMetricFamily | GaugeMetricFamily


def empty_family(spec: MetricSpec) -> Family:
    """The family of ``spec`` with no samples yet."""
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def spec_named(specs: tuple[MetricSpec, ...], name: str) -> MetricSpec:
    """The specification of ``name`` (a KeyError names a metric the contract does not have)."""
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(name)
