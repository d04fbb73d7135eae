"""When to tell the log that the broker cannot be reached: a pure rule over monotonic time.

An outage is reported at its first failed attempt, then again only once every ``repeat_every``
seconds while it lasts (the reconnect backoff's cap: a client retrying every half second
during a broker restart does not fill the log), and its end once, with how long it lasted and
how many attempts failed. Used by the agent's uplink and by the central's ingest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt that is to be reported: ``first`` of its outage, or a reminder."""

    first: bool
    attempts: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Recovery:
    """The end of an outage."""

    attempts: int
    seconds: float


@dataclass(slots=True)
class BrokerOutage:
    repeat_every: float
    _started: float | None = None
    _reported: float = 0.0
    _attempts: int = 0

    @property
    def ongoing(self) -> bool:
        return self._started is not None

    def failed(self, now: float) -> Failure | None:
        """An attempt failed (or a connection was lost) at ``now``: the report due, if any."""
        if self._started is None:
            self._started = self._reported = now
            self._attempts = 1
            return Failure(first=True, attempts=1, seconds=0.0)
        self._attempts += 1
        if now - self._reported < self.repeat_every:
            return None
        self._reported = now
        return Failure(first=False, attempts=self._attempts, seconds=now - self._started)

    def connected(self, now: float) -> Recovery | None:
        """A connection worked at ``now``: the outage it ends, if there was one."""
        if self._started is None:
            return None
        recovery = Recovery(attempts=self._attempts, seconds=now - self._started)
        self._started = None
        self._attempts = 0
        return recovery
