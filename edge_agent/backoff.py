"""Reconnect delays: capped exponential backoff with jitter, as a policy object.

Delays for the defaults (initial 0.5 s, cap 30 s, jitter 0.5), before jitter:
0.5, 1, 2, 4, 8, 16, 30, 30, ... seconds. Jitter adds up to ``jitter`` x the delay so that a
fleet of agents cut off together does not reconnect in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float
    maximum: float
    jitter: float
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * 2.0 ** min(self._attempt, 32))
        self._attempt += 1
        return base * (1.0 + self.jitter * self.rng.random())

    def reset(self) -> None:
        self._attempt = 0
