"""Outlier filters for fixes, after Traccar's (gpsd passes outliers through). Pure: ``now`` is
an argument.

Checks, in order, each with its rejection reason (a metric label):

=============  ==============================================================================
invalid        mode below 2D (a void report that reached the filter)
zero           exactly (0, 0), a receiver's placeholder, not a place the van goes
future         time more than ``future_tolerance`` ahead of ``now``
past           time more than ``max_age`` behind ``now`` (a GPS week rollover lands here)
duplicate      the same time as the last accepted fix
out_of_order   older than the last accepted fix
accuracy       ``eph`` above ``max_eph`` when gpsd gives it, else HDOP above ``max_hdop``
period         less than ``min_period`` after the last accepted fix
speed          distance from the last accepted fix over the time between them above
               ``max_speed``
=============  ==============================================================================

A limit of ``None`` switches its check off; ``zero`` and ``duplicate`` have switches.

One accepted outlier would make every later good fix look impossibly fast from it. After
``speed_reset_after`` consecutive speed rejections the filter takes the new fix as its reference
again (Traccar has no such escape; a van that starts with a bad fix would be stuck).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from devices.gps.fix import MODE_2D, Fix, distance_m

REASONS: Final = (
    "invalid",
    "zero",
    "future",
    "past",
    "duplicate",
    "out_of_order",
    "accuracy",
    "period",
    "speed",
)


@dataclass(frozen=True, slots=True)
class FilterSettings:
    """Limits of the fix filters; seconds, metres and metres per second."""

    zero: bool = True
    duplicate: bool = True
    future_tolerance: float | None = 300.0
    max_age: float | None = 3600.0
    max_eph: float | None = 100.0
    max_hdop: float | None = 10.0
    min_period: float | None = 1.0
    # 70 m/s is 252 km/h: more than an escort van drives, less than a jump to a wrong fix.
    max_speed: float | None = 70.0
    speed_reset_after: int = 10

    def __post_init__(self) -> None:
        for name in (
            "future_tolerance",
            "max_age",
            "max_eph",
            "max_hdop",
            "min_period",
            "max_speed",
        ):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be a number >= 0")
        if self.speed_reset_after < 1:
            raise ValueError("speed_reset_after must be >= 1")


class FixFilter:
    """Accepts or rejects fixes one by one and counts rejections by reason."""

    def __init__(self, settings: FilterSettings | None = None) -> None:
        self.settings = settings or FilterSettings()
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self._last: Fix | None = None
        self._speed_rejections = 0

    @property
    def last(self) -> Fix | None:
        """The last accepted fix."""
        return self._last

    def check(self, fix: Fix, now: datetime) -> str | None:
        """``None`` if ``fix`` is accepted (it becomes the reference), else the reason."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        reason = self._reason(fix, now)
        if reason is None:
            self._last = fix
            self._speed_rejections = 0
            self.accepted += 1
        else:
            self.rejected[reason] += 1
        return reason

    def _reason(self, fix: Fix, now: datetime) -> str | None:
        limits = self.settings
        if fix.mode < MODE_2D:
            return "invalid"
        if limits.zero and fix.lat == 0.0 and fix.lon == 0.0:
            return "zero"
        if limits.future_tolerance is not None and fix.time - now > timedelta(
            seconds=limits.future_tolerance
        ):
            return "future"
        if limits.max_age is not None and now - fix.time > timedelta(seconds=limits.max_age):
            return "past"
        last = self._last
        if last is not None:
            if fix.time == last.time and limits.duplicate:
                return "duplicate"
            if fix.time < last.time:
                return "out_of_order"
        if fix.eph is not None:
            if limits.max_eph is not None and fix.eph > limits.max_eph:
                return "accuracy"
        elif fix.hdop is not None and limits.max_hdop is not None and fix.hdop > limits.max_hdop:
            return "accuracy"
        if last is None:
            return None
        seconds = (fix.time - last.time).total_seconds()
        if limits.min_period is not None and seconds < limits.min_period:
            return "period"
        if (
            limits.max_speed is not None
            and seconds > 0
            and distance_m(last, fix) / seconds > limits.max_speed
        ):
            self._speed_rejections += 1
            if self._speed_rejections < limits.speed_reset_after:
                return "speed"
        return None
