"""The wall map's settings: the force's own tile server, its datum, and the stations' geofences.

Pure parsing and checks, called by :class:`central.settings.CentralSettings` at start-up; each
error is a ``ValueError`` whose text starts with the key, which the settings loader turns into a
config error naming the file and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

# Chinese tile servers use the shifted GCJ-02 datum; a WGS-84 fix must be moved to sit on them.
MAP_CRS: Final = ("wgs84", "gcj02")
MAX_TILE_URL_CHARS: Final = 2048
MAX_ATTRIBUTION_CHARS: Final = 200
MAX_STATIONS: Final = 200
# A station's geofence, in metres: from a building's yard to a district.
MIN_RADIUS_M: Final = 10.0
MAX_RADIUS_M: Final = 50_000.0
_STATION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class StationFence:
    """A station's geofence as drawn on the map (WGS-84 degrees, metres)."""

    station: str
    lat: float
    lon: float
    radius_m: float


def check_tile_url(url: str) -> None:
    """Empty (no basemap), or an ``http(s)://host/…{z}…{x}…{y}…`` XYZ template."""
    if not url:
        return
    if len(url) > MAX_TILE_URL_CHARS:
        raise ValueError(f"map_tile_url: longer than {MAX_TILE_URL_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in url) or any(c in url for c in "<>\"'`\\"):
        raise ValueError("map_tile_url: spaces, control characters or <>\"'`\\ are not allowed")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"map_tile_url: {url!r} must start with http:// or https:// and name a host"
        )
    missing = [name for name in ("{z}", "{x}", "{y}") if name not in url]
    if missing:
        raise ValueError(
            f"map_tile_url: an XYZ template needs {', '.join(missing)} "
            "(for example https://gis.example/tiles/{z}/{x}/{y}.png)"
        )


def check_attribution(text: str) -> None:
    """Plain text shown in the map's corner (the page escapes it: no markup gets through)."""
    if len(text) > MAX_ATTRIBUTION_CHARS:
        raise ValueError(f"map_attribution: longer than {MAX_ATTRIBUTION_CHARS} characters")
    if any(not c.isprintable() for c in text):
        raise ValueError("map_attribution: control characters are not allowed")


def check_crs(crs: str) -> None:
    if crs not in MAP_CRS:
        raise ValueError(f"map_crs: {crs!r} is not one of {', '.join(MAP_CRS)}")


def parse_stations(text: str) -> tuple[StationFence, ...]:
    """``"s1:31.20,121.44,300; s2:31.25,121.47,250"``: each station's id, its centre's latitude
    and longitude (WGS-84 degrees) and the geofence's radius in metres; empty for none."""
    fences: list[StationFence] = []
    seen: set[str] = set()
    for index, raw in enumerate(part.strip() for part in text.split(";")):
        if not raw:
            continue
        where = f"map_stations: entry {index + 1} ({raw[:80]!r})"
        # The last colon: a station id may hold colons itself, numbers never do.
        station, colon, numbers = raw.rpartition(":")
        station = station.strip()
        if not colon or not _STATION_ID.fullmatch(station):
            raise ValueError(
                f"{where}: expected STATION:LAT,LON,RADIUS_M with a station id of "
                "1-64 letters, digits or _.:-"
            )
        if station in seen:
            raise ValueError(f"{where}: station {station} is given twice")
        values = numbers.split(",")
        try:
            lat, lon, radius = (float(v) for v in values) if len(values) == 3 else (math.nan,) * 3
        except ValueError:
            lat = lon = radius = math.nan
        if not all(math.isfinite(v) for v in (lat, lon, radius)):
            raise ValueError(f"{where}: expected three numbers LAT,LON,RADIUS_M after the colon")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{where}: not a position on Earth")
        if not MIN_RADIUS_M <= radius <= MAX_RADIUS_M:
            raise ValueError(
                f"{where}: the radius must be {MIN_RADIUS_M:g} to {MAX_RADIUS_M:g} metres"
            )
        seen.add(station)
        fences.append(StationFence(station, lat, lon, radius))
    if len(fences) > MAX_STATIONS:
        raise ValueError(f"map_stations: at most {MAX_STATIONS} stations")
    return tuple(fences)
