"""Which metrics each alert of the Prometheus rule files reads, through recording rules too:
what docs/metrics.md lists beside each metric.

A rule file is outside input: anything that is not the rule-file shape raises ``RuleFileError``
naming the file and the place, never another exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from monitoring.promql_names import metric_names
from monitoring.rule_files import RULES_DIR, RuleFileError


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: an alert's name or a recording rule's series, and the metrics its ``expr``
    selects."""

    kind: Literal["alert", "record"]
    name: str
    metrics: frozenset[str]
    source: str


def parse_rules(text: str, source: str) -> tuple[Rule, ...]:
    """Every rule in one rule file's text; ``source`` names the file in errors."""
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise RuleFileError(source, "file", f"not YAML: {exc}") from None
    if document is None:
        return ()
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        raise RuleFileError(source, "file", "no 'groups' list")
    rules: list[Rule] = []
    for g, group in enumerate(groups):
        entries = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            raise RuleFileError(source, f"groups[{g}]", "no 'rules' list")
        for r, entry in enumerate(entries):
            rules.append(_rule(entry, f"groups[{g}].rules[{r}]", source))
    return tuple(rules)


def _rule(entry: object, where: str, source: str) -> Rule:
    if not isinstance(entry, dict):
        raise RuleFileError(source, where, "not a mapping")
    alert, record, expr = entry.get("alert"), entry.get("record"), entry.get("expr")
    if isinstance(alert, str) == isinstance(record, str):
        raise RuleFileError(source, where, "needs exactly one of 'alert' or 'record' (a string)")
    # YAML reads `expr: 1` as a number; Prometheus takes it as the expression "1".
    if isinstance(expr, bool) or not isinstance(expr, str | int | float):
        raise RuleFileError(source, where, "'expr' must be a PromQL expression")
    try:
        metrics = metric_names(str(expr))
    except ValueError as exc:
        raise RuleFileError(source, where, str(exc)) from None
    if isinstance(alert, str):
        return Rule("alert", alert, metrics, source)
    assert isinstance(record, str)
    return Rule("record", record, metrics, source)


def load_rules(directory: Path = RULES_DIR) -> tuple[Rule, ...]:
    """The rules of every ``*.yml`` and ``*.yaml`` file in ``directory`` (none if it is
    missing)."""
    if not directory.is_dir():
        return ()
    files = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    found: list[Rule] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleFileError(str(path), "file", f"cannot read: {exc}") from None
        found.extend(parse_rules(text, str(path)))
    return tuple(found)


def alerts_by_metric(rules: Iterable[Rule]) -> dict[str, frozenset[str]]:
    """Each metric an alert reads, directly or through recording rules, with those alerts."""
    rules = tuple(rules)
    recorded: Mapping[str, frozenset[str]] = {
        rule.name: rule.metrics for rule in rules if rule.kind == "record"
    }
    found: dict[str, set[str]] = {}
    for rule in rules:
        if rule.kind != "alert":
            continue
        for metric in _expanded(rule.metrics, recorded):
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
