"""Token buckets per key (an API token, a client address), pure: the caller passes ``now``.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; each counted request
takes one. At most ``max_keys`` buckets are kept, the least recently used dropped first, so
that a flood of made-up keys costs bounded memory (a dropped bucket comes back full: the bound
is on memory, the limit still holds for every key seen often).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        if rate < 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be >= 0, burst and max_keys >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            # A clock that went back (it should not: callers pass a monotonic one) refills nothing.
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.stamp = now
        return bucket

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may spend a token (0: now), taking none."""
        if not self.enabled:
            return 0.0
        bucket = self._bucket(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str, now: float) -> float:
        """Spend one token of ``key``: 0 when it was there, else the seconds to wait."""
        if not self.enabled:
            return 0.0
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> str:
    """The ``Retry-After`` value: whole seconds, at least one (RFC 9110 section 10.2.3)."""
    return str(max(1, math.ceil(wait)))
