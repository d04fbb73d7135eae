"""How a benchmark reports its figures: one delay as its p50, p99 and maximum in milliseconds,
and the whole result as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

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


def _finite(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def figures_json(result: Any) -> str:
    """A benchmark's result (a dataclass) as JSON: every figure, delays in milliseconds, a
    figure that could not be measured as null."""
    return json.dumps(_finite(asdict(result)), indent=2, allow_nan=False)
