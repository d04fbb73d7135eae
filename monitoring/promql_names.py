"""The series a PromQL expression selects, read with a real PromQL parser: what the rule and
dashboard checks compare with the metric catalog."""

from __future__ import annotations

from dataclasses import dataclass

import promql_parser


@dataclass(frozen=True, slots=True)
class Selector:
    """One vector selector: the metric name (None for a name-less ``{__name__=~...}``) and the
    labels it matches on."""

    name: str | None
    labels: frozenset[str]


def parse_promql(expression: str) -> promql_parser.Expr:
    """The syntax tree of ``expression``; raises ``ValueError`` ("not PromQL: ...") if it does
    not parse."""
    try:
        return promql_parser.parse(expression)
    except ValueError as exc:
        raise ValueError(f"not PromQL: {exc}") from None


def selectors(expression: str) -> tuple[Selector, ...]:
    """Every vector selector in ``expression``; raises ``ValueError`` if it does not parse."""
    tree = parse_promql(expression)
    found: list[Selector] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = frozenset(m.name for m in node.matchers.matchers)
            found.append(Selector(node.name, labels))
        return True

    promql_parser.walk(tree, pre_visit=visit)
    return tuple(found)


def metric_names(expression: str) -> frozenset[str]:
    """The metric names ``expression`` selects."""
    return frozenset(s.name for s in selectors(expression) if s.name is not None)
