"""When to recover a scanner that went quiet: a pure policy.

BlueZ can stop delivering advertisements without any error (a controller firmware hang, a
D-Bus hiccup, another process changing the discovery filter). The only symptom is silence, so
the driver watches the time since the last advertisement from *any* device and recovers in
steps:

=====  ==============================  ============================================
step   action                          next check after
=====  ==============================  ============================================
1      restart the scan (new scanner)  ``timeout``
2      reset the adapter               ``2 x timeout``
3+     reset the adapter again         doubling, capped at ``max_wait``
=====  ==============================  ============================================

Any advertisement starts over at step 1. The watchdog cannot tell a hung adapter from a room
with no bands in it; in an empty room it resets the adapter at a slowing pace, which disturbs
nothing, since nothing is connected.

The policy only says what is due; the driver performs one recovery at a time and reports it back
with :meth:`ScanWatchdog.performed`, so two recoveries can never overlap.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from devices.wristband.clock import require_aware


class Recovery(enum.Enum):
    """What the watchdog asks for."""

    NONE = "none"
    RESTART_SCAN = "restart_scan"
    RESET_ADAPTER = "reset_adapter"


class ScanWatchdog:
    """Tracks advertisement silence and says which recovery is due."""

    def __init__(self, timeout: timedelta, max_wait: timedelta, started: datetime) -> None:
        if timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        if max_wait < timeout:
            raise ValueError("max_wait must be at least timeout")
        require_aware(started)
        self.timeout = timeout
        self.max_wait = max_wait
        self.last_advertisement = started
        self.step = 0
        self.next_due = started + timeout

    def advertisement(self, now: datetime) -> None:
        """An advertisement arrived: the scanner works."""
        self.last_advertisement = now
        self.step = 0
        self.next_due = now + self.timeout

    def due(self, now: datetime) -> Recovery:
        """The recovery to perform now, if any."""
        if now < self.next_due:
            return Recovery.NONE
        return Recovery.RESTART_SCAN if self.step == 0 else Recovery.RESET_ADAPTER

    def performed(self, recovery: Recovery, now: datetime) -> timedelta:
        """``recovery`` finished at ``now``; returns the wait before the next one may be due."""
        if recovery is Recovery.NONE:
            return self.next_due - now
        self.step += 1
        wait = min(self.max_wait, self.timeout * (1 << min(self.step - 1, 16)))
        self.next_due = now + wait
        return wait

    def silence(self, now: datetime) -> timedelta:
        """Time since the last advertisement."""
        return now - self.last_advertisement
