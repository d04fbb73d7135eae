"""Which metrics each alert reads, directly or through recording rules, from the rule files
as monitoring.rule_files reads them; hostile files and expressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.rule_files import (
    AlertRule,
    RecordingRule,
    RuleFileError,
    load_rules,
    parse_rules,
)
from monitoring.rule_metrics import alerts_by_metric, metrics_read

RULES = """
groups:
  - name: ingest
    rules:
      - record: job:ingest_rate:5m
        expr: sum(rate(precinct_ingest_messages_total[5m]))
      - alert: IngestStalled
        expr: job:ingest_rate:5m == 0 and on() precinct_ingest_connected == 1
        for: 5m
        labels: {severity: warning}
      - alert: Always
        expr: 1
  - name: agents
    rules:
      - alert: AgentOffline
        expr: precinct_agent_up == 0
"""


def test_alerts_and_recording_rules_are_read() -> None:
    rules = parse_rules(RULES, "ingest.yml")
    assert [(type(r), r.name) for r in rules] == [
        (RecordingRule, "job:ingest_rate:5m"),
        (AlertRule, "IngestStalled"),
        (AlertRule, "Always"),
        (AlertRule, "AgentOffline"),
    ]
    assert metrics_read(rules[1]) == {"job:ingest_rate:5m", "precinct_ingest_connected"}
    assert metrics_read(rules[2]) == frozenset()


def test_an_alert_reads_what_its_recording_rules_read() -> None:
    found = alerts_by_metric(parse_rules(RULES, "ingest.yml"))
    assert found["precinct_ingest_messages_total"] == {"IngestStalled"}
    assert found["precinct_ingest_connected"] == {"IngestStalled"}
    assert found["precinct_agent_up"] == {"AgentOffline"}
    assert "job:ingest_rate:5m" in found


def test_recording_rules_that_read_each_other_end() -> None:
    text = """
groups:
  - name: loop
    rules:
      - {record: a, expr: b + m1}
      - {record: b, expr: a + m2}
      - {alert: A, expr: a > 0}
"""
    found = alerts_by_metric(parse_rules(text, "x.yml"))
    assert found["m1"] == {"A"}
    assert found["m2"] == {"A"}


def test_a_directory_of_files_and_none(tmp_path: Path) -> None:
    assert load_rules(tmp_path / "missing") == ()
    assert load_rules(tmp_path) == ()
    (tmp_path / "a.yml").write_text(RULES, encoding="utf-8")
    (tmp_path / "b.yml").write_text("", encoding="utf-8")
    # Not loaded by the shipped configuration's rule_files: [rules/*.yml].
    (tmp_path / "c.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "tests.txt").write_text("not rules", encoding="utf-8")
    assert len(load_rules(tmp_path)) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [", "file: not YAML"),
        ("- 1\n- 2", "file: expected a mapping"),
        ("groups: {a: 1}", "groups: expected a list"),
        ("groups: [{name: g}]", "groups[0].rules: expected a list"),
        ("groups: [{rules: [7]}]", "groups[0].rules[0]: expected a mapping"),
        ("groups: [{rules: [{expr: up}]}]", "exactly one of 'alert' or 'record'"),
        ("groups: [{rules: [{alert: A, record: r, expr: up}]}]", "exactly one"),
        ("groups: [{rules: [{alert: A}]}]", "groups[0].rules[0]: a rule without expr"),
        ("groups: [{rules: [{alert: A, expr: true}]}]", "groups[0].rules[0].expr: expected text"),
        ("groups: [{rules: [{alert: A, expr: 'sum('}]}]", "groups[0].rules[0].expr: not PromQL"),
        ("groups: [{rules: [{record: r, expr: 'sum('}]}]", "groups[0].rules[0].expr: not PromQL"),
    ],
)
def test_a_bad_file_is_named_in_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=r"^bad\.yml: ") as caught:
        alerts_by_metric(parse_rules(text, "bad.yml"))
    assert message in str(caught.value)


def test_an_unreadable_file_is_a_rule_file_error(tmp_path: Path) -> None:
    (tmp_path / "latin.yml").write_bytes(b"groups: [\xff]")
    with pytest.raises(RuleFileError, match=r"latin\.yml: file: cannot read"):
        load_rules(tmp_path)


yaml_like = st.text(
    alphabet=st.sampled_from(list("groups:rules-alertexpr []{}\n ,'\"&*!|>#%@`0123456789()=")),
    max_size=120,
)


@settings(max_examples=300)
@given(st.one_of(yaml_like, st.text(max_size=80)))
def test_any_text_is_rules_or_a_rule_file_error(text: str) -> None:
    error = None
    try:
        found = alerts_by_metric(parse_rules(text, "fuzz.yml"))
    except RuleFileError as exc:
        error = str(exc)
        found = {}
    assert error is None or error.startswith("fuzz.yml: ")
    assert all(isinstance(alerts, frozenset) for alerts in found.values())


def test_deep_nesting_is_a_rule_file_error() -> None:
    with pytest.raises(RuleFileError):
        parse_rules("[" * 100_000, "deep.yml")
