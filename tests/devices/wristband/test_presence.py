"""Presence from synthetic advertisements (bumble's radio has one RSSI), and the scan watchdog.

Fixed times in the centre's zone (Asia/Shanghai, UTC+8).
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devices.backoff import Backoff
from devices.base import DeviceReading
from devices.wristband.presence import PresencePolicy, PresenceTracker
from devices.wristband.watchdog import Recovery, ScanWatchdog

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 21, 0, 0, tzinfo=SHANGHAI)
POLICY = PresencePolicy(interval=timedelta(seconds=5), missed=3, alpha=0.5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kinds(readings: list[DeviceReading]) -> list[tuple[str, str]]:
    return [(reading.device, reading.kind) for reading in readings]


def tracker(*bands: str) -> PresenceTracker:
    return PresenceTracker(bands or ("b1",), POLICY, "hci0", started=T0)


def test_absent_after_k_missed_intervals_not_before() -> None:
    presence = tracker("b1")
    presence.advertisement("b1", -60, at(1))
    assert kinds(presence.tick(at(5))) == [("b1", "presence")]
    # Last heard at 1 s; 3 intervals of 5 s: still present at 16 s, absent after.
    assert presence.is_present("b1", at(16))
    assert kinds(presence.tick(at(16))) == [("b1", "presence")]
    absent = presence.tick(at(16.5))
    assert kinds(absent) == [("b1", "band_absent"), ("b1", "presence")]
    assert absent[0].event
    assert absent[0].body == {
        "last_seen": at(1).isoformat(),
        "missed_intervals": 3,
        "scanner": "hci0",
    }
    assert absent[1].body["present"] is False
    # Reported once, not on every tick.
    assert kinds(presence.tick(at(21.5))) == [("b1", "presence")]


def test_band_present_event_when_an_absent_band_returns() -> None:
    presence = tracker("b1")
    presence.advertisement("b1", -60, at(0))
    presence.tick(at(20))
    back = presence.advertisement("b1", -70, at(21))
    assert kinds(back) == [("b1", "band_present")]
    assert back[0].event
    assert presence.advertisement("b1", -70, at(22)) == []


def test_a_band_never_heard_is_absent_after_the_start_up_grace() -> None:
    presence = tracker("b1", "b2")
    presence.advertisement("b1", -60, at(1))
    assert kinds(presence.tick(at(5))) == [("b1", "presence")]
    late = presence.tick(at(15.5))
    assert ("b2", "band_absent") in kinds(late)
    assert late[-1].body["last_seen"] is None


def test_rssi_is_smoothed_and_unavailable_values_are_skipped() -> None:
    presence = tracker("b1")
    for rssi in (-60, -80, 127, -127, None, -80):
        presence.advertisement("b1", rssi, at(1))
    state = presence.bands["b1"]
    # -60, then halfway to -80 (-70), then halfway again (-75); 127/-127/None ignored.
    assert state.rssi == -75.0
    tick = presence.tick(at(2))
    assert tick[0].body["rssi"] == -75.0
    assert tick[0].body["adverts"] == 6
    assert presence.tick(at(3))[0].body["adverts"] == 0


def test_a_noisy_rssi_is_smoothed() -> None:
    rng = random.Random(7)
    presence = PresenceTracker(["b1"], PresencePolicy(alpha=0.1), "hci0", started=T0)
    raw: list[int] = []
    smoothed: list[float] = []
    for step in range(400):
        sample = round(rng.gauss(-70, 6))
        presence.advertisement("b1", sample, at(step * 0.1))
        raw.append(sample)
        smoothed.append(presence.bands["b1"].rssi or 0.0)
    assert abs(statistics.fmean(smoothed[100:]) + 70) < 2
    assert statistics.pstdev(smoothed[100:]) < statistics.pstdev(raw[100:]) / 3


def test_unknown_bands_are_ignored() -> None:
    presence = tracker("b1")
    assert presence.advertisement("stranger", -40, at(0)) == []
    assert not presence.any_present(at(0))


def test_times_in_other_zones_compare_as_instants() -> None:
    presence = tracker("b1")
    presence.advertisement("b1", -60, at(0).astimezone(UTC))
    assert presence.is_present("b1", at(15))
    assert not presence.is_present("b1", at(15.1).astimezone(UTC))


def test_policy_checks_itself() -> None:
    with pytest.raises(ValueError, match="missed"):
        PresencePolicy(missed=0)
    with pytest.raises(ValueError, match="alpha"):
        PresencePolicy(alpha=0.0)
    with pytest.raises(ValueError, match="aware"):
        PresenceTracker(["b1"], POLICY, "hci0", started=datetime(2026, 11, 24))  # noqa: DTZ001 - the point of the test


# --- scan watchdog --------------------------------------------------------------------------


def watchdog() -> ScanWatchdog:
    return ScanWatchdog(timedelta(seconds=30), timedelta(seconds=300), started=T0)


def test_watchdog_restarts_the_scan_then_resets_at_a_slowing_pace() -> None:
    dog = watchdog()
    assert dog.due(at(29)) is Recovery.NONE
    assert dog.due(at(30)) is Recovery.RESTART_SCAN
    assert dog.performed(Recovery.RESTART_SCAN, at(31)) == timedelta(seconds=30)
    assert dog.due(at(60)) is Recovery.NONE
    assert dog.due(at(61)) is Recovery.RESET_ADAPTER
    waits = []
    now = at(61)
    for _ in range(6):
        assert dog.due(now) is Recovery.RESET_ADAPTER
        wait = dog.performed(Recovery.RESET_ADAPTER, now)
        waits.append(wait.total_seconds())
        now += wait
    assert waits == [60, 120, 240, 300, 300, 300]
    assert dog.silence(now) == now - T0


def test_an_advertisement_starts_the_watchdog_over() -> None:
    dog = watchdog()
    dog.performed(Recovery.RESTART_SCAN, at(30))
    dog.advertisement(at(40))
    assert dog.step == 0
    assert dog.due(at(69)) is Recovery.NONE
    assert dog.due(at(70)) is Recovery.RESTART_SCAN


def test_watchdog_checks_itself() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        ScanWatchdog(timedelta(seconds=30), timedelta(seconds=10), started=T0)


def test_backoff_table() -> None:
    backoff = Backoff(1.0, 60.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next_delay() == 1
    jittered = Backoff(1.0, 60.0, jitter=0.5, rng=random.Random(1))
    assert all(1.0 <= jittered.next_delay() / base <= 1.5 for base in (1, 2, 4))
