"""Synthetic tracks decode back to the route they describe."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from devices.gps.fix import Fix
from devices.gps.nmea import NmeaDecoder
from devices.gps.track import DEMO_ROUTE, synthetic_track


def test_demo_track_decodes_to_a_drive_along_the_route() -> None:
    start = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    data = synthetic_track(DEMO_ROUTE, speed_mps=10.0, start=start)
    decoder = NmeaDecoder()
    fixes = [item for item in decoder.feed(data) if isinstance(item, Fix)]
    assert len(fixes) > 300  # about 4 km at 10 m/s, one fix a second
    assert fixes[0].time == start.astimezone(UTC)
    assert abs(fixes[0].lat - DEMO_ROUTE[0][0]) < 1e-6
    assert abs(fixes[-1].lon - DEMO_ROUTE[-1][1]) < 1e-6
    assert all(abs((f.speed_mps or 0) - 10.0) < 0.01 for f in fixes[:-1])
    gaps = {(b.time - a.time).total_seconds() for a, b in itertools.pairwise(fixes)}
    assert gaps == {1.0}
