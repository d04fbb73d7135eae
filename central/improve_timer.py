"""When the improver runs next: soon after the plan changes, and otherwise now and then.

A change of the plan (a booking made, changed or cancelled, any re-plan) asks for a run
``after_change`` seconds later; each further change moves that run on, so a burst of bookings
gives one run, ``after_change`` after the last of them. The periodic run, ``interval`` after
the last run began, is the idle run and the latest a run is ever put off to, so a steady stream
of changes cannot keep the improver from running. A change while a run is under way is not
seen by it (its result is dropped when the plan changed meanwhile): the run that follows is
asked for when it ends. Pure: the planning jobs give it the time and move the job.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class ImproveTimer:
    """The next run's time after each event; None when the job's own schedule stands."""

    def __init__(self, after_change: float, interval: float, now: datetime) -> None:
        self.after_change = timedelta(seconds=after_change)
        self.interval = timedelta(seconds=interval)
        self.last_start = now  # the scheduler's start counts as a run: the first idle run
        self.last_change: datetime | None = None
        self.running = False

    def changed(self, now: datetime) -> datetime | None:
        """The plan changed at ``now``: when the run that sees the change should start."""
        if not self.after_change:
            return None
        self.last_change = now
        if self.running:
            return None  # asked for by ``finished``
        return self._due(now, now)

    def started(self, now: datetime) -> None:
        self.running = True
        self.last_start = now

    def finished(self, now: datetime) -> datetime | None:
        """A run ended: a follow-up when the plan changed after it began."""
        self.running = False
        if self.last_change is None or self.last_change < self.last_start:
            return None
        return self._due(self.last_change, now)

    def _due(self, last_change: datetime, now: datetime) -> datetime:
        due = min(last_change + self.after_change, self.last_start + self.interval)
        return max(now, due)
