"""Which labels a PromQL expression relies on, per metric: the labels it matches on in a
selector, groups by (``by``/``without``), joins on (``on``/``ignoring``) or copies
(``group_left``/``group_right``). The rules' lint and the dashboards' check both check each
against the metric's labels, each with its own allowances.

A grouping or join label is charged to every metric selected beneath it. That is right for the
plain shapes alert rules use (a label Prometheus adds with ``label_replace`` or
``count_values`` would be charged wrongly; none of the rules makes one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import promql_parser

from monitoring.promql_names import parse_promql

# The clause of a use that is a selector's own matcher; the others name their clause as written
# (``sum by``, ``on``, ``group_left``, ...).
MATCHER = "matcher"


@dataclass(frozen=True, slots=True)
class LabelUse:
    """``label`` is expected on the series named ``metric``, because of ``clause``."""

    metric: str
    label: str
    clause: str


def _metrics_under(node: object) -> frozenset[str]:
    found: set[str] = set()

    def visit(inner: object) -> bool:
        if isinstance(inner, promql_parser.VectorSelector) and inner.name is not None:
            found.add(inner.name)
        return True

    promql_parser.walk(node, pre_visit=visit)  # type: ignore[arg-type]  # any node walks
    return frozenset(found)


def _charge(metrics: Iterable[str], labels: Iterable[str], clause: str) -> list[LabelUse]:
    return [LabelUse(m, label, clause) for m in metrics for label in labels]


def label_uses(expression: str) -> frozenset[LabelUse]:
    """Every (metric, label) the expression relies on; raises ``ValueError`` if it is not
    PromQL."""
    tree = parse_promql(expression)
    uses: list[LabelUse] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name is not None:
            selected = {m.name for m in node.matchers.matchers} - {"__name__"}
            uses.extend(_charge([node.name], selected, MATCHER))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            by = node.modifier.type == promql_parser.AggModifierType.By
            grouping = "by" if by else "without"
            uses.extend(
                _charge(_metrics_under(node.expr), node.modifier.labels, f"{node.op} {grouping}")
            )
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            modifier = node.modifier
            both = _metrics_under(node.lhs) | _metrics_under(node.rhs)
            if modifier.matching is not None:
                on = modifier.matching.type == promql_parser.LabelModifierType.Include
                matching = "on" if on else "ignoring"
                uses.extend(_charge(both, modifier.matching.labels, matching))
            # group_left copies labels from the right-hand ("one") side, group_right from the
            # left.
            copied = modifier.group_labels or ()
            if modifier.card == promql_parser.VectorMatchCardinality.ManyToOne:
                uses.extend(_charge(_metrics_under(node.rhs), copied, "group_left"))
            elif modifier.card == promql_parser.VectorMatchCardinality.OneToMany:
                uses.extend(_charge(_metrics_under(node.lhs), copied, "group_right"))
        return True

    promql_parser.walk(tree, pre_visit=visit)
    return frozenset(uses)
