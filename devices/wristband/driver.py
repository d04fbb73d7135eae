"""The wristband fleet driver: one scanner for every band of an agent, connections for the rest.

One :class:`WristbandFleet` is one ``[[devices]]`` table and drives *all* the agent's bands:
BLE has one radio per adapter, and the rules that keep an adapter healthy (one scanner shared by
everything, one connection attempt at a time, one recovery at a time) are rules about the whole
adapter, not about a band. Each reading's ``device`` field is the band's id; the fleet's own id
only names the table, its health and its availability, which says whether the radio hears any
of its bands at all (per-band presence travels as ``presence`` readings and ``band_absent`` /
``band_present`` events).

Tasks, all in one ``TaskGroup`` per adapter session, each named::

    <fleet>-inbox      decodes what the callbacks queued and feeds the pure state machines
    <fleet>-presence   judges presence once per interval, emits presence and availability
    <fleet>-watchdog   restarts the scan after advertisement silence, then resets the adapter
    <fleet>-<band>     per band: wait until it is heard, connect, subscribe, wait for the end

bleak and bumble call back synchronously; the callbacks only stamp the time and queue the raw
bytes, so decoding and alarms run in one place, in order, and a bug there ends ``run()`` loudly
instead of disappearing inside a radio callback.

Connections go through bleak-retry-connector's ``establish_connection`` with a new client each
time (a ``BleakClient`` is never reused), under the adapter lock that also serialises watchdog
recoveries. The lock belongs to the fleet, so give an adapter one fleet: two ``[[devices]]``
tables on one adapter would each hold their own lock and could connect at the same time.
Every await on the radio has a deadline (``connect_timeout``, ``gatt_timeout``), and
disconnecting on the way out is bounded and shielded from cancellation.

An adapter that cannot be opened, or whose recovery fails, ends the session: scanner and
connections are closed, availability goes offline, and the adapter is reopened after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bleak import BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from devices.backoff import Backoff
from devices.base import (
    CommandRejected,
    DeviceError,
    DeviceHealth,
    DeviceReading,
    ReadingRefused,
    ReadingSink,
)
from devices.wristband import profile
from devices.wristband.alarms import BandMonitor
from devices.wristband.clock import Clock, utc_now
from devices.wristband.codec import (
    decode_advert_mirror,
    decode_battery_level,
    decode_custody_status,
    decode_heart_rate,
    encode_control,
)
from devices.wristband.config import BandSpec, WristbandSettings
from devices.wristband.errors import WristbandProtocolError
from devices.wristband.presence import PresenceTracker
from devices.wristband.radio import PlatformRadio, Radio
from devices.wristband.watchdog import Recovery, ScanWatchdog

log = logging.getLogger(__name__)

# What a radio raises when it is missing, busy or gone: bleak's errors, D-Bus and socket errors,
# deadlines. Anything else is a bug and ends run().
RADIO_ERRORS: tuple[type[Exception], ...] = (BleakError, OSError, EOFError, TimeoutError)

# Events refused by a full disk held for a later hand-over, at most (then the oldest go, counted).
HELD_EVENTS_MAX = 1000

_InputKind = Literal["advert", "heart_rate", "battery", "custody"]


class AdapterFailedError(DeviceError):
    """The adapter could not be recovered; the session ends and the adapter is reopened."""


@dataclass(frozen=True, slots=True)
class _Input:
    """Raw bytes from a callback, stamped with the time they arrived."""

    band: str
    kind: _InputKind
    data: bytes | None
    source: str
    rssi: int | None = None


def make_radio(settings: WristbandSettings) -> Radio:
    """The radio a fleet's ``backend`` option names."""
    transport = settings.bumble_transport
    if transport is not None:
        from devices.wristband.bumble_backend import BumbleRadio

        return BumbleRadio.over_transport(transport)
    return PlatformRadio(settings.adapter)


