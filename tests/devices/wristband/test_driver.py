"""The fleet driver's production bleak path against bands emulated by bumble in this process.

The fleet uses ``BleakScanner`` and bleak-retry-connector's ``establish_connection`` exactly as
on an agent; only the backend classes come from the bumble radio. Readings are stamped by a
clock in the centre's zone (Asia/Shanghai) to keep zone handling honest.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from bumble.link import LocalLink

from devices.base import CommandRejected
from devices.wristband.bumble_backend import BumbleRadio
from devices.wristband.codec import CustodyFlags
from devices.wristband.driver import WristbandFleet
from devices.wristband.emulator import EmulatedBand
from devices.wristband.watchdog import Recovery
from tests.devices.wristband.support import (
    BAND_ADDRESS,
    BAND_ID,
    OTHER_ADDRESS,
    OTHER_ID,
    RecordingHealth,
    RecordingSink,
    StallingController,
    fleet_settings,
    running,
    wait_until,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


def make_fleet(
    link: LocalLink,
    controller: type[StallingController] | None = None,
    bands: list[tuple[str, str]] | None = None,
    **options: object,
) -> WristbandFleet:
    radio = (
        BumbleRadio.on_link(link, controller_class=controller)
        if controller
        else BumbleRadio.on_link(link)
    )
    return WristbandFleet(fleet_settings(bands, **options), radio=radio, clock=shanghai_now)


def connected(fleet: WristbandFleet, band: str = BAND_ID) -> bool:
    return bool(fleet.status()["bands"][band]["connected"])


async def test_strap_opened_mid_session_reaches_the_sink_by_indication(
    link: LocalLink, band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        await band.notify_heart_rate(76)
        await wait_until(lambda: sink.find("heart_rate", bpm=76), what="a heart rate reading")
        await band.open_strap()
        await wait_until(lambda: sink.find("strap_opened"), what="strap_opened")
    event = sink.find("strap_opened")
    assert event is not None
    assert event.event
    assert event.device == BAND_ID
    assert event.body["source"] == "indication"
    assert event.body["event_seq"] == 1
    assert event.time.tzinfo == SHANGHAI
    heart_rate = sink.find("heart_rate", bpm=76)
    assert heart_rate is not None
    assert not heart_rate.event
    assert heart_rate.body["contact"] is True
    assert sink.find("battery", source="read") is not None
    assert health.availability[0] is True
    assert health.frames > 3
    assert not health.errors


async def test_band_out_of_range_is_absent_after_k_intervals_and_offline(
    link: LocalLink, band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        await band.leave_range()
        await wait_until(lambda: sink.find("band_absent"), what="band_absent")
        await wait_until(lambda: health.availability[-1] is False, what="offline")
        assert not connected(fleet)
        absent = sink.find("band_absent")
        assert absent is not None
        assert absent.event
        assert absent.body["missed_intervals"] == 3
        assert absent.body["scanner"] == "bumble-local"
        # Absent no sooner than k intervals after the last advertisement.
        last_seen = datetime.fromisoformat(absent.body["last_seen"])
        assert (absent.time - last_seen).total_seconds() > 0.3
        presence = [r for r in sink.readings if r.kind == "presence"]
        assert presence[-1].body["present"] is False

        await band.enter_range()
        await wait_until(lambda: sink.find("band_present"), what="band_present")
        await wait_until(lambda: health.availability[-1] is True, what="online again")
        await wait_until(lambda: connected(fleet), what="a reconnection")
    assert health.availability == [True, False, True]


async def test_clear_tamper_command_writes_the_control_point(
    link: LocalLink, band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link)
    async with running(fleet, sink, health):
        with pytest.raises(CommandRejected, match="not connected"):
            await fleet.command("clear_tamper", {"band": BAND_ID})
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        await band.tamper()
        await wait_until(lambda: sink.find("tamper"), what="the tamper event")
        assert await fleet.command("clear_tamper", {"band": BAND_ID}) == {
            "band": BAND_ID,
            "written": True,
        }
        await wait_until(
            lambda: CustodyFlags.TAMPER_LATCHED not in band.flags,
            what="the band to clear its latch",
        )
        await wait_until(
            lambda: "tamper_latched" not in fleet.status()["bands"][BAND_ID]["flags"],
            what="the fleet to see the cleared latch",
        )
        with pytest.raises(CommandRejected, match="known band"):
            await fleet.command("clear_tamper", {"band": "band-9999"})
        with pytest.raises(CommandRejected, match="unknown command"):
            await fleet.command("self_destruct", {})
    assert band.control_writes == [b"\x01"]


async def test_heart_rate_alarm_and_contact_lost_end_to_end(
    link: LocalLink, band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        for _ in range(200):
            await band.notify_heart_rate(172)
            if sink.find("heart_rate_alarm"):
                break
            await asyncio.sleep(0.02)
        await wait_until(lambda: sink.find("heart_rate_alarm"), what="heart_rate_alarm")
        await band.set_contact(False)
        await wait_until(lambda: sink.find("contact_lost"), what="contact_lost")
    alarm = sink.find("heart_rate_alarm")
    assert alarm is not None
    assert alarm.body["bpm"] == 172
    assert alarm.body["held_s"] >= 0.2


async def test_malformed_notifications_are_counted_and_skipped(
    link: LocalLink, band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        await band.notify_raw_heart_rate(bytes.fromhex("10 48 33"))
        await band.notify_raw_heart_rate(b"")
        await band.notify_heart_rate(70)
        await wait_until(lambda: sink.find("heart_rate", bpm=70), what="the good notification")
    assert health.errors["decode"] == 2
    assert fleet.decode_errors == 2


async def test_advertisements_only_mode_sees_custody_and_gaps(link: LocalLink) -> None:
    band = EmulatedBand(link, BAND_ADDRESS, BAND_ID, advertising_interval_ms=150)
    await band.start()
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link, connect=False)
    try:
        async with running(fleet, sink, health):
            await wait_until(lambda: sink.find("custody"), what="the first mirror")
            # Three changes within one advertising interval: the mirror skips two sequence
            # numbers, which the fleet reports.
            await band.tamper()
            await band.fall()
            await band.open_strap()
            await wait_until(lambda: sink.find("custody_seq_gap"), what="custody_seq_gap")
            await wait_until(lambda: sink.find("strap_opened"), what="strap_opened")
    finally:
        await band.stop()
    gap = sink.find("custody_seq_gap")
    assert gap is not None
    assert gap.body == {
        "previous": 0,
        "seq": 3,
        "missing": 2,
        "reason": "skipped",
        "source": "advertisement",
    }
    assert {"tamper", "fall", "strap_opened"} <= set(sink.kinds())
    assert health.errors["custody_seq_gap"] == 1
    assert not connected(fleet)


async def test_one_scanner_serves_two_bands(
    link: LocalLink, band: EmulatedBand, other_band: EmulatedBand
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link, bands=[(BAND_ID, BAND_ADDRESS), (OTHER_ID, OTHER_ADDRESS)])
    async with running(fleet, sink, health):
        await wait_until(
            lambda: connected(fleet, BAND_ID) and connected(fleet, OTHER_ID),
            what="both bands to be connected",
        )
        await other_band.open_strap()
        await wait_until(lambda: sink.find("strap_opened"), what="strap_opened")
    opened = sink.find("strap_opened")
    assert opened is not None
    assert opened.device == OTHER_ID
    assert sink.find("battery", percent=55) is not None
    assert sink.find("battery", percent=87) is not None


async def test_watchdog_restarts_a_silently_stopped_scan(
    link: LocalLink, band: EmulatedBand, stalling: type[StallingController]
) -> None:
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link, stalling, watchdog_timeout=0.4, watchdog_max_wait=2.0)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), what="the band to be connected")
        stalling.created[-1].stall_scan()
        await wait_until(lambda: fleet.recoveries, what="a recovery")
        before = len(sink.readings)
        await band.notify_heart_rate(66)
        await wait_until(
            lambda: (
                sink.find("band_present")
                or len(
                    [
                        r
                        for r in sink.readings[before:]
                        if r.kind == "presence" and r.body["present"]
                    ]
                )
                > 2
            ),
            what="advertisements again",
        )
        # The connection was left alone: notifications still flow.
        await wait_until(lambda: sink.find("heart_rate", bpm=66), what="a heart rate")
    assert fleet.recoveries == [Recovery.RESTART_SCAN]
    assert health.errors["restart_scan"] == 1
    assert len(stalling.created) == 1


async def test_watchdog_escalates_to_an_adapter_reset(
    link: LocalLink, band: EmulatedBand, stalling: type[StallingController]
) -> None:
    stalling.deaf_instances = 1
    sink, health = RecordingSink(), RecordingHealth()
    fleet = make_fleet(link, stalling, watchdog_timeout=0.3, watchdog_max_wait=2.0)
    async with running(fleet, sink, health):
        await wait_until(lambda: connected(fleet), within=10, what="a connection after reset")
    assert fleet.recoveries == [Recovery.RESTART_SCAN, Recovery.RESET_ADAPTER]
    assert len(stalling.created) == 2
    assert health.errors["restart_scan"] == 1
    assert health.errors["reset_adapter"] == 1


async def test_a_missing_adapter_is_retried_not_fatal() -> None:
    sink, health = RecordingSink(), RecordingHealth()
    # Nothing listens on port 9 of the loopback: the transport cannot be opened.
    fleet = WristbandFleet(fleet_settings(backend="bumble:tcp-client:127.0.0.1:9"))
    async with running(fleet, sink, health) as task:
        await wait_until(lambda: health.errors["adapter"] >= 2, what="two failed openings")
        assert not task.done()
    assert health.availability == [False]
