"""The labels a PromQL expression relies on, per metric and clause: what the rules' lint and
the dashboards' check both compare with the catalog."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.promql_labels import MATCHER, LabelUse, label_uses

metrics = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
labels = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    # PromQL keywords cannot stand where a label list is read.
    lambda name: name not in {"by", "without", "on", "ignoring", "bool", "offset", "and", "or"}
)


def test_every_clause_charges_the_metrics_it_applies_to() -> None:
    uses = label_uses(
        'sum by (station) (rate(a{agent="x"}[5m])) '
        "* on (station) group_left (room) max without (device) (b) "
        "/ ignoring (kind) group_right (class) c"
    )
    assert uses == {
        LabelUse("a", "agent", MATCHER),
        LabelUse("a", "station", "sum by"),
        LabelUse("b", "device", "max without"),
        LabelUse("a", "station", "on"),
        LabelUse("b", "station", "on"),
        LabelUse("b", "room", "group_left"),
        LabelUse("a", "kind", "ignoring"),
        LabelUse("b", "kind", "ignoring"),
        LabelUse("c", "kind", "ignoring"),
        # group_right copies from the left-hand side: everything left of the division.
        LabelUse("a", "class", "group_right"),
        LabelUse("b", "class", "group_right"),
    }


def test_name_only_and_nameless_selectors_rely_on_no_label() -> None:
    assert label_uses("up == 0") == frozenset()
    assert label_uses('{__name__=~"precinct_.*"}') == frozenset()


def test_not_promql_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^not PromQL"):
        label_uses("sum(")


@given(
    st.sampled_from(["sum", "max", "count", "avg"]),
    st.sampled_from(["by", "without"]),
    metrics,
    st.lists(labels, min_size=1, max_size=3, unique=True),
    st.lists(labels, max_size=3, unique=True),
)
def test_an_aggregation_charges_its_labels_and_the_matchers_to_the_metric(
    op: str, grouping: str, metric: str, grouped: list[str], matched: list[str]
) -> None:
    matchers = ",".join(f'{label}="v"' for label in matched)
    uses = label_uses(f"{op} {grouping} ({', '.join(grouped)}) ({metric}{{{matchers}}})")
    assert uses == {LabelUse(metric, label, MATCHER) for label in matched} | {
        LabelUse(metric, label, f"{op} {grouping}") for label in grouped
    }


@given(st.text(max_size=60))
def test_any_text_is_uses_or_a_value_error(text: str) -> None:
    try:
        uses = label_uses(text)
    except ValueError as exc:
        refused = str(exc)
    else:
        assert all(isinstance(use, LabelUse) for use in uses)
        return
    assert refused.startswith("not PromQL")
