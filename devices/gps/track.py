"""Synthetic escort-van tracks as NMEA RMC logs, for the demo and load tests.

A track is a list of waypoints driven at a constant speed, one fix per period; the result is the
same kind of file a receiver log is, so ``precinct gps simulate --track`` replays it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from devices.gps.fix import MODE_3D, Fix, great_circle_m
from devices.gps.nmea import encode_rmc

# A van from a station in Xuhui to a case-handling centre: Shanghai streets, about 4 km.
DEMO_ROUTE: tuple[tuple[float, float], ...] = (
    (31.18830, 121.43670),
    (31.19420, 121.43760),
    (31.20050, 121.44400),
    (31.20720, 121.44650),
    (31.21390, 121.45120),
    (31.21960, 121.45980),
)


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlon = math.radians(b[1] - a[1])
    y = math.sin(dlon) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def synthetic_track(
    waypoints: Sequence[tuple[float, float]], speed_mps: float, start: datetime, period: float = 1.0
) -> bytes:
    """RMC sentences along ``waypoints`` (linear between them; fine for a few km)."""
    if len(waypoints) < 2 or speed_mps <= 0 or period <= 0:
        raise ValueError("a track needs two waypoints, a positive speed and period")
    lines: list[bytes] = []
    moment = start
    step = speed_mps * period
    for a, b in itertools.pairwise(waypoints):
        legs = max(1, math.ceil(great_circle_m(a, b) / step))
        course = _bearing(a, b)
        for i in range(legs):
            f = i / legs
            fix = Fix(
                time=moment,
                lat=a[0] + (b[0] - a[0]) * f,
                lon=a[1] + (b[1] - a[1]) * f,
                speed_mps=speed_mps,
                course=course,
                mode=MODE_3D,
            )
            lines.append(encode_rmc(fix))
            moment += timedelta(seconds=period)
    last = waypoints[-1]
    lines.append(
        encode_rmc(
            Fix(time=moment, lat=last[0], lon=last[1], speed_mps=0.0, course=None, mode=MODE_3D)
        )
    )
    return b"".join(line if line.endswith(b"\r\n") else line + b"\r\n" for line in lines)
