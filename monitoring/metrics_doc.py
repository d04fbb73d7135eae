"""``docs/metrics.md``: every metric of the catalog with its type, labels, unit, meaning, side, the
alerts of ``monitoring/rules/`` and the dashboards of ``monitoring/dashboards/`` that use it.

Regenerate after changing a metric, a rule or a dashboard: ``python -m monitoring.metrics_doc``
(``--check`` only compares).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from monitoring.catalog import MetricInfo, metric_catalog
from monitoring.dashboard_queries import metrics_used
from monitoring.rule_files import RULES_DIR, RuleFileError, load_rules
from monitoring.rule_metrics import alerts_by_metric

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "metrics.md"
DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
REGENERATE = "python -m monitoring.metrics_doc"

# How many values each label takes: the bound that keeps the series count of a district small.
# A label missing here stops the generator, so a new one cannot go undocumented.
LABEL_BOUNDS: Mapping[str, str] = {
    "agent": "one per enrolled agent: a district has tens",
    "station": "one per station: at most as many as agents",
    "device": "one per configured device: a district has hundreds, an agent a handful",
    "class": "message class (`event`, `telemetry`); on `precinct_device_up` the device class "
    "(cabinet, wristband, GPS)",
    "type": "room type: the fixed list of `scheduling.rooms.RoomType`",
    "kind": "alarm kind (fixed in `central.alarm_rules`); on device errors the driver's error "
    "kind, cut to 32 characters",
    "severity": "`critical`, `warning`, `info`",
    "level": "custody clock level: `green`, `yellow`, `orange`, `red`, `black`",
    "reason": "a fixed set of reasons in the code (quarantine, drop or rate-limit reasons)",
    "outcome": "a fixed set of outcomes in the code (booking answers, command outcomes)",
    "rule": "the plan checker's hard rules: a fixed list",
    "cause": "re-plan causes: a fixed list",
    "lane": "`booked`, `walk_in`",
    "operation": "allocator operations: a fixed list",
}

_UNIT_SUFFIXES = (
    ("_timestamp_seconds", "Unix time, seconds"),
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_messages", "messages"),
    ("_persons", "persons"),
    ("_depth", "messages"),
)
_BOOLEAN_HELP = ("1 while", "1 if")


def unit_of(metric: MetricInfo) -> str:
    """The unit a metric's name (or, for a 0/1 gauge, its help) declares."""
    name = metric.name.removesuffix("_total")
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    if metric.help.startswith(_BOOLEAN_HELP):
        return "0 or 1"
    if metric.type == "counter":
        return "count (use `rate` or `increase`)"
    return "count"


def _family_of(catalog: Iterable[MetricInfo]) -> dict[str, str]:
    """Each series name (a histogram's ``_bucket``, ``_sum``, ``_count``) to its metric's name."""
    return {series: m.name for m in catalog for series in m.series_names()}


def _by_metric(
    users: Mapping[str, Iterable[str]], families: Mapping[str, str]
) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for series, names in users.items():
        if series in families:
            found.setdefault(families[series], set()).update(names)
    return found


def dashboards_by_metric(directory: Path = DASHBOARDS_DIR) -> dict[str, frozenset[str]]:
    """Each series name a committed dashboard selects, with the dashboards' titles."""
    found: dict[str, set[str]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            board = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: not a dashboard's JSON: {exc}") from None
        if not isinstance(board, dict):
            raise TypeError(f"{path}: not a dashboard's JSON: not an object")
        title = str(board.get("title", path.stem))
        for series in metrics_used(board):
            found.setdefault(series, set()).add(title)
    return {series: frozenset(titles) for series, titles in found.items()}


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: on one line, its pipes and backslashes escaped."""
    one_line = " ".join(text.split())
    return one_line.replace("\\", "\\\\").replace("|", "\\|")


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def render(
    catalog: Sequence[MetricInfo],
    alerts: Mapping[str, Iterable[str]],
    dashboards: Mapping[str, Iterable[str]],
) -> str:
    """The whole of ``docs/metrics.md``; ``alerts`` and ``dashboards`` map series names to the
    alerts and dashboards that use them."""
    families = _family_of(catalog)
    alerts_of = _by_metric(alerts, families)
    dashboards_of = _by_metric(dashboards, families)
    labels_used = sorted({label for m in catalog for label in m.labels})
    undocumented = [label for label in labels_used if label not in LABEL_BOUNDS]
    if undocumented:
        raise ValueError(
            f"labels without a cardinality bound: {', '.join(undocumented)} "
            "(add them to LABEL_BOUNDS in monitoring/metrics_doc.py)"
        )
    lines = [
        "# Metrics",
        "",
        f"Generated from the registries by `{REGENERATE}`; do not edit by hand (a test "
        "regenerates it and fails on any difference).",
        "",
        "The central's `/metrics` carries the metrics of side *central*: its own, and those it "
        "derives from the agents' messages and the broker's `$SYS` topics, so a van on a mobile "
        "link that Prometheus cannot scrape is still watched. An agent's own `/metrics` "
        "(`--metrics-listen`) carries those of side *agent*. A counter is exposed with its "
        "`_total` suffix, as listed; a histogram as `_bucket`, `_sum` and `_count`.",
        "",
        "Alerts are those of `monitoring/rules/*.yml` whose expression reads the metric, "
        "directly or through a recording rule; dashboards are those of "
        "`monitoring/dashboards/` (see [operations.md](operations.md#dashboards)).",
        "",
        "## Label cardinality",
        "",
        "Nothing is labelled by a person, booking, band reading or message: every label takes "
        "values from what is enrolled or from a fixed list in the code, so a district (tens of "
        "agents, hundreds of devices) has series in proportion to its agents and devices.",
        "",
        "| label | values |",
        "|---|---|",
        *(f"| `{label}` | {_cell(LABEL_BOUNDS[label])} |" for label in labels_used),
        "",
        "## Every metric",
        "",
        "| metric | type | labels | unit | side | meaning | alerts | dashboards |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for metric in sorted(catalog, key=lambda m: m.name):
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "none"
        lines.append(
            f"| `{metric.name}` | {metric.type} | {labels} | {unit_of(metric)} | {metric.side} "
            f"| {_cell(metric.help)} | {_listed(alerts_of.get(metric.name, ()))} "
            f"| {_listed(dashboards_of.get(metric.name, ()))} |"
        )
    return "\n".join(lines) + "\n"


def generate(rules_dir: Path = RULES_DIR, dashboards_dir: Path = DASHBOARDS_DIR) -> str:
    """``docs/metrics.md`` from the registries and the rule and dashboard files there now."""
    return render(
        metric_catalog(),
        alerts_by_metric(load_rules(rules_dir)),
        dashboards_by_metric(dashboards_dir),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC_PATH, help="the document to write")
    parser.add_argument("--rules", type=Path, default=RULES_DIR, help="the alert rule files")
    parser.add_argument(
        "--dashboards", type=Path, default=DASHBOARDS_DIR, help="the dashboards' JSON files"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if it differs; write nothing")
    args = parser.parse_args(argv)
    out: Path = args.out
    try:
        text = generate(args.rules, args.dashboards)
    except (RuleFileError, ValueError, TypeError) as exc:
        print(f"cannot generate {out}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            print(f"{out} is out of date: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
