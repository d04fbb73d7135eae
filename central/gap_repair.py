"""Asks agents to publish again the sequence ranges the centre is missing.

The broker can lose messages it already acknowledged to an agent: killed before its autosave, a
shared-subscription member that died with messages in flight, or (measured with Mosquitto 2.0.11)
shared subscriptions that are not restored after a broker restart. Agents keep their sent
messages for a while, so a missing range can be asked for again with a ``replay`` command. Gaps
are per (agent, epoch), and only the agent's current epoch is asked for: an earlier epoch's
numbers were on a disk that is gone (the agent refuses a replay for an epoch not its own).

A gap must persist for ``grace`` seconds before it is asked for, because after an outage an agent
sends live readings ahead of its backlog and a gap can simply be backlog still on its way. Each
range is asked for at most ``max_attempts`` times, ``retry`` seconds apart; what the agent no
longer holds stays a gap, visible in the API and in ``precinct_ingest_missing_messages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Gap = tuple[str, str, int, int]  # agent, epoch, first, last


@dataclass(slots=True)
class _Seen:
    first_seen: float
    attempts: int = 0
    last_request: float = float("-inf")


@dataclass(slots=True)
class GapRepairPlanner:
    """Pure: given the gaps seen now, which replays to request."""

    grace: float
    retry: float
    max_attempts: int = 3
    _seen: dict[Gap, _Seen] = field(default_factory=dict)

    def plan(self, now: float, gaps: list[Gap]) -> list[Gap]:
        current = set(gaps)
        for gone in [key for key in self._seen if key not in current]:
            del self._seen[gone]
        wanted: list[Gap] = []
        for gap in gaps:
            seen = self._seen.setdefault(gap, _Seen(first_seen=now))
            if (
                now - seen.first_seen >= self.grace
                and seen.attempts < self.max_attempts
                and now - seen.last_request >= self.retry
            ):
                seen.attempts += 1
                seen.last_request = now
                wanted.append(gap)
        return wanted
