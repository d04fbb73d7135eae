"""The dashboard query check on small hand-made dashboards, and on hostile JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.catalog import MetricInfo, metric_catalog
from monitoring.dashboard_queries import (
    Query,
    allowed_labels,
    dashboard_problems,
    dashboard_queries,
    metrics_used,
    parse_label_values,
    promql_of,
    query_problems,
)

CATALOG = (
    MetricInfo("demo_things_total", "counter", "Things", ("kind",), "central"),
    MetricInfo("demo_wait_seconds", "histogram", "Waits", (), "central"),
    MetricInfo("demo_queue_depth", "gauge", "Queue", ("class",), "agent"),
)
ALLOWED = allowed_labels(CATALOG)


def problems(expr: str, legend: frozenset[str] = frozenset()) -> list[str]:
    return query_problems(Query("D", "panel 'p'", expr, legend), ALLOWED)


def board(*exprs: str, variable: str | None = None) -> dict[str, Any]:
    targets = [{"refId": chr(65 + i), "expr": e} for i, e in enumerate(exprs)]
    templating = [{"type": "query", "name": "v", "query": variable}] if variable else []
    return {
        "title": "D",
        "panels": [
            {"type": "row", "title": "r", "panels": [{"title": "inside", "targets": targets}]}
        ],
        "templating": {"list": templating},
    }


def test_good_queries_pass() -> None:
    assert problems("sum by (kind) (rate(demo_things_total[$__rate_interval]))") == []
    assert (
        problems("histogram_quantile(0.9, sum by (le) (rate(demo_wait_seconds_bucket[5m])))") == []
    )
    assert problems('demo_queue_depth{agent=~"$agent", class="event", instance="a:1"}') == []
    assert problems("up == 0") == []
    assert problems("time() - vector(1)") == []


def test_unknown_metric_fails() -> None:
    assert problems("rate(demo_thing_total[5m])") == [
        "D: panel 'p': unknown metric demo_thing_total"
    ]


def test_histogram_family_name_alone_is_not_a_series() -> None:
    assert problems("demo_wait_seconds") == ["D: panel 'p': unknown metric demo_wait_seconds"]


def test_label_in_matcher_must_exist() -> None:
    assert problems('demo_things_total{class="x"}') == [
        "D: panel 'p': demo_things_total has no label 'class'"
    ]


def test_agent_label_only_on_agent_scraped_metrics() -> None:
    assert problems('demo_things_total{agent="a"}') != []
    assert problems('demo_queue_depth{agent="a"}') == []


def test_le_only_on_buckets() -> None:
    assert problems('demo_wait_seconds_count{le="1"}') != []


def test_grouping_label_must_exist() -> None:
    found = problems("sum by (station) (demo_things_total)")
    assert found == ["D: panel 'p': demo_things_total has no label 'station' (in sum by)"]


def test_grouping_and_join_labels_must_exist_on_every_series_they_apply_to() -> None:
    # A series without the label would fall into one group without it.
    assert problems("sum by (kind) (demo_things_total or demo_queue_depth)") == [
        "D: panel 'p': demo_queue_depth has no label 'kind' (in sum by)"
    ]
    assert problems("demo_queue_depth * on (class) group_left (kind) demo_things_total") == [
        "D: panel 'p': demo_things_total has no label 'class' (in on)"
    ]
    assert problems("demo_things_total * ignoring (kind) group_left (room) demo_queue_depth") == [
        "D: panel 'p': demo_queue_depth has no label 'kind' (in ignoring)",
        "D: panel 'p': demo_queue_depth has no label 'room' (in group_left)",
    ]


def test_legend_label_must_exist() -> None:
    assert problems("demo_things_total", frozenset({"kind"})) == []
    assert problems("demo_things_total", frozenset({"room"})) != []


def test_unparsable_query_fails_with_a_message() -> None:
    found = problems("sum(rate(demo_things_total[5m])")
    assert len(found) == 1
    assert "not PromQL" in found[0]


def test_nameless_selector_fails() -> None:
    assert problems('{__name__=~"demo_.*"}') == ["D: panel 'p': a selector without a metric name"]


def test_queries_inside_collapsed_rows_and_variables_are_checked() -> None:
    found = dashboard_problems(
        board("demo_things_total", "nope_total", variable="label_values(demo_queue_depth, room)"),
        CATALOG,
    )
    assert found == [
        "D: panel 'inside' target B: unknown metric nope_total",
        "D: variable 'v': lists label 'room', which no series here has",
    ]
    assert metrics_used(board("demo_things_total", "x(")) == {"demo_things_total"}


def test_the_real_catalog_allows_prometheus_up() -> None:
    assert (
        query_problems(Query("D", "w", "sum by (job) (up)"), allowed_labels(metric_catalog())) == []
    )


names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


@given(names, names)
def test_label_values_round_trip(metric: str, label: str) -> None:
    assert parse_label_values(f"label_values({metric}, {label})") == (metric, label)
    assert parse_label_values(f'label_values( {metric}{{a="b"}} ,{label} )') == (
        f'{metric}{{a="b"}}',
        label,
    )


@given(st.text(max_size=60))
def test_label_values_parser_never_raises(text: str) -> None:
    found = parse_label_values(text)
    assert found is None or (found[0] and found[1])


@given(st.sampled_from(["$__rate_interval", "${__rate_interval}", "$__interval", "$__range"]))
def test_range_variables_become_a_duration(variable: str) -> None:
    assert promql_of(f"rate(x[{variable}])") == "rate(x[5m])"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "panels",
                    "targets",
                    "expr",
                    "title",
                    "templating",
                    "list",
                    "type",
                    "query",
                    "refId",
                    "legendFormat",
                    "name",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["title", "panels", "templating"]), json_values))
def test_hostile_dashboard_json_gives_problems_not_exceptions(board: dict[str, Any]) -> None:
    found = dashboard_problems(board, CATALOG)
    assert all(isinstance(p, str) for p in found)
    assert isinstance(metrics_used(board), frozenset)
    assert len(list(dashboard_queries(board))) >= 0
