"""The queries of a Grafana dashboard's JSON and their check against the metric catalog.

Works on the committed JSON, not on the generator, so it checks what Grafana imports and needs
no dashboard library: ``docs/metrics.md`` uses it to say which dashboards use a metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from monitoring.catalog import MetricInfo
from monitoring.promql_labels import MATCHER, label_uses
from monitoring.promql_names import selectors

# Prometheus attaches these to every scraped series. An agent's scrape target carries its id as
# ``agent`` (docs/operations.md, Dashboards), so the Agent dashboard can filter both sides alike.
TARGET_LABELS = frozenset({"job", "instance"})
AGENT_TARGET_LABELS = frozenset({"agent"})
# Prometheus' own series, not in any Precinct registry.
PROMETHEUS_SERIES: Mapping[str, frozenset[str]] = {"up": frozenset()}

# What Grafana puts in a range before sending the query; any valid duration parses the same.
_RANGE_VARIABLES = re.compile(
    r"\$(?:__rate_interval|__interval|__range)\b|\$\{__(?:rate_interval|interval|range)\}"
)
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?P<expr>.+?)\s*,\s*(?P<label>[A-Za-z_]\w*)\s*\)\s*$"
)
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression of a dashboard: where it is and the labels its legend names."""

    dashboard: str
    where: str
    expr: str
    legend_labels: frozenset[str] = frozenset()
    # A variable's ``label_values(expr, label)``: the label it lists.
    listed_label: str | None = None


def promql_of(expr: str) -> str:
    """``expr`` as Prometheus receives it: Grafana's range variables given a duration."""
    return _RANGE_VARIABLES.sub("5m", expr)


def parse_label_values(query: str) -> tuple[str, str] | None:
    """``label_values(EXPR, LABEL)`` as (EXPR, LABEL); None when ``query`` is not of that form."""
    found = _LABEL_VALUES.match(query)
    if found is None:
        return None
    return found["expr"], found["label"]


def dashboard_queries(dashboard: Mapping[str, object]) -> Iterator[Query]:
    """Every panel target's and query variable's expression in a dashboard's JSON model."""
    title = str(dashboard.get("title", "?"))
    for panel in _panels(dashboard.get("panels")):
        where = f"panel {panel.get('title', '?')!r}"
        targets = panel.get("targets")
        for target in targets if isinstance(targets, list) else []:
            if not isinstance(target, dict) or "expr" not in target:
                continue
            legend = str(target.get("legendFormat", ""))
            yield Query(
                title,
                f"{where} target {target.get('refId', '?')}",
                str(target["expr"]),
                frozenset(_LEGEND_LABEL.findall(legend)),
            )
    templating = dashboard.get("templating")
    variables = templating.get("list") if isinstance(templating, dict) else None
    for variable in variables if isinstance(variables, list) else []:
        if not isinstance(variable, dict) or variable.get("type") != "query":
            continue
        raw = variable.get("query")
        text = raw.get("query") if isinstance(raw, dict) else raw
        where = f"variable {variable.get('name', '?')!r}"
        parsed = parse_label_values(str(text))
        if parsed is None:
            yield Query(title, where, str(text))
        else:
            yield Query(title, where, parsed[0], listed_label=parsed[1])


def _panels(panels: object) -> Iterator[dict[str, object]]:
    for panel in panels if isinstance(panels, list) else []:
        if isinstance(panel, dict):
            yield panel
            # A collapsed row keeps its panels inside it.
            yield from _panels(panel.get("panels"))


def allowed_labels(catalog: Iterable[MetricInfo]) -> dict[str, frozenset[str]]:
    """Every series name a query may select, with the labels it may match or group on."""
    allowed = dict(PROMETHEUS_SERIES)
    for metric in catalog:
        labels = frozenset(metric.labels) | TARGET_LABELS
        if metric.side == "agent":
            labels |= AGENT_TARGET_LABELS
        for series in metric.series_names():
            allowed[series] = labels | {"le"} if series.endswith("_bucket") else labels
    return {name: labels | TARGET_LABELS for name, labels in allowed.items()}


def query_problems(query: Query, allowed: Mapping[str, frozenset[str]]) -> list[str]:
    """What is wrong with one query: it does not parse, names an unknown series, or uses a
    label (in a matcher, a grouping or a join, its legend or a variable) the series does not
    have."""
    at = f"{query.dashboard}: {query.where}"
    expression = promql_of(query.expr)
    try:
        found = selectors(expression)
        uses = label_uses(expression)
    except ValueError as exc:
        return [f"{at}: {exc}"]
    problems: list[str] = []
    known: set[str] = set()
    for selector in found:
        if selector.name is None:
            problems.append(f"{at}: a selector without a metric name")
        elif selector.name not in allowed:
            problems.append(f"{at}: unknown metric {selector.name}")
        else:
            known |= allowed[selector.name]
    if not known:
        return problems
    for use in sorted(uses, key=lambda u: (u.clause != MATCHER, u.metric, u.label, u.clause)):
        if use.metric in allowed and use.label not in allowed[use.metric]:
            context = "" if use.clause == MATCHER else f" (in {use.clause})"
            problems.append(f"{at}: {use.metric} has no label {use.label!r}{context}")
    for label in sorted(query.legend_labels - known):
        problems.append(f"{at}: the legend names {label!r}, which no series here has")
    if query.listed_label is not None and query.listed_label not in known:
        problems.append(f"{at}: lists label {query.listed_label!r}, which no series here has")
    return problems


def dashboard_problems(dashboard: Mapping[str, object], catalog: Iterable[MetricInfo]) -> list[str]:
    """Every problem of every query in one dashboard."""
    allowed = allowed_labels(catalog)
    return [p for q in dashboard_queries(dashboard) for p in query_problems(q, allowed)]


def metrics_used(dashboard: Mapping[str, object]) -> frozenset[str]:
    """The series names a dashboard's queries select (queries that do not parse are skipped:
    the check reports those)."""
    names: set[str] = set()
    for query in dashboard_queries(dashboard):
        try:
            found = selectors(promql_of(query.expr))
        except ValueError:
            continue
        names.update(s.name for s in found if s.name is not None)
    return frozenset(names)
