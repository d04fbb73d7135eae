"""The escort vans as the duty room's map shows them: where each is, where it came from, and
the booked unit it carries with its ETA and whether it runs late.

The recent track comes from the stream's ``van_position`` events (at most one per van per
second, kept ``feed_retention_hours``, indexed by time), not from the raw readings: a track is
read with the feed's index and never scans the readings table.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from central import van_positions
from central.planning import VanState
from central.van_eta import VanRules, van_position
from edge_agent.wire import FIX_KIND, format_time

# A track longer than this many points is thinned evenly: a map line, not a log.
MAX_TRACK_POINTS = 600


@dataclass(frozen=True, slots=True)
class TrackPoint:
    time: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class VanBooking:
    booking: str
    station: str
    planned: str
    eta: str | None
    distance_m: float | None
    late: bool


@dataclass(slots=True)
class Van:
    agent: str
    device: str
    station: str | None
    online: bool | None
    fix: dict[str, Any] | None
    track: list[TrackPoint] = field(default_factory=list)
    booking: VanBooking | None = None


def _thin(points: list[TrackPoint]) -> list[TrackPoint]:
    if len(points) <= MAX_TRACK_POINTS:
        return points
    step = len(points) / MAX_TRACK_POINTS
    kept = [points[int(i * step)] for i in range(MAX_TRACK_POINTS - 1)]
    return [*kept, points[-1]]


def vans(
    conn: sqlite3.Connection,
    awaited: list[VanState],
    now: datetime,
    minutes: int,
    rules: VanRules | None,
    late_after: timedelta,
    station: str | None = None,
) -> list[Van]:
    """Every GPS device of an agent (of ``station`` when given), with its latest fix, its track
    over the last ``minutes`` and the awaited booking it carries."""
    found: dict[tuple[str, str], Van] = {}
    for agent, device, online, state_text, agent_station in conn.execute(
        "SELECT d.agent, d.device, d.online, d.state, a.station FROM devices d "
        "LEFT JOIN agents a ON a.agent = d.agent WHERE d.class = 'gps' ORDER BY d.agent, d.device"
    ):
        if station is not None and agent_station != station:
            continue
        try:
            state = json.loads(state_text)
        except ValueError:
            state = {}
        entry = state.get(FIX_KIND) if isinstance(state, dict) else None
        moment = van_positions.stored_time(entry)
        fix = None
        if moment is not None and isinstance(entry, dict):
            fix = van_positions.body(agent, device, moment, entry.get("body"))
        found[(agent, device)] = Van(
            agent, device, agent_station, None if online is None else bool(online), fix
        )
    since = format_time(now - timedelta(minutes=minutes))
    for (body_text,) in conn.execute(
        "SELECT body FROM feed WHERE kind = ? AND at >= ? ORDER BY id",
        (van_positions.KIND, since),
    ):
        try:
            body = json.loads(body_text)
        except ValueError:
            continue
        van = found.get((body.get("agent"), body.get("device")))
        if van is None or not isinstance(body.get("lat"), float | int):
            continue
        van.track.append(TrackPoint(str(body["time"]), float(body["lat"]), float(body["lon"])))
    by_device = {van.device: van for van in found.values()}
    for state in awaited:
        carrier = by_device.get(state.van)
        if carrier is None:
            continue
        position = None if rules is None else van_position(state.fix, state.fix_time, now, rules)
        eta = None if position is None else position.eta
        carrier.booking = VanBooking(
            booking=state.booking,
            station=state.station,
            planned=format_time(state.planned),
            eta=None if eta is None else format_time(eta),
            distance_m=None if position is None else round(position.distance_m),
            late=eta is not None and eta > state.planned + late_after,
        )
    for van in found.values():
        van.track = _thin(van.track)
    return list(found.values())
