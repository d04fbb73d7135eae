"""Alarms the agent refuses (its disk full) wait in the fleet and go, in order, once taken."""

from __future__ import annotations

from datetime import UTC, datetime

from devices.base import DeviceReading, ReadingRefused
from devices.wristband.driver import WristbandFleet
from tests.devices.wristband.support import RecordingHealth, fleet_settings

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


class FullDiskSink:
    def __init__(self) -> None:
        self.full = True
        self.readings: list[DeviceReading] = []

    def __call__(self, reading: DeviceReading) -> None:
        if self.full and reading.event:
            raise ReadingRefused("disk full")
        self.readings.append(reading)


def _reading(kind: str, event: bool) -> DeviceReading:
    return DeviceReading("band-1", kind, NOW, {"k": kind}, event=event)


def test_refused_alarms_are_held_and_handed_again_first() -> None:
    fleet = WristbandFleet(fleet_settings())
    sink, health = FullDiskSink(), RecordingHealth()
    fleet._sink, fleet._health = sink, health  # what run() sets up
    fleet._emit([_reading("heart_rate", False), _reading("strap_opened", True)])
    fleet._emit([_reading("tamper", True), _reading("battery", False)])
    assert [r.kind for r in sink.readings] == ["heart_rate", "battery"]
    sink.full = False
    fleet._emit([])  # the next presence tick
    assert [r.kind for r in sink.readings] == ["heart_rate", "battery", "strap_opened", "tamper"]
    fleet._emit([_reading("strap_closed", True)])
    assert sink.readings[-1].kind == "strap_closed"
    assert len(sink.readings) == 5  # each alarm once
