"""When an unreachable broker is reported: once, then at most once per repeat interval."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.broker_outage import BrokerOutage, Failure, Recovery


def test_an_outage_is_reported_once_then_at_the_interval_then_its_end() -> None:
    outage = BrokerOutage(repeat_every=30.0)
    assert outage.connected(0.0) is None  # nothing to recover from
    assert outage.failed(100.0) == Failure(first=True, attempts=1, seconds=0.0)
    assert outage.ongoing
    assert [outage.failed(t) for t in (100.5, 101.5, 103.5, 129.9)] == [None] * 4
    assert outage.failed(130.0) == Failure(first=False, attempts=6, seconds=30.0)
    assert outage.failed(131.0) is None
    assert outage.connected(140.0) == Recovery(attempts=7, seconds=40.0)
    assert not outage.ongoing
    # The next outage starts over.
    assert outage.failed(200.0) == Failure(first=True, attempts=1, seconds=0.0)


@given(
    st.floats(min_value=0.01, max_value=60),
    st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=200),
)
def test_reports_are_never_closer_than_the_interval(repeat: float, gaps: list[float]) -> None:
    outage = BrokerOutage(repeat_every=repeat)
    now = 0.0
    reported: list[float] = []
    for gap in gaps:
        now += gap
        if outage.failed(now) is not None:
            reported.append(now)
        else:
            # Silent only within the interval after the last report.
            assert now - reported[-1] < repeat
    assert reported[0] == gaps[0]  # the first failure always
    assert all(later - earlier >= repeat for earlier, later in itertools.pairwise(reported))
    recovery = outage.connected(now + 1)
    assert recovery is not None
    assert recovery.attempts == len(gaps)
