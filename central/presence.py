"""Where a worn band is, from the scanners that heard it: pure rules, no I/O.

Every wristband fleet reports, once per presence interval and per band, whether its scanner
heard the band, when last, and how strongly (a smoothed RSSI); a fleet that names the ``room``
its scanner covers puts the room in that reading. Several scanners hear a band at once (through
a wall, down a corridor), so a band is placed in the room of the scanner that heard it **last
and strongest**: of the scanners that heard it within one interval of the latest sighting, the
one with the strongest signal. A band no scanner has heard for ``missed`` intervals is not
heard at all: for a person in custody that is an alarm, not a shrug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge_agent.wire import parse_time

PRESENCE_KIND = "presence"
# Band readings whose time says the band was heard (a GATT value comes only from a band in range).
HEARD_KINDS = ("heart_rate", "battery", "custody", "band_present")
# Weaker than any RSSI a receiver reports: a sighting without one loses to any with one.
_NO_RSSI = -1000.0


@dataclass(frozen=True, slots=True)
class Sighting:
    """One scanner's latest word on a band: heard at ``last_seen`` (None: never)."""

    agent: str
    scanner: str | None
    room: str | None
    rssi: float | None
    last_seen: datetime | None
    present: bool


@dataclass(frozen=True, slots=True)
class PresencePolicy:
    """The agents' presence interval, and how many silent ones make a band not heard."""

    interval: timedelta = timedelta(seconds=5)
    missed: int = 3

    @property
    def window(self) -> timedelta:
        return self.interval * self.missed


def place(sightings: Iterable[Sighting], now: datetime, policy: PresencePolicy) -> Sighting | None:
    """The sighting that places the band, or None when no scanner heard it within the window.

    A scanner that last said "absent" does not place it, whatever it heard before."""
    heard = [
        s
        for s in sightings
        if s.present and s.last_seen is not None and now - s.last_seen <= policy.window
    ]
    if not heard:
        return None
    latest = max(s.last_seen for s in heard if s.last_seen is not None)
    recent = [
        s for s in heard if s.last_seen is not None and latest - s.last_seen <= policy.interval
    ]
    return max(
        recent,
        key=lambda s: (
            _NO_RSSI if s.rssi is None else s.rssi,
            s.last_seen,
            s.agent,
        ),
    )


def not_heard(
    last: datetime | None, since: datetime, now: datetime, policy: PresencePolicy
) -> bool:
    """Whether a band worn since ``since`` and last heard at ``last`` has gone unheard for the
    whole window (a band never heard counts from when it was put on)."""
    reference = since if last is None or last < since else last
    return now - reference > policy.window


def sighting_of(agent: str, state: Mapping[str, Any]) -> Sighting | None:
    """One agent's sighting of a band from its ``devices.state`` (the latest reading of each
    kind); None when that agent's scanner said nothing of the band. Only advertisements place
    a band: a band still connected whose advertisements stopped has left the room as far as
    custody goes. Malformed entries are ignored, never raised: they come from the field."""
    entry = state.get(PRESENCE_KIND)
    body = entry.get("body") if isinstance(entry, Mapping) else None
    if not isinstance(body, Mapping):
        return None
    rssi = body.get("rssi")
    room = body.get("room")
    scanner = body.get("scanner")
    return Sighting(
        agent,
        scanner if isinstance(scanner, str) else None,
        room if isinstance(room, str) and room else None,
        float(rssi) if isinstance(rssi, int | float) and not isinstance(rssi, bool) else None,
        parse(body.get("last_seen")),
        body.get("present") is True,
    )


def heard_at(state: Mapping[str, Any]) -> datetime | None:
    """When one agent last heard the band at all: an advertisement or a value over GATT."""
    times = [_time_of(state.get(kind)) for kind in HEARD_KINDS]
    body = state.get(PRESENCE_KIND)
    if isinstance(body, Mapping) and isinstance(body.get("body"), Mapping):
        times.append(parse(body["body"].get("last_seen")))
    # A presence reading's own time is when the scanner judged, not when it heard the band.
    return max((t for t in times if t is not None), default=None)


def _time_of(entry: object) -> datetime | None:
    if not isinstance(entry, Mapping):
        return None
    return parse(entry.get("time"))


def parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value, "time")
    except ValueError:
        return None
