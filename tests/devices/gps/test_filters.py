"""Outlier filters, at fixed times in the centre's zone (Asia/Shanghai, UTC+8)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devices.gps.filters import REASONS, FilterSettings, FixFilter
from devices.gps.fix import Fix, distance_m

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 9, 30, 0, tzinfo=SHANGHAI)
# Near the centre: 31.23 N, 121.47 E. 0.001 degree of latitude is about 111 m.
HOME = Fix(
    time=NOW - timedelta(seconds=10),
    lat=31.23,
    lon=121.47,
    speed_mps=10.0,
    course=90.0,
    mode=3,
    hdop=0.9,
)


def _after(fix: Fix, seconds: float, north_m: float = 0.0, **changes: object) -> Fix:
    moved = dataclasses.replace(
        fix, time=fix.time + timedelta(seconds=seconds), lat=fix.lat + north_m / 111_195.0
    )
    return dataclasses.replace(moved, **changes)  # type: ignore[arg-type]


def _filter(**settings: object) -> FixFilter:
    return FixFilter(FilterSettings(**settings))  # type: ignore[arg-type]


def test_a_good_track_passes() -> None:
    fixes = FixFilter()
    track = [HOME] + [_after(HOME, s, north_m=10.0 * s) for s in (1, 2, 3)]
    assert [fixes.check(fix, NOW) for fix in track] == [None] * 4
    assert fixes.accepted == 4
    assert fixes.last == track[-1]
    assert not fixes.rejected


def test_times_in_other_zones_compare_as_instants() -> None:
    utc_time = HOME.time.astimezone(ZoneInfo("UTC"))
    assert FixFilter().check(dataclasses.replace(HOME, time=utc_time), NOW) is None


def test_invalid_mode_is_rejected() -> None:
    assert FixFilter().check(dataclasses.replace(HOME, mode=1), NOW) == "invalid"


def test_null_island_is_rejected_unless_switched_off() -> None:
    zero = dataclasses.replace(HOME, lat=0.0, lon=0.0)
    assert FixFilter().check(zero, NOW) == "zero"
    assert _filter(zero=False).check(zero, NOW) is None


def test_future_beyond_the_tolerance_is_rejected() -> None:
    fixes = _filter(future_tolerance=60.0)
    assert fixes.check(dataclasses.replace(HOME, time=NOW + timedelta(seconds=61)), NOW) == "future"
    assert fixes.check(dataclasses.replace(HOME, time=NOW + timedelta(seconds=59)), NOW) is None


def test_far_past_is_rejected_such_as_a_week_rollover() -> None:
    rolled_back = dataclasses.replace(HOME, time=HOME.time - timedelta(weeks=1024))
    assert FixFilter().check(rolled_back, NOW) == "past"
    assert _filter(max_age=None).check(rolled_back, NOW) is None


def test_duplicates_and_out_of_order_fixes_are_rejected() -> None:
    fixes = FixFilter()
    assert fixes.check(HOME, NOW) is None
    assert fixes.check(HOME, NOW) == "duplicate"
    assert fixes.check(_after(HOME, -5), NOW) == "out_of_order"


def test_accuracy_uses_eph_when_known_else_hdop() -> None:
    fixes = _filter(max_eph=50.0, max_hdop=5.0)
    assert fixes.check(dataclasses.replace(HOME, eph=80.0, hdop=1.0), NOW) == "accuracy"
    # gpsd's eph wins over an HDOP that would be rejected
    assert fixes.check(dataclasses.replace(HOME, eph=20.0, hdop=9.0), NOW) is None
    assert fixes.check(_after(HOME, 2, hdop=6.0), NOW) == "accuracy"
    assert fixes.check(_after(HOME, 3, hdop=None), NOW) is None


def test_minimum_period_between_accepted_fixes() -> None:
    fixes = _filter(min_period=5.0)
    assert fixes.check(HOME, NOW) is None
    assert fixes.check(_after(HOME, 1), NOW) == "period"
    assert fixes.check(_after(HOME, 4.9), NOW) == "period"
    assert fixes.check(_after(HOME, 5), NOW) is None


def test_impossible_speed_between_fixes_is_rejected() -> None:
    fixes = _filter(max_speed=50.0)
    assert fixes.check(HOME, NOW) is None
    # 2 km in 2 s is 1000 m/s
    assert fixes.check(_after(HOME, 2, north_m=2000.0), NOW) == "speed"
    # 80 m in 2 s from the last accepted fix is 40 m/s
    assert fixes.check(_after(HOME, 2, north_m=80.0), NOW) is None


def test_after_enough_speed_rejections_the_new_position_is_believed() -> None:
    fixes = _filter(max_speed=50.0, speed_reset_after=3)
    outlier = dataclasses.replace(HOME, lat=HOME.lat + 1.0)  # accepted first: nothing to compare
    assert fixes.check(outlier, NOW) is None
    results = [fixes.check(_after(HOME, s), NOW) for s in (1, 2, 3, 4)]
    assert results == ["speed", "speed", None, None]
    assert fixes.last is not None
    assert fixes.last.lat == pytest.approx(HOME.lat)


def test_every_check_can_be_switched_off() -> None:
    fixes = _filter(
        future_tolerance=None,
        max_age=None,
        max_eph=None,
        max_hdop=None,
        min_period=None,
        max_speed=None,
        duplicate=False,
    )
    assert fixes.check(HOME, NOW) is None
    assert fixes.check(dataclasses.replace(HOME, eph=1e6), NOW) is None
    assert fixes.check(_after(HOME, 0.1, north_m=1e6), NOW) is None


def test_rejections_are_counted_by_reason() -> None:
    fixes = FixFilter()
    fixes.check(HOME, NOW)
    fixes.check(HOME, NOW)
    fixes.check(dataclasses.replace(HOME, lat=0.0, lon=0.0), NOW)
    fixes.check(_after(HOME, 0.5), NOW)
    assert dict(fixes.rejected) == {"duplicate": 1, "zero": 1, "period": 1}
    assert set(fixes.rejected) <= set(REASONS)


def test_naive_now_and_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        FixFilter().check(HOME, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="max_speed"):
        FilterSettings(max_speed=-1.0)


def test_distance_is_haversine_in_metres() -> None:
    north = dataclasses.replace(HOME, lat=HOME.lat + 1.0)
    assert distance_m(HOME, north) == pytest.approx(111_195, rel=1e-4)
    assert distance_m(HOME, HOME) == 0.0
