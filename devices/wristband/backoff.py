"""Waits between connection attempts and adapter reopenings: capped exponential, jittered.

With the defaults (``reconnect_initial`` 1 s, ``reconnect_max`` 60 s, jitter 0.5), before jitter:

=======  ===  ===  ===  ===  ===  ===  ====  ====
attempt  1    2    3    4    5    6    7     8...
wait s   1    2    4    8    16   32   60    60
=======  ===  ===  ===  ===  ===  ===  ====  ====

Jitter adds up to half the wait again, so that a room of bands that lost the adapter together
does not reconnect in lockstep. A connection that got as far as its subscriptions resets the
sequence. Tests shorten the waits through the fleet's options, never by patching sleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Capped exponential backoff with multiplicative jitter."""

    initial: float
    maximum: float
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts an attempt."""
        base = min(self.maximum, self.initial * float(1 << min(self.attempt, 32)))
        self.attempt += 1
        return base * (1.0 + self.jitter * self.rng.random())

    def reset(self) -> None:
        """The last attempt worked: start again from ``initial``."""
        self.attempt = 0
