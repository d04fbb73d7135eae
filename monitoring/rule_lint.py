"""The house rules for alerts, as pure checks over parsed rules: what ``promtool check rules``
cannot know (our names, severities, runbooks, metrics and tests).

``lint_alerts`` returns every problem found, each naming the alert, so one run lists them all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitoring.catalog import MetricInfo
from monitoring.promql_labels import label_uses
from monitoring.promql_names import metric_names
from monitoring.rule_files import AlertCase, AlertRule

SEVERITIES = frozenset({"critical", "warning", "info"})
ANNOTATIONS = ("summary", "description", "runbook")
RUNBOOK_DOCUMENT = "docs/operations.md"
# Every scraped series carries its target's labels; `le` is a histogram bucket's bound.
TARGET_LABELS = frozenset({"job", "instance"})
# Prometheus' own series that rules may select: `up` is written for every scrape.
PROMETHEUS_SERIES: Mapping[str, frozenset[str]] = {"up": frozenset()}

_CAMEL_CASE = re.compile(r"(?:[A-Z][a-z0-9]+)+")
_TEMPLATE_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Problem:
    alert: str
    message: str

    def __str__(self) -> str:
        return f"{self.alert}: {self.message}"


def series_labels(catalog: Iterable[MetricInfo]) -> dict[str, frozenset[str]]:
    """Each sample name a query may select, with the labels its series carry once scraped."""
    found: dict[str, frozenset[str]] = {
        name: labels | TARGET_LABELS for name, labels in PROMETHEUS_SERIES.items()
    }
    for metric in catalog:
        for name in metric.series_names():
            extra = {"le"} if name.endswith("_bucket") and metric.type == "histogram" else set()
            found[name] = frozenset(metric.labels) | TARGET_LABELS | extra
    return found


def markdown_anchors(markdown: str) -> frozenset[str]:
    """The anchors of a Markdown document's headings, as GitHub and most renderers make them
    (lower case, punctuation dropped, spaces to hyphens)."""
    anchors: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_fence:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return frozenset(anchors)


def _lint_one(
    rule: AlertRule, series: Mapping[str, frozenset[str]], anchors: frozenset[str]
) -> Iterable[str]:
    if not _CAMEL_CASE.fullmatch(rule.name):
        yield "the name is not CamelCase"
    severity = rule.label("severity")
    if severity not in SEVERITIES:
        yield f"severity {severity!r} is not one of {sorted(SEVERITIES)}"
    for key in ANNOTATIONS:
        if not (rule.annotation(key) or "").strip():
            yield f"no {key} annotation"
    runbook = rule.annotation("runbook") or ""
    document, _, anchor = runbook.partition("#")
    if runbook and (document != RUNBOOK_DOCUMENT or anchor not in anchors):
        yield f"runbook {runbook!r} is not a heading of {RUNBOOK_DOCUMENT}"
    try:
        names = metric_names(rule.expr)
        uses = label_uses(rule.expr)
    except ValueError as exc:
        yield str(exc)
        return
    for name in sorted(names - series.keys()):
        yield f"metric {name} is not exported by either side"
    for metric, label in sorted({(use.metric, use.label) for use in uses}):
        if metric in series and label not in series[metric]:
            yield f"label {label} is not a label of {metric}"
    known = frozenset().union(*(series.get(n, frozenset()) for n in names)) | TARGET_LABELS
    for _, text in rule.annotations:
        for label in sorted(set(_TEMPLATE_LABEL.findall(text)) - known):
            yield f"an annotation uses $labels.{label}, which no metric of the rule has"


def lint_alerts(
    rules: Iterable[AlertRule],
    catalog: Iterable[MetricInfo],
    runbook_markdown: str,
    cases: Iterable[AlertCase],
) -> tuple[Problem, ...]:
    """Every breach of the house rules among ``rules``: names, severity, annotations, runbook
    anchors in ``runbook_markdown``, metrics and labels against ``catalog``, and a promtool
    unit test (in ``cases``) that fires each alert and one that does not."""
    rules = tuple(rules)
    series = series_labels(catalog)
    anchors = markdown_anchors(runbook_markdown)
    outcomes: dict[str, set[bool]] = {}
    for case in cases:
        outcomes.setdefault(case.alert, set()).add(case.fires)
    problems: list[Problem] = []
    for name, count in Counter(r.name for r in rules).items():
        if count > 1:
            problems.append(Problem(name, f"defined {count} times"))
    for rule in rules:
        problems.extend(Problem(rule.name, m) for m in _lint_one(rule, series, anchors))
        tested = outcomes.get(rule.name, set())
        if True not in tested:
            problems.append(Problem(rule.name, "no promtool test in which it fires"))
        if False not in tested:
            problems.append(Problem(rule.name, "no promtool test in which it stays quiet"))
    defined = {r.name for r in rules}
    for alert in sorted(outcomes.keys() - defined):
        problems.append(Problem(alert, "a promtool test checks an alert no rule defines"))
    return tuple(problems)
