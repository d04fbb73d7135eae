"""Waits between attempts (broker connections, serial ports, BLE connections and adapter
reopenings): capped exponential backoff with jitter, as a policy object.

With initial 1 s, cap 60 s and jitter 0.5 (the wristband fleet's defaults), before jitter:

=======  ===  ===  ===  ===  ===  ===  ====  ====
attempt  1    2    3    4    5    6    7     8...
wait s   1    2    4    8    16   32   60    60
=======  ===  ===  ===  ===  ===  ===  ====  ====

Jitter adds up to ``jitter`` x the wait again, so that a fleet of agents cut off from the broker,
or a room of bands that lost the adapter together, does not reconnect in lockstep. A connection
that worked resets the sequence. Tests shorten the waits through settings, never by patching
sleep.
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
