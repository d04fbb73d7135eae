"""The nearest-rank percentile: a value that was measured, at the rank the definition gives."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.figures import nearest_rank


def test_nearest_rank_of_ten_values() -> None:
    values = [7.0, 1.0, 9.0, 3.0, 5.0, 2.0, 10.0, 4.0, 8.0, 6.0]
    assert nearest_rank(values, 0.5) == 5.0
    assert nearest_rank(values, 0.9) == 9.0
    assert nearest_rank(values, 0.99) == 10.0
    assert nearest_rank(values, 0.0) == 1.0
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 0.5)


@given(st.lists(st.floats(allow_nan=False), min_size=1), st.floats(0.01, 1.0))
def test_at_least_that_share_of_values_is_at_or_below_it(
    values: list[float], fraction: float
) -> None:
    found = nearest_rank(values, fraction)
    assert found in values
    assert sum(1 for v in values if v <= found) >= math.ceil(fraction * len(values))
