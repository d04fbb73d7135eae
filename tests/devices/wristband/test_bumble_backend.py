"""bleak's public API (and bleak-retry-connector) on the bumble backend, against emulated bands."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak_retry_connector import BleakNotFoundError, establish_connection
from bumble import hci

from devices.wristband import profile
from devices.wristband.bumble_backend import BumbleDeviceDetails, BumbleRadio
from devices.wristband.codec import (
    CustodyFlags,
    decode_battery_level,
    decode_custody_status,
    decode_heart_rate,
    mirror_from_manufacturer_data,
)
from devices.wristband.emulator import EmulatedBand
from tests.devices.wristband.support import BAND_ADDRESS, BAND_ID, OTHER_ADDRESS, wait_until


async def discover(radio: BumbleRadio, address: str) -> tuple[BLEDevice, AdvertisementData]:
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    scanner = BleakScanner(
        lambda d, a: found.__setitem__(d.address, (d, a)), backend=radio.scanner_backend
    )
    async with scanner:
        await wait_until(lambda: address in found, what=f"an advertisement from {address}")
    return found[address]


async def connect(
    radio: BumbleRadio, device: BLEDevice, lost: list[BleakClient] | None = None
) -> BleakClient:
    return await establish_connection(
        BleakClient,
        device,
        device.name or device.address,
        disconnected_callback=(lost.append if lost is not None else None),
        max_attempts=2,
        backend=radio.client_backend,
        timeout=2.0,
    )


async def test_scanner_reports_the_advertisement_as_bleak_does(
    radio: BumbleRadio, band: EmulatedBand
) -> None:
    device, data = await discover(radio, BAND_ADDRESS)
    assert device.address == BAND_ADDRESS
    assert device.name == BAND_ID
    assert isinstance(device.details, BumbleDeviceDetails)
    assert data.local_name == BAND_ID
    assert data.service_uuids == [profile.HEART_RATE_SERVICE]
    # bumble's virtual radio has one RSSI for everything.
    assert data.rssi == -50
    mirror = mirror_from_manufacturer_data(data.manufacturer_data)
    assert mirror is not None
    assert mirror.battery == 87
    assert mirror.flags == CustodyFlags.STRAP_CLOSED | CustodyFlags.SKIN_CONTACT


async def test_scanner_filters_on_service_uuids(radio: BumbleRadio, band: EmulatedBand) -> None:
    heard: list[str] = []
    wrong = BleakScanner(
        lambda d, a: heard.append(d.address),
        [profile.CUSTODY_SERVICE],
        backend=radio.scanner_backend,
    )
    right = BleakScanner(
        lambda d, a: heard.append("hr:" + d.address),
        [profile.HEART_RATE_SERVICE],
        backend=radio.scanner_backend,
    )
    async with wrong, right:
        await wait_until(lambda: heard, what="a filtered advertisement")
        await asyncio.sleep(0.1)
    assert set(heard) == {"hr:" + BAND_ADDRESS}


async def test_gatt_through_bleak_and_establish_connection(
    radio: BumbleRadio, band: EmulatedBand
) -> None:
    device, _ = await discover(radio, BAND_ADDRESS)
    lost: list[BleakClient] = []
    client = await connect(radio, device, lost)
    assert client.is_connected
    services = {service.uuid for service in client.services}
    assert {
        profile.HEART_RATE_SERVICE,
        profile.BATTERY_SERVICE,
        profile.CUSTODY_SERVICE,
    } <= services
    status_char = client.services.get_characteristic(profile.CUSTODY_STATUS)
    assert status_char is not None
    assert sorted(status_char.properties) == ["indicate", "read"]
    assert decode_battery_level(await client.read_gatt_char(profile.BATTERY_LEVEL)) == 87
    assert decode_custody_status(await client.read_gatt_char(profile.CUSTODY_STATUS)).event_seq == 0

    heart_rates: list[int] = []
    statuses: list[CustodyFlags] = []
    await client.start_notify(
        profile.HEART_RATE_MEASUREMENT,
        lambda _c, data: heart_rates.append(decode_heart_rate(data).bpm),
    )
    await client.start_notify(
        profile.CUSTODY_STATUS, lambda _c, data: statuses.append(decode_custody_status(data).flags)
    )
    await band.notify_heart_rate(81)
    await band.tamper()
    # indicate_subscribers returned: the central's ATT layer confirmed the indication.
    assert band.indications_confirmed == 1
    await client.write_gatt_char(profile.CUSTODY_CONTROL_POINT, b"\x01", response=True)
    await wait_until(lambda: len(statuses) == 2, what="the tamper-cleared indication")
    assert heart_rates == [81]
    assert CustodyFlags.TAMPER_LATCHED in statuses[0]
    assert CustodyFlags.TAMPER_LATCHED not in statuses[1]
    with pytest.raises(BleakGATTProtocolError) as refused:
        await client.write_gatt_char(profile.CUSTODY_CONTROL_POINT, b"\x7f", response=True)
    assert refused.value.code == 0x13  # Value Not Allowed

    await client.stop_notify(profile.HEART_RATE_MEASUREMENT)
    await band.notify_heart_rate(90)
    await asyncio.sleep(0.05)
    assert heart_rates == [81]

    await client.disconnect()
    assert not client.is_connected
    assert lost == [client]
    with pytest.raises(BleakError, match="create a new BleakClient"):
        await client.connect()


async def test_band_leaving_range_disconnects_the_client(
    radio: BumbleRadio, band: EmulatedBand
) -> None:
    device, _ = await discover(radio, BAND_ADDRESS)
    lost: list[BleakClient] = []
    client = await connect(radio, device, lost)
    await band.leave_range()
    await wait_until(lambda: lost, what="the disconnected callback")
    assert not client.is_connected
    with pytest.raises(BleakError, match="Service Discovery has not been performed"):
        await client.read_gatt_char(profile.BATTERY_LEVEL)


async def test_connecting_to_an_absent_band_times_out(radio: BumbleRadio) -> None:
    ghost = BLEDevice(OTHER_ADDRESS, "ghost", None)
    started = time.monotonic()
    with pytest.raises(BleakNotFoundError):
        await establish_connection(
            BleakClient, ghost, "ghost", max_attempts=2, backend=radio.client_backend, timeout=0.2
        )
    assert time.monotonic() - started < 2.0
    # The radio is usable afterwards: the cancelled attempts left no pending connection.
    assert not radio.device.is_le_connecting


async def test_two_bands_connected_at_once(
    radio: BumbleRadio, band: EmulatedBand, other_band: EmulatedBand
) -> None:
    first, _ = await discover(radio, BAND_ADDRESS)
    second, _ = await discover(radio, OTHER_ADDRESS)
    clients = await asyncio.gather(connect(radio, first), connect(radio, second))
    levels = [decode_battery_level(await c.read_gatt_char(profile.BATTERY_LEVEL)) for c in clients]
    assert levels == [87, 55]
    for client in clients:
        await client.disconnect()


async def test_notification_throughput(radio: BumbleRadio, band: EmulatedBand) -> None:
    """Heart rate notifications through bumble and bleak, decoded: far above 1 Hz per band."""
    device, _ = await discover(radio, BAND_ADDRESS)
    client = await connect(radio, device)
    decoded: list[int] = []
    await client.start_notify(
        profile.HEART_RATE_MEASUREMENT, lambda _c, data: decoded.append(decode_heart_rate(data).bpm)
    )
    count = 1000
    started = time.perf_counter()
    for index in range(count):
        await band.notify_heart_rate(60 + index % 60)
    await wait_until(lambda: len(decoded) == count, what="every notification")
    rate = count / (time.perf_counter() - started)
    await client.disconnect()
    assert rate > 200, f"{rate:.0f} notifications/s"


async def test_service_filter_limits_discovery(radio: BumbleRadio, band: EmulatedBand) -> None:
    device, _ = await discover(radio, BAND_ADDRESS)
    client = await establish_connection(
        BleakClient,
        device,
        BAND_ID,
        max_attempts=1,
        backend=radio.client_backend,
        timeout=2.0,
        services=["180d", profile.CUSTODY_SERVICE],
    )
    assert {service.uuid for service in client.services} == {
        profile.HEART_RATE_SERVICE,
        profile.CUSTODY_SERVICE,
    }
    await client.disconnect()


async def test_passive_scanning_gets_no_scan_responses(
    radio: BumbleRadio, band: EmulatedBand
) -> None:
    """A passive scanner sends no scan requests, so it hears each advertisement once; an active
    one hears the advertisement and the band's scan response."""

    async def reports_per_second(mode: Literal["active", "passive"]) -> float:
        heard: list[AdvertisementData] = []
        scanner = BleakScanner(
            lambda d, a: heard.append(a), backend=radio.scanner_backend, scanning_mode=mode
        )
        async with scanner:
            await wait_until(lambda: heard, what="a first report")
            start, count = time.monotonic(), len(heard)
            await asyncio.sleep(1.0)
            return (len(heard) - count) / (time.monotonic() - start)

    passive = await reports_per_second("passive")
    active = await reports_per_second("active")
    assert passive > 5
    assert 1.6 < active / passive < 2.5


def test_the_quiet_host_formats_packets_only_for_debug_logging() -> None:
    """bumble's Host formats every packet for a debug line even with debug logging off."""
    import logging

    from bumble.host import Host

    from devices.wristband.bumble_backend import QuietHost

    class CountedReset(hci.HCI_Reset_Command):
        formatted = 0

        def __str__(self) -> str:
            CountedReset.formatted += 1
            return "reset"

    class Sink:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def on_packet(self, packet: bytes) -> None:
            self.sent.append(packet)

    def formatted_by(host_class: type[Host], level: int) -> tuple[int, int]:
        CountedReset.formatted = 0
        sink = Sink()
        host = host_class(None, sink)
        logging.getLogger("bumble.host").setLevel(level)
        try:
            host.send_hci_packet(CountedReset())
        finally:
            logging.getLogger("bumble.host").setLevel(logging.NOTSET)
        return CountedReset.formatted, len(sink.sent)

    assert formatted_by(QuietHost, logging.WARNING) == (0, 1)
    formatted, sent = formatted_by(QuietHost, logging.DEBUG)
    assert formatted >= 1  # once per handler that writes the line
    assert sent == 1
    assert formatted_by(Host, logging.WARNING) == (1, 1)
