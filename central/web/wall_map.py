"""What the wall's vans and health panels need from the settings, for the page to pass to its
scripts (``templates/wall/vans.html`` renders it as JSON): the centre's zone, the map's tile
server and datum, and the geofences to draw (the centre's arrival radius and the stations')."""

from __future__ import annotations

from typing import Any

from central.settings import CentralSettings


def map_context(settings: CentralSettings) -> dict[str, Any]:
    centre = None
    if settings.centre_lat is not None and settings.centre_lon is not None:
        centre = {
            "lat": settings.centre_lat,
            "lon": settings.centre_lon,
            "radius_m": settings.arrival_radius_m,
        }
    return {
        "timezone": settings.timezone,
        "tile_url": settings.map_tile_url,
        "attribution": settings.map_attribution,
        "crs": settings.map_crs,
        "centre": centre,
        "stations": [
            {"station": f.station, "lat": f.lat, "lon": f.lon, "radius_m": f.radius_m}
            for f in settings.station_fences()
        ],
        # The track the map draws, in minutes (GET /api/v1/vans?minutes=).
        "track_minutes": 30,
    }
