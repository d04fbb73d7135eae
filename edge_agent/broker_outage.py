"""When to tell the log that the broker cannot be reached, or that another client uses this
client id: pure rules over monotonic time.

An outage is reported at its first failed attempt, then again only once every ``repeat_every``
seconds while it lasts (the reconnect backoff's cap: a client retrying every half second
during a broker restart does not fill the log), and its end once, with how long it lasted and
how many attempts failed. Used by the agent's uplink and by the central's ingest.
"""

from __future__ import annotations

from dataclasses import dataclass

# MQTT 5 DISCONNECT reason code 0x8E: another connection with this client id took the session.
SESSION_TAKEN_OVER = 0x8E


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


@dataclass(frozen=True, slots=True)
class LossVerdict:
    """What a lost connection was: ``clash`` (another client took the session; the caller logs
    the loss quietly) and whether the clash is to be ``reported`` now."""

    clash: bool
    reported: bool


@dataclass(slots=True)
class ClientIdClash:
    """Tells a client-id clash from the other ways a connection is lost.

    Two clients with one client id take the session from each other at every reconnect.
    Under MQTT 5 the broker may say so (DISCONNECT 0x8E, session taken over), but Mosquitto
    2.0.11 closes the socket without it, as it does for MQTT 3.1.1 clients, and the client sees
    only "Unspecified error" or "connection lost". So a clash is also recognised by its rhythm:
    ``streak`` connections in a row that the broker accepted and then closed within ``short``
    seconds (each lasts until the other client's next reconnect). A broker restart does not
    look like that: the reconnects in between fail. A clash is reported at once when the
    broker names it, and at most once per ``repeat_every`` seconds while it lasts.
    """

    short: float = 5.0
    streak: int = 3
    repeat_every: float = 60.0
    _short_losses: int = 0
    _reported: float | None = None

    @property
    def suspected(self) -> bool:
        """The last connection was short-lived: its successor is not news."""
        return self._short_losses > 0

    def lost(self, *, lasted: float, taken_over: bool, now: float) -> LossVerdict:
        """A connection that had been up ``lasted`` seconds ended at ``now`` (``taken_over``:
        the broker said so)."""
        self._short_losses = self._short_losses + 1 if lasted < self.short else 0
        if not taken_over and self._short_losses < self.streak:
            return LossVerdict(clash=False, reported=False)
        due = self._reported is None or now - self._reported >= self.repeat_every
        if due:
            self._reported = now
        return LossVerdict(clash=True, reported=due)
