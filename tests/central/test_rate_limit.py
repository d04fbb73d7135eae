"""Token buckets as pure functions of ``now``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from central.api.rate_limit import TokenBuckets, retry_after


def test_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == 0.5
    assert buckets.wait("a", 0.25) == 0.25
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("b", 0.5) == 0.0  # every key has its own bucket
    assert retry_after(0.25) == "1"
    assert retry_after(2.01) == "3"


def test_rate_zero_is_off() -> None:
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.take("a", 0.0) == 0.0 for _ in range(1000))
    assert len(buckets) == 0


def test_made_up_keys_cost_bounded_memory() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_keys=100)
    for number in range(10_000):
        buckets.take(f"key-{number}", 0.0)
    assert len(buckets) == 100


@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_never_more_than_the_burst_plus_the_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    buckets = TokenBuckets(rate=rate, burst=burst)
    now = 0.0
    allowed = 0
    for gap in gaps:
        now += gap
        wait = buckets.take("k", now)
        assert wait >= 0
        allowed += wait == 0
    assert allowed <= burst + rate * now + 1e-6
