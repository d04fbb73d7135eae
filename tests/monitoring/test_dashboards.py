"""The committed dashboards: what the generator writes, queries the catalog can answer, and JSON
Grafana can import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from monitoring import dashboards
from monitoring.catalog import metric_catalog
from monitoring.dashboard_queries import dashboard_problems, dashboard_queries

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("centre.json", "agent.json", "broker.json")


def committed(name: str) -> dict[str, Any]:
    board = json.loads((dashboards.DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(board, dict)
    return board


def non_row_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_generator_writes() -> None:
    generated = dashboards.render()
    assert sorted(generated) == sorted(NAMES)
    stale = dashboards.stale_files(dashboards.DASHBOARDS_DIR)
    assert not stale, f"{stale} differ from the generator: run {dashboards.REGENERATE}"


def test_check_mode_finds_an_edited_file(tmp_path: Path) -> None:
    assert dashboards.main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
    assert dashboards.main(["--dir", str(tmp_path), "--check"]) == 0
    edited = tmp_path / "broker.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Heap", "Heep"), "utf-8")
    assert dashboards.stale_files(tmp_path) == ["broker.json"]
    assert dashboards.main(["--dir", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_every_query_names_catalog_metrics_and_their_labels(name: str) -> None:
    board = committed(name)
    assert list(dashboard_queries(board)), "a dashboard without queries"
    assert dashboard_problems(board, metric_catalog()) == []


def test_the_check_fails_on_a_bad_query_in_a_dashboard() -> None:
    board = committed("centre.json")
    target = non_row_panels(board)[0]["targets"][0]
    target["expr"] = 'sum by (room) (precinct_ingest_messages_totl{agent="x"})'
    problems = dashboard_problems(board, metric_catalog())
    assert len(problems) == 1
    assert "unknown metric precinct_ingest_messages_totl" in problems[0]
    assert "Precinct: Centre" in problems[0]


def test_the_check_fails_on_a_label_the_metric_lacks() -> None:
    board = committed("broker.json")
    non_row_panels(board)[0]["targets"][0]["expr"] = (
        'sum by (agent) (precinct_broker_heap_bytes{station="s1"})'
    )
    problems = dashboard_problems(board, metric_catalog())
    assert any("has no label 'station'" in p for p in problems), problems
    assert any("'agent'" in p for p in problems), problems


def test_centre_covers_what_the_issue_names() -> None:
    exprs = " ".join(q.expr for q in dashboard_queries(committed("centre.json")))
    for metric in (
        "precinct_ingest_messages_total",
        "precinct_ingest_lag_seconds_bucket",
        "precinct_agent_up",
        "precinct_alarms_open",
        "precinct_custody_persons",
        "precinct_rooms_in_use",
        "precinct_booking_answers_total",
    ):
        assert metric in exprs
    assert 'outcome="refused"' in exprs
    assert "sum by (severity)" in exprs


def test_agent_dashboard_filters_every_query_by_its_agent_variable() -> None:
    board = committed("agent.json")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["agent"]["type"] == "query"
    assert variables["agent"]["query"] == "label_values(precinct_agent_up, agent)"
    panel_queries = [q for q in dashboard_queries(board) if q.where.startswith("panel")]
    assert panel_queries
    for query in panel_queries:
        assert 'agent=~"$agent"' in query.expr, query
    exprs = " ".join(q.expr for q in panel_queries)
    # Vans cannot be scraped: their outbox and disk come from the centre's view too.
    for metric in (
        "precinct_agent_reported_outbox_depth",
        "precinct_agent_reported_disk_full",
        "precinct_agent_outbox_depth",
        "precinct_agent_reconnects_total",
        "precinct_agent_device_errors_total",
        "precinct_agent_disk_full",
    ):
        assert metric in exprs


def test_broker_dashboard_shows_its_sys_figures() -> None:
    exprs = " ".join(q.expr for q in dashboard_queries(committed("broker.json")))
    for metric in (
        "precinct_broker_clients_connected",
        "precinct_broker_messages_stored",
        "precinct_broker_publish_dropped_total",
        "precinct_broker_heap_bytes",
        "precinct_broker_uptime_seconds",
    ):
        assert metric in exprs


@pytest.mark.parametrize("name", NAMES)
def test_json_is_importable_by_grafana(name: str) -> None:
    """As far as can be checked offline: the fields Grafana's import reads."""
    board = committed(name)
    assert isinstance(board["uid"], str)
    assert 0 < len(board["uid"]) <= 40
    assert board["uid"].replace("-", "").isalnum()
    assert board["title"].startswith("Precinct: ")
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None, "an id would overwrite another dashboard"
    variables = board["templating"]["list"]
    datasource = [v for v in variables if v["type"] == "datasource"]
    assert [(v["name"], v["query"]) for v in datasource] == [("datasource", "prometheus")]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert 0 < grid["w"] <= 24 - grid["x"], panel["title"]
        assert grid["h"] > 0
        assert grid["y"] >= 0
    panels = non_row_panels(board)
    assert panels
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["title"]
        assert panel["description"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert all(refs), panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"] for t in panel["targets"])
    for variable in variables:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"
    # Nothing points outside the closed network.
    assert "links" not in board or board["links"] == []
    text = json.dumps(board)
    assert "http://" not in text
    assert "https://" not in text


@pytest.mark.parametrize("name", NAMES)
def test_json_reads_back_into_grafanas_dashboard_model_unchanged(name: str) -> None:
    board = committed(name)
    model = DashboardModel.from_json(board)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == board


def test_uids_differ_between_dashboards() -> None:
    uids = [committed(name)["uid"] for name in NAMES]
    assert len(set(uids)) == len(uids)


def test_the_central_and_the_agent_never_import_the_dashboard_sdk() -> None:
    probe = (
        "import sys, central.cli, central.app, edge_agent.app, monitoring.catalog; "
        "print(sorted(m for m in sys.modules if m.startswith('grafana_foundation_sdk')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout.strip() == "[]"
