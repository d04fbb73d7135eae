"""How a benchmark reports one delay: its p50, p99 and maximum, in milliseconds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitoring.figures import nearest_rank


@dataclass(frozen=True, slots=True)
class Spread:
    """Percentiles of one delay, in milliseconds (NaN when nothing was measured)."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls(math.nan, math.nan, math.nan)
        return cls(nearest_rank(values, 0.5), nearest_rank(values, 0.99), max(values))
