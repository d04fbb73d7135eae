"""When an unreachable broker is reported: once, then at most once per repeat interval."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.broker_outage import BrokerOutage, ClientIdClash, Failure, LossVerdict, Recovery


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


def test_a_clash_is_named_by_the_broker_or_by_three_short_connections_in_a_row() -> None:
    clash = ClientIdClash(short=5.0, streak=3, repeat_every=60.0)
    # A connection of an hour lost (a broker restart): not a clash.
    assert clash.lost(lasted=3600.0, taken_over=False, now=0.0) == LossVerdict(False, False)
    assert not clash.suspected
    # Two short ones are still ordinary losses; the third in a row is the clash's rhythm.
    assert clash.lost(lasted=1.0, taken_over=False, now=2.0) == LossVerdict(False, False)
    assert clash.suspected
    assert clash.lost(lasted=1.0, taken_over=False, now=4.0) == LossVerdict(False, False)
    assert clash.lost(lasted=1.0, taken_over=False, now=6.0) == LossVerdict(True, True)
    assert clash.lost(lasted=1.0, taken_over=False, now=8.0) == LossVerdict(True, False)
    assert clash.lost(lasted=1.0, taken_over=False, now=66.0) == LossVerdict(True, True)
    # A connection that lasts ends the streak.
    assert clash.lost(lasted=60.0, taken_over=False, now=200.0) == LossVerdict(False, False)
    assert clash.lost(lasted=1.0, taken_over=False, now=202.0) == LossVerdict(False, False)


def test_a_session_taken_over_is_a_clash_at_once() -> None:
    clash = ClientIdClash()
    assert clash.lost(lasted=3600.0, taken_over=True, now=0.0) == LossVerdict(True, True)
    assert clash.lost(lasted=3600.0, taken_over=True, now=1.0) == LossVerdict(True, False)
