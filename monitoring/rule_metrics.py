"""Which metrics each alert of the Prometheus rule files reads, through recording rules too:
what docs/metrics.md lists beside each metric.

The rules come from ``monitoring.rule_files``, the one reader of the rule-file shape; an
expression that is not PromQL raises its ``RuleFileError`` naming the file and the place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitoring.promql_names import metric_names
from monitoring.rule_files import AlertRule, RecordingRule, Rule, RuleFileError


def metrics_read(rule: Rule) -> frozenset[str]:
    """The metrics (and recorded series) ``rule``'s expression selects."""
    try:
        return metric_names(rule.expr)
    except ValueError as exc:
        raise RuleFileError(rule.source, f"{rule.where}.expr", str(exc)) from None


def alerts_by_metric(rules: Iterable[Rule]) -> dict[str, frozenset[str]]:
    """Each metric an alert reads, directly or through recording rules, with those alerts."""
    rules = tuple(rules)
    recorded: Mapping[str, frozenset[str]] = {
        rule.name: metrics_read(rule) for rule in rules if isinstance(rule, RecordingRule)
    }
    found: dict[str, set[str]] = {}
    for rule in rules:
        if not isinstance(rule, AlertRule):
            continue
        for metric in _expanded(metrics_read(rule), recorded):
            found.setdefault(metric, set()).add(rule.name)
    return {metric: frozenset(alerts) for metric, alerts in found.items()}


def _expanded(metrics: frozenset[str], recorded: Mapping[str, frozenset[str]]) -> set[str]:
    """``metrics`` with each recorded series replaced by what it reads, transitively (a rule
    that reads itself through others stops where it started)."""
    seen: set[str] = set()
    pending = list(metrics)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(recorded.get(name, ()))
    return seen
