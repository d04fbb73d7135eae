"""The agent's own health, as it reports it to the centre (``docs/protocol.md``, *Health*).

A van on a mobile link cannot be scraped by the centre's Prometheus; its health travels with its
messages instead: in every birth and every ``health_interval`` seconds while connected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.outbox import Outbox
from edge_agent.wire import MAX_HEALTH_AGE_SECONDS, Health


class HealthReporter:
    """Takes health reports, numbered from 1 within the agent's session (one run)."""

    def __init__(self, outbox: Outbox, certificate_expires: Callable[[], datetime | None]) -> None:
        self._outbox = outbox
        self._certificate_expires = certificate_expires
        self._taken = 0

    def take(self) -> Health:
        self._taken += 1
        now = time.time()
        return Health(
            report=self._taken,
            time=datetime.fromtimestamp(now, UTC),
            outbox_depth=self._outbox.total_depth,
            # A row stamped by a clock far ahead of today's would read as a century-old backlog
            # the centre refuses; the bound keeps the report valid.
            outbox_oldest_age_seconds=min(self._outbox.oldest_age(now), MAX_HEALTH_AGE_SECONDS),
            disk_full=self._outbox.disk_full,
            certificate_expires=self._certificate_expires(),
        )
