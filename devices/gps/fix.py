"""The values the GPS codecs produce: a position fix and the reasons input was set aside."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

KNOT_MPS: Final = 1852.0 / 3600.0
# Mean Earth radius (IUGG), as Traccar and most trackers use for haversine distances.
EARTH_RADIUS_M: Final = 6_371_008.8

MODE_NO_FIX: Final = 1
MODE_2D: Final = 2
MODE_3D: Final = 3


@dataclass(frozen=True, slots=True)
class Fix:
    """A position a receiver reports as valid: never built from a void report.

    ``time`` is aware UTC. ``speed_mps`` (over ground) and ``course`` (degrees true) are
    ``None`` when the receiver left them empty. ``hdop`` comes from NMEA GGA/GSA and ``eph``
    (estimated horizontal error, metres) from gpsd; either may be unknown.
    """

    time: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    course: float | None = None
    mode: int = MODE_2D
    hdop: float | None = None
    eph: float | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("a fix needs an aware time")
        if not (
            math.isfinite(self.lat)
            and math.isfinite(self.lon)
            and -90.0 <= self.lat <= 90.0
            and -180.0 <= self.lon <= 180.0
        ):
            raise ValueError(f"position out of range: {self.lat!r}, {self.lon!r}")

    def body(self) -> dict[str, Any]:
        """The reading body sent to the centre (JSON-safe, finite numbers only)."""
        body: dict[str, Any] = {
            "lat": self.lat,
            "lon": self.lon,
            "speed_mps": self.speed_mps,
            "course": self.course,
            "mode": self.mode,
        }
        if self.hdop is not None:
            body["hdop"] = self.hdop
        if self.eph is not None:
            body["eph"] = self.eph
        return body

    def to_json(self) -> dict[str, Any]:
        """The ``precinct gps decode`` record: ``time`` (ISO 8601 UTC), position, speed,
        course and mode."""
        return {
            "time": format_time(self.time),
            "lat": self.lat,
            "lon": self.lon,
            "speed_mps": self.speed_mps,
            "course": self.course,
            "mode": self.mode,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """Input set aside as malformed; ``reason`` is one of ``errors.MALFORMED_REASONS``."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class NoFix:
    """A well-formed report without a usable position (``void``, ``no_time``, ``no_date``)."""

    reason: str


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC as gpsd prints it (``2010-06-12T17:10:03.972Z``); microseconds if finer."""
    moment = moment.astimezone(UTC)
    micro = moment.microsecond
    fraction = f"{micro // 1000:03d}" if micro % 1000 == 0 else f"{micro:06d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


def distance_m(a: Fix, b: Fix) -> float:
    """Great-circle distance between two fixes (haversine), in metres."""
    return great_circle_m((a.lat, a.lon), (b.lat, b.lon))


def great_circle_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points in degrees (haversine), in metres."""
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlat = lat2 - lat1
    dlon = math.radians(b[1] - a[1])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
