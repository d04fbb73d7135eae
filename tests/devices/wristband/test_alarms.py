"""Alarm and telemetry rules, at fixed times in the centre's zone (Asia/Shanghai, UTC+8)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devices.base import DeviceReading
from devices.wristband.alarms import AlarmPolicy, BandMonitor
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 9, 30, 0, tzinfo=SHANGHAI)
WORN = CustodyFlags.STRAP_CLOSED | CustodyFlags.SKIN_CONTACT
POLICY = AlarmPolicy(
    heart_rate_low=40, heart_rate_high=150, heart_rate_after=timedelta(seconds=30), battery_low=20
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def events(readings: list[DeviceReading]) -> list[str]:
    return [reading.kind for reading in readings if reading.event]


def status(flags: CustodyFlags, seq: int) -> CustodyStatus:
    return CustodyStatus(flags, seq, 1_795_000_000 + seq)


def worn_monitor() -> BandMonitor:
    monitor = BandMonitor("band-0417", POLICY)
    monitor.custody(status(WORN, 10), at(0), "read")
    return monitor


def test_first_status_of_a_worn_band_raises_nothing() -> None:
    readings = BandMonitor("band-0417", POLICY).custody(status(WORN, 10), at(0), "read")
    assert events(readings) == []
    assert [reading.kind for reading in readings] == ["custody"]
    assert readings[0].device == "band-0417"
    assert readings[0].time == at(0)
    assert readings[0].body["flags"] == ["strap_closed", "skin_contact"]


def test_strap_opened_and_tamper_are_edges() -> None:
    monitor = worn_monitor()
    opened = monitor.custody(
        status(CustodyFlags.SKIN_CONTACT | CustodyFlags.TAMPER_LATCHED, 11), at(5), "indication"
    )
    assert events(opened) == ["strap_opened", "tamper"]
    event = next(reading for reading in opened if reading.kind == "strap_opened")
    assert event.event
    assert event.body["event_seq"] == 11
    assert event.body["source"] == "indication"
    assert event.time == at(5)
    # The same state again (the advertisement mirror of seq 11) is a duplicate: nothing.
    mirror = AdvertMirror(87, CustodyFlags.SKIN_CONTACT | CustodyFlags.TAMPER_LATCHED, 11)
    assert events(monitor.mirror(mirror, at(6))) == []
    # Latch cleared, strap closed: no alarm; opened again: a new alarm.
    assert events(monitor.custody(status(WORN, 12), at(7), "indication")) == []
    assert events(monitor.custody(status(CustodyFlags.SKIN_CONTACT, 13), at(8), "indication")) == [
        "strap_opened"
    ]


def test_a_band_first_seen_open_and_latched_alarms_at_once() -> None:
    readings = BandMonitor("b", POLICY).custody(
        status(CustodyFlags.TAMPER_LATCHED, 1), at(0), "read"
    )
    assert events(readings) == ["strap_opened", "tamper", "contact_lost"]


def test_contact_lost_from_flags_and_from_heart_rate() -> None:
    monitor = worn_monitor()
    assert events(monitor.custody(status(CustodyFlags.STRAP_CLOSED, 11), at(1), "indication")) == [
        "contact_lost"
    ]
    assert events(monitor.heart_rate(HeartRateMeasurement(70, contact=False), at(2))) == []
    assert events(monitor.heart_rate(HeartRateMeasurement(70, contact=True), at(3))) == []
    assert events(monitor.heart_rate(HeartRateMeasurement(70, contact=False), at(4))) == [
        "contact_lost"
    ]
    # "Contact not supported" says nothing about the skin.
    assert events(monitor.heart_rate(HeartRateMeasurement(70, contact=None), at(5))) == []
    assert monitor.contact is False


def test_heart_rate_alarm_after_the_configured_time_out_of_range() -> None:
    monitor = worn_monitor()
    assert events(monitor.heart_rate(HeartRateMeasurement(160, contact=True), at(0))) == []
    assert events(monitor.heart_rate(HeartRateMeasurement(165, contact=True), at(29))) == []
    alarm = monitor.heart_rate(HeartRateMeasurement(170, contact=True), at(30))
    assert events(alarm) == ["heart_rate_alarm"]
    event = alarm[-1]
    assert event.body["since"] == at(0).isoformat()
    assert event.body["held_s"] == 30.0
    assert event.body["bpm"] == 170
    # Once per episode.
    assert events(monitor.heart_rate(HeartRateMeasurement(170, contact=True), at(60))) == []
    # Back in range re-arms; low is out of range too.
    monitor.heart_rate(HeartRateMeasurement(80, contact=True), at(61))
    monitor.heart_rate(HeartRateMeasurement(35, contact=True), at(62))
    assert events(monitor.heart_rate(HeartRateMeasurement(34, contact=True), at(92))) == [
        "heart_rate_alarm"
    ]


def test_a_dip_into_range_restarts_the_heart_rate_clock() -> None:
    monitor = worn_monitor()
    monitor.heart_rate(HeartRateMeasurement(160), at(0))
    monitor.heart_rate(HeartRateMeasurement(120), at(20))
    monitor.heart_rate(HeartRateMeasurement(160), at(21))
    assert events(monitor.heart_rate(HeartRateMeasurement(160), at(50))) == []
    assert events(monitor.heart_rate(HeartRateMeasurement(160), at(51))) == ["heart_rate_alarm"]


def test_heart_rate_without_skin_contact_does_not_count() -> None:
    monitor = worn_monitor()
    monitor.heart_rate(HeartRateMeasurement(0, contact=False), at(0))
    assert "heart_rate_alarm" not in events(
        monitor.heart_rate(HeartRateMeasurement(0, contact=False), at(60))
    )


def test_heart_rate_telemetry_body() -> None:
    readings = worn_monitor().heart_rate(
        HeartRateMeasurement(75, contact=True, energy_kj=5, rr_intervals=(1024,)), at(1)
    )
    assert readings[0].kind == "heart_rate"
    assert not readings[0].event
    assert readings[0].body == {"bpm": 75, "contact": True, "energy_kj": 5, "rr_s": [1.0]}


def test_battery_low_with_hysteresis_and_band_flag() -> None:
    monitor = worn_monitor()
    assert events(monitor.battery_level(25, at(0), "read")) == []
    assert events(monitor.battery_level(19, at(1), "notification")) == ["battery_low"]
    assert events(monitor.battery_level(18, at(2), "notification")) == []
    assert events(monitor.battery_level(21, at(3), "notification")) == []
    # Still latched: 21 % is above the threshold but below threshold + rearm (25 %).
    assert events(monitor.battery_level(19, at(4), "notification")) == []
    monitor.battery_level(25, at(5), "notification")
    assert events(monitor.battery_level(19, at(6), "notification")) == ["battery_low"]
    # The band's own low-battery flag raises it too, whatever the level.
    flagged = BandMonitor("b", POLICY)
    flagged.battery_level(60, at(0), "read")
    assert events(
        flagged.custody(status(WORN | CustodyFlags.LOW_BATTERY, 1), at(1), "indication")
    ) == ["battery_low"]


def test_battery_telemetry_from_advertisements_only_on_change() -> None:
    monitor = worn_monitor()
    assert [r.kind for r in monitor.battery_level(80, at(0), "advertisement")] == ["battery"]
    assert monitor.battery_level(80, at(1), "advertisement") == []
    assert [r.kind for r in monitor.battery_level(80, at(2), "read")] == ["battery"]


def test_custody_sequence_gaps_are_reported() -> None:
    monitor = worn_monitor()
    gap = monitor.custody(status(WORN, 14), at(1), "read")
    assert events(gap) == ["custody_seq_gap"]
    assert gap[0].body == {
        "previous": 10,
        "seq": 14,
        "missing": 3,
        "reason": "skipped",
        "source": "read",
    }
    assert monitor.gaps == 1


def test_sequence_wraps_around_without_a_gap() -> None:
    monitor = BandMonitor("b", POLICY)
    monitor.custody(status(WORN, 0xFFFF), at(0), "read")
    assert events(monitor.custody(status(WORN, 0), at(1), "indication")) == []
    assert monitor.last_seq == 0


def test_a_stale_advertisement_is_ignored_and_a_restart_is_a_gap() -> None:
    monitor = worn_monitor()
    monitor.custody(status(CustodyFlags.SKIN_CONTACT, 11), at(1), "indication")
    # An advertisement queued before the indication still says seq 10, strap closed.
    assert monitor.mirror(AdvertMirror(87, WORN, 10), at(2))[1:] == []
    assert monitor.flags == CustodyFlags.SKIN_CONTACT
    # The band restarted its counter: GATT values arrive in order, so behind means restarted.
    restart = monitor.custody(status(WORN, 1), at(3), "read")
    assert events(restart) == ["custody_seq_gap"]
    assert restart[0].body["reason"] == "backwards"
    assert monitor.last_seq == 1
    # Advertisements arrive in order too: one going backwards after another is a restart.
    passive = BandMonitor("b", POLICY)
    passive.mirror(AdvertMirror(87, WORN, 40), at(0))
    assert events(passive.mirror(AdvertMirror(87, CustodyFlags.SKIN_CONTACT, 2), at(1))) == [
        "custody_seq_gap",
        "strap_opened",
    ]


def test_fall_is_an_event() -> None:
    monitor = worn_monitor()
    assert events(monitor.custody(status(WORN | CustodyFlags.FALL, 11), at(1), "indication")) == [
        "fall"
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        worn_monitor().heart_rate(HeartRateMeasurement(70), datetime(2026, 11, 24, 9, 30))  # noqa: DTZ001 - the point of the test


def test_policy_checks_itself() -> None:
    with pytest.raises(ValueError, match="heart_rate_low"):
        AlarmPolicy(heart_rate_low=150, heart_rate_high=40)
