"""Summaries of measured values: one definition for the API's reports and the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of non-empty ``values`` (``fraction`` 0.5 is the median):
    always one of the values measured, never an interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
