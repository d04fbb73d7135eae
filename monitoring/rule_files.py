"""The shipped rule files (alerting and recording rules) and their promtool unit tests, read as
data: the one reader of their shape, for the rules' lint, the short-``for:`` test profile and the
metrics reference.

Parsing takes text and returns frozen values (no I/O); the ``load_`` functions only read the
files of one directory. A file that is not what Prometheus expects raises ``RuleFileError``
naming the file and the place, never a bare ``KeyError``, ``yaml.YAMLError`` or
``UnicodeDecodeError``.

``with_for`` is the test profile: the same rules with every ``for:`` set to one short duration,
so that a test with a real Prometheus sees an alert fire in seconds. The shipped files stay what
``promtool check rules`` checks and what production loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import yaml

RULE_SUFFIX = ".yml"
RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_TESTS_DIR = RULES_DIR / "tests"


class RuleFileError(ValueError):
    """A rule or rule-test file that does not have the expected shape."""

    def __init__(self, source: str, where: str, reason: str) -> None:
        super().__init__(f"{source}: {where}: {reason}")
        self.source = source
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alerting rule; ``for_`` is ``""`` when the rule fires on its first evaluation.
    ``where`` is its place in ``source`` (``groups[0].rules[2]``), for messages."""

    name: str
    expr: str
    for_: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    source: str
    where: str

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """One recording rule: the series ``name`` it records from ``expr``."""

    name: str
    expr: str
    source: str
    where: str


Rule: TypeAlias = AlertRule | RecordingRule


@dataclass(frozen=True, slots=True)
class AlertCase:
    """One ``alert_rule_test`` entry: the alert checked and whether it is expected to fire."""

    alert: str
    fires: bool
    source: str


def _load_yaml(text: str, source: str) -> object:
    try:
        return yaml.safe_load(text)
    # A deeply nested flow collection exhausts the parser's recursion before it finds an error.
    except (yaml.YAMLError, RecursionError) as exc:
        raise RuleFileError(source, "file", f"not YAML ({exc})") from None


def _mapping(value: object, source: str, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise RuleFileError(source, where, "expected a mapping with text keys")
    return value


def _list(value: object, source: str, where: str) -> list[object]:
    if not isinstance(value, list):
        raise RuleFileError(source, where, "expected a list")
    return value


def _text(value: object, source: str, where: str) -> str:
    # YAML reads `for: 5m` as text but `for: 0` or `expr: 1` as numbers: both are valid rules.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RuleFileError(source, where, "expected text")
    return str(value)


def _pairs(value: object, source: str, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    mapping = _mapping(value, source, where)
    return tuple((key, _text(v, source, f"{where}.{key}")) for key, v in mapping.items())


def _rule_entries(document: object, source: str) -> list[tuple[str, Mapping[str, object]]]:
    """Every rule of a rule file with its place (``groups[0].rules[2]``); an empty file has
    none, as Prometheus reads it."""
    if document is None:
        return []
    top = _mapping(document, source, "file")
    found: list[tuple[str, Mapping[str, object]]] = []
    for g, group in enumerate(_list(top.get("groups"), source, "groups")):
        group_at = f"groups[{g}]"
        rules = _mapping(group, source, group_at).get("rules")
        for r, rule in enumerate(_list(rules, source, f"{group_at}.rules")):
            at = f"{group_at}.rules[{r}]"
            found.append((at, _mapping(rule, source, at)))
    return found


def _rule(rule: Mapping[str, object], source: str, at: str) -> Rule:
    if ("alert" in rule) == ("record" in rule):
        raise RuleFileError(source, at, "needs exactly one of 'alert' or 'record'")
    if "expr" not in rule:
        raise RuleFileError(source, at, "a rule without expr")
    expr = _text(rule["expr"], source, f"{at}.expr")
    if "record" in rule:
        return RecordingRule(_text(rule["record"], source, f"{at}.record"), expr, source, at)
    return AlertRule(
        name=_text(rule["alert"], source, f"{at}.alert"),
        expr=expr,
        for_=_text(rule.get("for", ""), source, f"{at}.for"),
        labels=_pairs(rule.get("labels"), source, f"{at}.labels"),
        annotations=_pairs(rule.get("annotations"), source, f"{at}.annotations"),
        source=source,
        where=at,
    )


def parse_rules(text: str, source: str) -> tuple[Rule, ...]:
    """The alerting and recording rules of one Prometheus rule file, in file order."""
    return tuple(
        _rule(rule, source, at) for at, rule in _rule_entries(_load_yaml(text, source), source)
    )


def parse_alert_rules(text: str, source: str) -> tuple[AlertRule, ...]:
    """The alerting rules of one Prometheus rule file (recording rules are left out)."""
    return tuple(rule for rule in parse_rules(text, source) if isinstance(rule, AlertRule))


def with_for(text: str, duration: str, source: str) -> str:
    """The rule file ``text`` with every alert's ``for:`` set to ``duration``; alerts without
    one (they fire on their first evaluation) stay without."""
    document = _load_yaml(text, source)
    if document is None:
        return text
    for _, rule in _rule_entries(document, source):
        if "alert" in rule and "for" in rule:
            rule["for"] = duration  # type: ignore[index]  # a dict read by safe_load
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def parse_alert_cases(text: str, source: str) -> tuple[AlertCase, ...]:
    """The alert checks of one ``promtool test rules`` file."""
    top = _mapping(_load_yaml(text, source), source, "file")
    found: list[AlertCase] = []
    for t, test in enumerate(_list(top.get("tests"), source, "tests")):
        at = f"tests[{t}]"
        cases = _mapping(test, source, at).get("alert_rule_test", [])
        for c, case in enumerate(_list(cases, source, f"{at}.alert_rule_test")):
            case_at = f"{at}.alert_rule_test[{c}]"
            entry = _mapping(case, source, case_at)
            expected = _list(entry.get("exp_alerts") or [], source, f"{case_at}.exp_alerts")
            name = _text(entry.get("alertname"), source, f"{case_at}.alertname")
            found.append(AlertCase(name, bool(expected), source))
    return tuple(found)


def rule_files(directory: Path) -> tuple[Path, ...]:
    """The rule files directly in ``directory``: those the shipped scrape configuration's
    ``rule_files: [rules/*.yml]`` loads (none if it is missing)."""
    return tuple(sorted(directory.glob(f"*{RULE_SUFFIX}")))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(path.name, "file", f"cannot read ({exc})") from None


def load_rules(directory: Path) -> tuple[Rule, ...]:
    """Every alerting and recording rule of the rule files directly in ``directory``."""
    return tuple(
        rule for path in rule_files(directory) for rule in parse_rules(_read(path), path.name)
    )


def load_alert_rules(directory: Path) -> tuple[AlertRule, ...]:
    """Every alert of the rule files directly in ``directory``."""
    return tuple(rule for rule in load_rules(directory) if isinstance(rule, AlertRule))


def load_alert_cases(directory: Path) -> tuple[AlertCase, ...]:
    """Every alert check of the promtool test files directly in ``directory``."""
    return tuple(
        case for path in rule_files(directory) for case in parse_alert_cases(_read(path), path.name)
    )