class WristbandFleet:
    """A :class:`~devices.base.Device` for all the BLE wristbands of one agent."""

    def __init__(
        self,
        settings: WristbandSettings,
        *,
        radio: Radio | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._radio_override = radio
        self._clock = clock
        self._rng = rng or random.Random()
        self._by_address = {band.address: band for band in settings.bands}
        self._monitors = {band.id: BandMonitor(band.id, settings.alarms) for band in settings.bands}
        self._present = {band.id: asyncio.Event() for band in settings.bands}
        self._devices: dict[str, BLEDevice] = {}
        self._clients: dict[str, BleakClientWithServiceCache] = {}
        self._inbox: asyncio.Queue[tuple[_Input, datetime]] = asyncio.Queue()
        self._adapter_lock = asyncio.Lock()
        self._scanner: BleakScanner | None = None
        self._tracker: PresenceTracker | None = None
        self._watchdog: ScanWatchdog | None = None
        self._sink: ReadingSink | None = None
        self._health: DeviceHealth | None = None
        self._online: bool | None = None
        self._held: list[DeviceReading] = []
        self.recoveries: list[Recovery] = []
        self.decode_errors = 0

    @property
    def id(self) -> str:
        """The fleet's id: the ``[[devices]]`` table's, not a band's."""
        return self.settings.fleet

    # --- Device interface -----------------------------------------------------------------

    async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
        """Scan, connect and report until cancelled; reopen the adapter after failures."""
        self._sink, self._health = sink, health
        started = self._clock()
        self._tracker = PresenceTracker(
            [band.id for band in self.settings.bands],
            self.settings.presence,
            "",
            started,
            room=self.settings.room,
        )
        backoff = Backoff(
            self.settings.reconnect_initial, self.settings.reconnect_max, rng=self._rng
        )
        while True:
            radio = self._radio_override or make_radio(self.settings)
            self._tracker.scanner = radio.name
            failure: BaseException | None = None
            try:
                async with asyncio.timeout(self.settings.connect_timeout):
                    await radio.open()
                await self._start_scanner(radio)
            except RADIO_ERRORS as exc:
                failure = exc
            if failure is None:
                try:
                    await self._session(radio)
                except* AdapterFailedError as group:
                    failure = group.exceptions[0]
                finally:
                    await asyncio.shield(self._close(radio))
            else:
                await asyncio.shield(self._close(radio))
            delay = backoff.next_delay()
            log.warning(
                "fleet %s: adapter %s failed (%s); reopening in %.1f s",
                self.id,
                radio.name,
                failure,
                delay,
            )
            health.error("adapter")
            self._set_available(False)
            await asyncio.sleep(delay)

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """``clear_tamper`` ``{"band": id}`` writes the control point; ``status`` reports."""
        if name == "status":
            return self.status()
        if name != "clear_tamper":
            raise CommandRejected(f"unknown command {name!r} (clear_tamper, status)")
        band_id = args.get("band")
        if not isinstance(band_id, str) or self.settings.band(band_id) is None:
            raise CommandRejected(f"clear_tamper needs a known band id, got {band_id!r}")
        client = self._clients.get(band_id)
        if client is None or not client.is_connected:
            raise CommandRejected(f"band {band_id} is not connected")
        try:
            async with asyncio.timeout(self.settings.gatt_timeout):
                await client.write_gatt_char(
                    profile.CUSTODY_CONTROL_POINT,
                    encode_control(profile.ControlOpcode.CLEAR_TAMPER),
                    response=True,
                )
        except RADIO_ERRORS as exc:
            raise CommandRejected(
                f"band {band_id}: writing the control point failed: {exc or type(exc).__name__}"
            ) from exc
        return {"band": band_id, "written": True}

    def status(self) -> dict[str, Any]:
        """A snapshot of every band, for the ``status`` command and for people."""
        now = self._clock()
        bands: dict[str, Any] = {}
        for band in self.settings.bands:
            monitor = self._monitors[band.id]
            presence = self._tracker.bands.get(band.id) if self._tracker else None
            bands[band.id] = {
                "address": band.address,
                "present": bool(self._tracker and self._tracker.is_present(band.id, now)),
                "rssi": presence.rssi if presence else None,
                "connected": band.id in self._clients,
                "event_seq": monitor.last_seq,
                "flags": [flag.name.lower() for flag in monitor.flags or () if flag.name],
                "battery": monitor.battery,
                "custody_gaps": monitor.gaps,
            }
        return {
            "fleet": self.id,
            "online": self._online,
            "bands": bands,
            "recoveries": [recovery.value for recovery in self.recoveries],
        }

    # --- session --------------------------------------------------------------------------

    async def _session(self, radio: Radio) -> None:
        self._watchdog = ScanWatchdog(
            timedelta(seconds=self.settings.watchdog_timeout),
            timedelta(seconds=self.settings.watchdog_max_wait),
            self._clock(),
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(), name=f"{self.id}-inbox")
            group.create_task(self._presence_loop(), name=f"{self.id}-presence")
            group.create_task(self._watchdog_loop(radio), name=f"{self.id}-watchdog")
            if self.settings.connect:
                for band in self.settings.bands:
                    group.create_task(self._band_loop(radio, band), name=f"{self.id}-{band.id}")

    async def _close(self, radio: Radio) -> None:
        """Stop scanning, drop connections, release the adapter; bounded, never raises."""
        await self._stop_scanner()
        for client in list(self._clients.values()):
            await self._disconnect(client)
        self._clients.clear()
        try:
            async with asyncio.timeout(self.settings.gatt_timeout):
                await radio.close()
        except RADIO_ERRORS as exc:
            log.debug("fleet %s: closing %s failed: %s", self.id, radio.name, exc)

    # --- scanning -------------------------------------------------------------------------

    async def _start_scanner(self, radio: Radio) -> None:
        scanner = BleakScanner(
            self._on_advertisement, backend=radio.scanner_backend, **radio.scanner_kwargs()
        )
        async with asyncio.timeout(self.settings.gatt_timeout):
            await scanner.start()
        self._scanner = scanner

    async def _stop_scanner(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            async with asyncio.timeout(self.settings.gatt_timeout):
                await scanner.stop()
        except RADIO_ERRORS as exc:
            log.debug("fleet %s: stopping the scanner failed: %s", self.id, exc)

    def _on_advertisement(self, device: BLEDevice, data: AdvertisementData) -> None:
        now = self._clock()
        if self._watchdog is not None:
            self._watchdog.advertisement(now)
        band = self._by_address.get(device.address.upper())
        if band is None:
            return
        self._devices[band.id] = device
        payload = data.manufacturer_data.get(profile.COMPANY_ID)
        mirror = profile.COMPANY_ID.to_bytes(2, "little") + payload if payload is not None else None
        self._post(_Input(band.id, "advert", mirror, "advertisement", data.rssi), now)

    def _post(self, item: _Input, now: datetime) -> None:
        self._inbox.put_nowait((item, now))

    # --- the inbox: decode, judge, report -------------------------------------------------

    async def _consume(self) -> None:
        while True:
            item, now = await self._inbox.get()
            self._process(item, now)

    def _process(self, item: _Input, now: datetime) -> None:
        assert self._tracker is not None
        monitor = self._monitors[item.band]
        readings: list[DeviceReading] = []
        if item.kind == "advert":
            readings += self._tracker.advertisement(item.band, item.rssi, now)
            self._present[item.band].set()
            self._set_available(True)
        if item.data is None:
            self._emit(readings)
            return
        try:
            if item.kind == "advert":
                readings += monitor.mirror(decode_advert_mirror(item.data), now)
            elif item.kind == "heart_rate":
                readings += monitor.heart_rate(decode_heart_rate(item.data), now)
            elif item.kind == "battery":
                readings += monitor.battery_level(decode_battery_level(item.data), now, item.source)
            else:
                readings += monitor.custody(decode_custody_status(item.data), now, item.source)
        except WristbandProtocolError as exc:
            self.decode_errors += 1
            log.debug("band %s: %s", item.band, exc)
            self._require_health().error("decode")
        else:
            self._require_health().frame()
        self._emit(readings)

    def _emit(self, readings: list[DeviceReading]) -> None:
        sink = self._sink
        if sink is None:
            return
        for reading in readings:
            if reading.kind == "custody_seq_gap":
                self._require_health().error("custody_seq_gap")
        # A band does not send an alarm twice, so an event the agent refused (its disk full) is
        # held here, in order, and handed again first: at the next reading or presence tick.
        queue = [*self._held, *readings]
        self._held.clear()
        refused_at = None
        for index, reading in enumerate(queue):
            try:
                sink(reading)
            except ReadingRefused:
                refused_at = index
                break
        if refused_at is None:
            return
        for reading in queue[refused_at + 1 :]:
            if not reading.event:
                sink(reading)  # telemetry is never refused this way (a full disk counts it)
        held = [r for r in queue[refused_at:] if r.event]
        if len(held) > HELD_EVENTS_MAX:
            self._require_health().error("event_refused_dropped")
            log.error(
                "fleet %s: %d refused events dropped (more than %d held)",
                self.id,
                len(held) - HELD_EVENTS_MAX,
                HELD_EVENTS_MAX,
            )
            held = held[-HELD_EVENTS_MAX:]
        self._held.extend(held)

    def _require_health(self) -> DeviceHealth:
        if self._health is None:
            raise RuntimeError("the fleet is not running")
        return self._health

    def _set_available(self, online: bool) -> None:
        if online != self._online:
            self._online = online
            if self._health is not None:
                self._health.available(online)

    # --- presence and watchdog ------------------------------------------------------------

    async def _presence_loop(self) -> None:
        assert self._tracker is not None
        tracker = self._tracker
        interval = self.settings.presence.interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            self._emit(tracker.tick(now))
            for band in self.settings.bands:
                if not tracker.is_present(band.id, now):
                    self._present[band.id].clear()
            heard_any = tracker.any_present(now)
            past_grace = now - tracker.started > self.settings.presence.absent_after
            if heard_any or past_grace:
                self._set_available(heard_any)

    async def _watchdog_loop(self, radio: Radio) -> None:
        assert self._watchdog is not None
        watchdog = self._watchdog
        health = self._require_health()
        # A reset re-initialises the controller and reconnects nothing by itself: give it the
        # time of a connection and of a GATT exchange.
        deadline = self.settings.connect_timeout + self.settings.gatt_timeout
        while True:
            now = self._clock()
            recovery = watchdog.due(now)
            if recovery is Recovery.NONE:
                await asyncio.sleep(max(0.01, (watchdog.next_due - now).total_seconds()))
                continue
            log.warning(
                "fleet %s: no advertisement for %.1f s: %s",
                self.id,
                watchdog.silence(now).total_seconds(),
                recovery.value,
            )
            health.error(recovery.value)
            # The adapter lock: no connection attempt runs during a recovery, and since this
            # one task performs every recovery and awaits it, two can never overlap.
            async with self._adapter_lock:
                try:
                    async with asyncio.timeout(deadline):
                        if recovery is Recovery.RESTART_SCAN:
                            await self._stop_scanner()
                            await self._start_scanner(radio)
                        else:
                            await self._stop_scanner()
                            for client in list(self._clients.values()):
                                await self._disconnect(client)
                            await radio.reset()
                            await self._start_scanner(radio)
                except RADIO_ERRORS as exc:
                    raise AdapterFailedError(f"{recovery.value} failed: {exc!r}") from exc
            self.recoveries.append(recovery)
            watchdog.performed(recovery, self._clock())

    # --- connections ----------------------------------------------------------------------

    async def _band_loop(self, radio: Radio, band: BandSpec) -> None:
        health = self._require_health()
        backoff = Backoff(
            self.settings.reconnect_initial, self.settings.reconnect_max, rng=self._rng
        )
        while True:
            await self._present[band.id].wait()
            device = self._devices.get(band.id)
            if device is None:
                await asyncio.sleep(self.settings.presence.interval.total_seconds())
                continue
            lost = asyncio.Event()
            try:
                client = await self._connect(radio, band, device, lost)
                if client.is_connected:
                    # A failed attempt inside establish_connection may have fired the callback.
                    lost.clear()
            except RADIO_ERRORS as exc:
                health.error("timeout" if isinstance(exc, TimeoutError) else "connect")
                log.info("band %s: connection failed: %s", band.id, exc or type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                await self._subscribe(band, client)
                backoff.reset()
                self._clients[band.id] = client
                log.info("band %s: connected and subscribed", band.id)
                await lost.wait()
                log.info("band %s: disconnected", band.id)
            except RADIO_ERRORS as exc:
                health.error("gatt")
                log.info("band %s: GATT failed: %s", band.id, exc or type(exc).__name__)
            finally:
                self._clients.pop(band.id, None)
                await self._disconnect(client)
            await asyncio.sleep(backoff.next_delay())

    async def _connect(
        self, radio: Radio, band: BandSpec, device: BLEDevice, lost: asyncio.Event
    ) -> BleakClientWithServiceCache:
        attempts = self.settings.connect_attempts
        async with (
            self._adapter_lock,
            asyncio.timeout(self.settings.connect_timeout * attempts + self.settings.gatt_timeout),
        ):
            return await establish_connection(
                BleakClientWithServiceCache,
                device,
                band.id,
                disconnected_callback=lambda _client: lost.set(),
                max_attempts=attempts,
                # Resolve only what the fleet uses (honoured where the OS stack can filter).
                services=[
                    profile.HEART_RATE_SERVICE,
                    profile.BATTERY_SERVICE,
                    profile.CUSTODY_SERVICE,
                ],
                backend=radio.client_backend,
                timeout=self.settings.connect_timeout,
                **radio.client_kwargs(),
            )

    async def _subscribe(self, band: BandSpec, client: BleakClientWithServiceCache) -> None:
        def on_value(kind: _InputKind, source: str) -> Any:
            def callback(_characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
                self._post(_Input(band.id, kind, bytes(data), source), self._clock())

            return callback

        async with asyncio.timeout(self.settings.gatt_timeout):
            # Subscribe before reading: an edge between the read and the subscription would
            # otherwise only show up as a sequence gap at the next event.
            await client.start_notify(profile.CUSTODY_STATUS, on_value("custody", "indication"))
            await client.start_notify(
                profile.HEART_RATE_MEASUREMENT, on_value("heart_rate", "notification")
            )
            battery = client.services.get_characteristic(profile.BATTERY_LEVEL)
            if battery is not None and "notify" in battery.properties:
                await client.start_notify(battery, on_value("battery", "notification"))
            status = await client.read_gatt_char(profile.CUSTODY_STATUS)
            self._post(_Input(band.id, "custody", bytes(status), "read"), self._clock())
            if battery is not None:
                level = await client.read_gatt_char(battery)
                self._post(_Input(band.id, "battery", bytes(level), "read"), self._clock())

    async def _disconnect(self, client: BleakClientWithServiceCache) -> None:
        async def bounded() -> None:
            try:
                async with asyncio.timeout(self.settings.gatt_timeout):
                    await client.disconnect()
            except RADIO_ERRORS as exc:
                log.debug("disconnecting %s failed: %s", client.address, exc)

        # Shielded: a cancelled run() still releases the connection slot, within the deadline,
        # before the cancellation goes on.
        task = asyncio.get_running_loop().create_task(
            bounded(), name=f"disconnect-{client.address}"
        )
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            raise
