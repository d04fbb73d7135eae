"""docs/metrics.md: regenerated and compared, and what the generator says about each metric."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring import metrics_doc
from monitoring.catalog import MetricInfo, metric_catalog
from monitoring.metrics_doc import render, unit_of

ALERTS = """
groups:
  - name: fleet
    rules:
      - alert: AgentOffline
        expr: precinct_agent_up == 0
      - record: precinct:lag_p99
        expr: histogram_quantile(0.99, sum by (le) (rate(precinct_ingest_lag_seconds_bucket[5m])))
      - alert: IngestLagHigh
        expr: precinct:lag_p99 > 60
"""


def rows(text: str) -> dict[str, list[str]]:
    """The metric table's cells by metric name."""
    found = {}
    for line in text.splitlines():
        if line.startswith("| `precinct_"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            found[cells[0].strip("`")] = cells
    return found


def test_committed_doc_is_what_the_generator_writes() -> None:
    current = metrics_doc.DOC_PATH.read_text(encoding="utf-8")
    assert current == metrics_doc.generate(), (
        f"docs/metrics.md is out of date: run {metrics_doc.REGENERATE}"
    )


def test_check_mode_fails_on_a_stale_doc(tmp_path: Path) -> None:
    out = tmp_path / "metrics.md"
    assert metrics_doc.main(["--out", str(out), "--check"]) == 1
    assert metrics_doc.main(["--out", str(out)]) == 0
    assert metrics_doc.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    assert metrics_doc.main(["--out", str(out), "--check"]) == 1


def test_every_metric_has_one_row_with_its_facts() -> None:
    catalog = metric_catalog()
    table = rows(metrics_doc.generate())
    assert sorted(table) == sorted(m.name for m in catalog)
    for metric in catalog:
        _name, kind, labels, unit, side, meaning, _alerts, _boards = table[metric.name]
        assert kind == metric.type
        assert side == metric.side
        assert meaning == " ".join(metric.help.split()).replace("|", "\\|")
        assert labels == (", ".join(f"`{label}`" for label in metric.labels) or "none")
        assert unit == unit_of(metric)


def test_alerts_from_the_rule_files_there_are_listed(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    boards = tmp_path / "boards"
    boards.mkdir()
    without = rows(metrics_doc.generate(rules, boards))
    assert {cells[6] for cells in without.values()} == {"none"}
    assert {cells[7] for cells in without.values()} == {"none"}
    (rules / "fleet.yml").write_text(ALERTS, encoding="utf-8")
    (boards / "x.json").write_text(
        json.dumps({"title": "X", "panels": [{"targets": [{"expr": "precinct_agent_up"}]}]}),
        encoding="utf-8",
    )
    table = rows(metrics_doc.generate(rules, boards))
    assert table["precinct_agent_up"][6] == "AgentOffline"
    assert table["precinct_agent_up"][7] == "X"
    # Through the recording rule, and a histogram's bucket series counts for its family.
    assert table["precinct_ingest_lag_seconds"][6] == "IngestLagHigh"
    assert table["precinct_ingest_connected"][6] == "none"


def test_dashboards_in_the_committed_json_are_listed() -> None:
    table = rows(metrics_doc.generate())
    assert table["precinct_broker_heap_bytes"][7] == "Precinct: Broker"
    assert table["precinct_agent_up"][7] == "Precinct: Agent, Precinct: Centre"
    assert table["precinct_ingest_lag_seconds"][7] == "Precinct: Centre"


def test_cardinality_bounds_are_stated() -> None:
    text = metrics_doc.generate()
    assert "| `agent` | one per enrolled agent: a district has tens |" in text
    assert "| `device` | one per configured device: a district has hundreds" in text


def test_a_label_without_a_bound_stops_the_generator() -> None:
    odd = MetricInfo("precinct_odd", "gauge", "Odd", ("person",), "central")
    with pytest.raises(ValueError, match="person"):
        render([odd], {}, {})


def test_a_bad_rule_or_dashboard_file_is_a_clear_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.md"
    (tmp_path / "bad.yml").write_text("groups: [", encoding="utf-8")
    assert metrics_doc.main(["--out", str(out), "--rules", str(tmp_path)]) == 2
    assert "bad.yml: file: not YAML" in capsys.readouterr().err
    (tmp_path / "bad.yml").unlink()
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    assert metrics_doc.main(["--out", str(out), "--dashboards", str(tmp_path)]) == 2
    assert "bad.json: not a dashboard's JSON" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "kind", "help_text", "unit"),
    [
        ("precinct_agent_last_seen_timestamp_seconds", "gauge", "When", "Unix time, seconds"),
        ("precinct_ingest_lag_seconds", "histogram", "Lag", "seconds"),
        ("precinct_store_disk_free_bytes", "gauge", "Free", "bytes"),
        ("precinct_agent_up", "gauge", "1 while online", "0 or 1"),
        ("precinct_agent_reported_disk_full", "gauge", "1 if full", "0 or 1"),
        ("precinct_no_shows_total", "counter", "No-shows", "count (use `rate` or `increase`)"),
        ("precinct_rooms_in_use", "gauge", "Rooms", "count"),
        ("precinct_custody_persons", "gauge", "Persons", "persons"),
    ],
)
def test_unit_from_the_name(name: str, kind: str, help_text: str, unit: str) -> None:
    assert unit_of(MetricInfo(name, kind, help_text, (), "central")) == unit


stems = st.from_regex(r"precinct_[a-z][a-z_]{0,20}[a-z]", fullmatch=True)


@given(stems, st.sampled_from(["gauge", "counter", "histogram"]), st.text(max_size=30))
def test_a_timestamp_is_never_read_as_a_duration(stem: str, kind: str, help_text: str) -> None:
    name = f"{stem}_timestamp_seconds" + ("_total" if kind == "counter" else "")
    assert unit_of(MetricInfo(name, kind, help_text, (), "agent")) == "Unix time, seconds"


@given(stems, st.text(max_size=30))
def test_seconds_and_bytes_win_over_the_help_text(stem: str, help_text: str) -> None:
    for suffix, unit in (("_seconds", "seconds"), ("_bytes", "bytes")):
        if (stem + suffix).endswith("_timestamp_seconds"):
            continue
        found = unit_of(MetricInfo(stem + suffix, "gauge", "1 while " + help_text, (), "agent"))
        assert found == unit


@given(st.text(max_size=80))
def test_a_help_text_never_breaks_the_table(help_text: str) -> None:
    metric = MetricInfo("precinct_x", "gauge", help_text, (), "central")
    text = render([metric], {}, {})
    row = next(line for line in text.splitlines() if line.startswith("| `precinct_x`"))
    unescaped = re.sub(r"\\.", "", row)
    assert unescaped.count("|") == 9
