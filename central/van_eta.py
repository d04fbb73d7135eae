"""Where a booked escort van is: arrived (inside the centre's geofence) or when it will be.

Pure: given the van's latest GPS fix (as the agent reported it) and the centre's position, the
answer. The ETA is the road distance, taken as the straight line times ``road_factor``, over
the van's speed, never below ``speed_floor_mps`` (a van stopped at lights still arrives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devices.gps.fix import great_circle_m


@dataclass(frozen=True, slots=True)
class VanRules:
    centre: tuple[float, float]  # lat, lon in degrees
    arrival_radius_m: float = 150.0
    road_factor: float = 1.3
    speed_floor_mps: float = 4.0
    stale_after: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class VanPosition:
    distance_m: float
    arrived: bool
    eta: datetime


def van_position(
    fix: Any, fix_time: datetime, now: datetime, rules: VanRules
) -> VanPosition | None:
    """The van's position from a fix reading body; None when the fix is unusable or stale."""
    if not isinstance(fix, dict):
        return None
    numbers = [
        v
        for v in (fix.get("lat"), fix.get("lon"), fix.get("speed_mps", 0.0))
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if len(numbers) != 3:
        return None
    lat, lon, speed = (float(v) for v in numbers)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or now - fix_time > rules.stale_after:
        return None
    distance = great_circle_m((lat, lon), rules.centre)
    if distance <= rules.arrival_radius_m:
        return VanPosition(distance, True, fix_time)
    seconds = distance * rules.road_factor / max(speed, rules.speed_floor_mps)
    return VanPosition(distance, False, now + timedelta(seconds=seconds))
