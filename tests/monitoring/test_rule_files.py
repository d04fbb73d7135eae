"""Reading rule files: the test profile's `for:` rewrite, and hostile input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitoring.rule_files import (
    AlertRule,
    RecordingRule,
    RuleFileError,
    load_alert_cases,
    load_alert_rules,
    parse_alert_cases,
    parse_alert_rules,
    parse_rules,
    with_for,
)

names = st.from_regex(r"[A-Z][a-z]{1,8}(?:[A-Z][a-z]{1,8}){0,2}", fullmatch=True)
durations = st.sampled_from(["1m", "5m", "90s", "1h", "0s"])
rule = st.fixed_dictionaries(
    {
        "alert": names,
        "expr": st.sampled_from(["up == 0", "precinct_agent_up == 0", "1"]),
        "labels": st.fixed_dictionaries({"severity": st.sampled_from(["critical", "info"])}),
        "annotations": st.fixed_dictionaries({"summary": st.text(max_size=30)}),
    },
    optional={"for": durations},
)
recording = st.fixed_dictionaries({"record": st.just("job:up:sum"), "expr": st.just("sum(up)")})
documents = st.fixed_dictionaries(
    {
        "groups": st.lists(
            st.fixed_dictionaries(
                {"name": names, "rules": st.lists(st.one_of(rule, recording), max_size=4)}
            ),
            max_size=3,
        )
    }
)


def _parses_or_refuses(parse: Callable[[str, str], object], text: str) -> None:
    """Anything but a ``RuleFileError`` naming the file escapes and fails the test."""
    try:
        parse(text, "f.yml")
    except RuleFileError as error:
        refused = error
    else:
        return
    assert refused.source == "f.yml"


@given(documents, st.sampled_from(["1s", "2s", "500ms"]))
def test_with_for_shortens_every_for_and_keeps_the_rest(document: object, short: str) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    before = parse_alert_rules(text, "f.yml")
    after = parse_alert_rules(with_for(text, short, "f.yml"), "f.yml")
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new.for_ == (short if old.for_ else "")
        assert (new.name, new.expr, new.labels, new.annotations) == (
            old.name,
            old.expr,
            old.labels,
            old.annotations,
        )


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    for parse in (parse_rules, parse_alert_rules, parse_alert_cases):
        _parses_or_refuses(parse, text)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=12,
    )
)
def test_any_yaml_shape_parses_or_is_refused_clearly(document: object) -> None:
    text = yaml.safe_dump({"groups": [document], "tests": [document]})
    for parse in (parse_rules, parse_alert_rules, parse_alert_cases):
        _parses_or_refuses(parse, text)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("groups: [", "file"),
        ("- a list", "file"),
        ("groups: {}", "groups"),
        ("groups: [{rules: 3}]", "groups[0].rules"),
        ("groups: [{rules: [{alert: A}]}]", "groups[0].rules[0]"),
        ("groups: [{rules: [{alert: A, expr: up, labels: [x]}]}]", "groups[0].rules[0].labels"),
        ("groups: [{rules: [{alert: [A], expr: up}]}]", "groups[0].rules[0].alert"),
        ("groups: [{rules: [{expr: up}]}]", "groups[0].rules[0]"),
        ("groups: [{rules: [{alert: A, record: r, expr: up}]}]", "groups[0].rules[0]"),
        ("groups: [{rules: [{record: [r], expr: up}]}]", "groups[0].rules[0].record"),
    ],
)
def test_a_malformed_rule_file_names_the_place(text: str, where: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_alert_rules(text, "bad.yml")
    assert caught.value.where == where
    assert str(caught.value).startswith("bad.yml: ")


def test_cases_read_firing_and_quiet_checks() -> None:
    text = """
tests:
  - alert_rule_test:
      - {alertname: A, eval_time: 1m}
      - {alertname: A, eval_time: 2m, exp_alerts: [{exp_labels: {severity: info}}]}
"""
    cases = parse_alert_cases(text, "t.yml")
    assert [(c.alert, c.fires) for c in cases] == [("A", False), ("A", True)]


def test_recording_rules_are_read_beside_alerts_in_file_order() -> None:
    text = """
groups:
  - name: g
    rules:
      - {record: "job:up:sum", expr: sum(up)}
      - {alert: A, expr: "job:up:sum == 0", for: 1m}
"""
    assert parse_rules(text, "r.yml") == (
        RecordingRule("job:up:sum", "sum(up)", "r.yml", "groups[0].rules[0]"),
        AlertRule("A", "job:up:sum == 0", "1m", (), (), "r.yml", "groups[0].rules[1]"),
    )
    assert [rule.name for rule in parse_alert_rules(text, "r.yml")] == ["A"]


def test_an_empty_rule_file_has_no_rules_and_keeps_its_text() -> None:
    assert parse_rules("", "empty.yml") == ()
    assert with_for("", "2s", "empty.yml") == ""


def test_an_unreadable_file_is_a_rule_file_error(tmp_path: Path) -> None:
    (tmp_path / "latin.yml").write_bytes(b"groups: [\xff]")
    for load in (load_alert_rules, load_alert_cases):
        with pytest.raises(RuleFileError, match=r"^latin\.yml: file: cannot read"):
            load(tmp_path)
