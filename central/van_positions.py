"""Van positions for the live stream: which stored GPS fixes become a ``van_position`` event.

Pure: the ingest writer hands in what it read from the ``devices`` row and what it is about to
store, inside its write transaction, and appends the event this module builds.

The rule: after a batch, a device whose newest fix (the ``fix`` entry of its stored state) has
changed is reported when that fix lies in another second of fix time than the newest fix stored
before the batch. By induction the newest stored fix's second is always the second of the last
reported one, so two consecutive positions of a van never share a second of fix time: at most
one per second, whatever the receiver's rate, and the stream is never more than a second behind
the store. The decision reads only the stored row, so several ingest processes sharing the store
(each batch in its own ``BEGIN IMMEDIATE``) thin as one would; a restart forgets nothing.

A batch that brings a backlog (an agent back from a dead zone) reports its newest fix only: the
stream shows where the van is, not where it was; the readings themselves are all in the store.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

from edge_agent.wire import format_time

KIND: Final = "van_position"


def _second(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def is_due(previous: datetime | None, newest: datetime) -> bool:
    """Whether ``newest`` (the device's newest fix after a batch) is reported, given the newest
    fix stored before the batch (None: the device had none)."""
    return previous is None or _second(previous) != _second(newest)


def stored_time(entry: object) -> datetime | None:
    """The time of a stored state entry (``{"time": ISO 8601, ...}``); None if unreadable."""
    if not isinstance(entry, dict):
        return None
    text = entry.get("time")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _number(value: object) -> float | None:
    # bool is an int to Python, not a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def body(agent: str, device: str, moment: datetime, reading: object) -> dict[str, Any] | None:
    """The event's body: who, where, how fast, which way, when (the fix time); None when the
    reading carries no usable position (a hostile or broken body is stored, not streamed)."""
    if not isinstance(reading, dict):
        return None
    lat, lon = _number(reading.get("lat")), _number(reading.get("lon"))
    if lat is None or lon is None or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return {
        "agent": agent,
        "device": device,
        "time": format_time(moment),
        "lat": lat,
        "lon": lon,
        "speed_mps": _number(reading.get("speed_mps")),
        "course": _number(reading.get("course")),
    }
