"""An emulated wristband: a bumble peripheral that speaks the real bytes.

:class:`EmulatedBand` is a bumble ``Device`` with its own ``Controller`` on a ``LocalLink``. Its
GATT server holds the three services of :mod:`devices.wristband.profile` (Heart Rate, Battery,
custody), and it advertises its name, the Heart Rate service and the custody mirror. The values
on the air come from :mod:`devices.wristband.codec`, so the emulator and the driver share the
encoders and decoders the tests check against the documented vectors.

Behaviour that matters to the driver, modelled on real bands:

- Every custody change (strap, contact, tamper, fall, low battery) increments ``event_seq``,
  is *indicated* to subscribed centrals (waiting for their confirmation) and then updates the
  advertisement mirror.
- Writing ``CLEAR_TAMPER`` to the control point clears the tamper latch (a change, so it is
  indicated too); any other value is refused with the ATT error "value not allowed".
- The band keeps advertising while connected, non-connectable, so that presence and the mirror
  stay visible to every scanner; connectable advertising resumes when the central leaves.
- :meth:`EmulatedBand.leave_range` stops advertising and drops the connection with reason
  "connection timeout", which is what a central sees when a band walks out of range.

The band runs no timers of its own: tests call :meth:`EmulatedBand.notify_heart_rate` when they
want a notification, and :mod:`devices.wristband.simulator` drives bands for the demo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bumble import hci
from bumble.att import ATT_Error, ErrorCode
from bumble.controller import Controller
from bumble.device import AdvertisingType, Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from devices.wristband import profile
from devices.wristband.clock import Clock, utc_now
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
    decode_control,
    encode_advert_mirror,
    encode_battery_level,
    encode_custody_status,
    encode_heart_rate,
)
from devices.wristband.errors import WristbandProtocolError
from devices.wristband.gap import (
    AD_COMPLETE_NAME,
    AD_FLAGS,
    AD_MANUFACTURER,
    AD_UUID16_COMPLETE,
    build_advertising_data,
)

log = logging.getLogger(__name__)

# LE General Discoverable, BR/EDR not supported.
_AD_FLAGS_VALUE = bytes([0x06])
_HEART_RATE_UUID16 = (0x180D).to_bytes(2, "little")
_CONNECTION_TIMEOUT = hci.HCI_CONNECTION_TIMEOUT_ERROR
_POWER_OFF = hci.HCI_REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
_NO_PERMISSIONS = Characteristic.Permissions(0)
# How long stop() lets in-flight radio work (an indication awaiting confirmation) finish.
STOP_GRACE = 5.0


def new_link() -> LocalLink:
    """A new bumble virtual link (typed: bumble leaves ``LocalLink.__init__`` unannotated)."""
    return LocalLink()  # type: ignore[no-untyped-call]  # see the docstring


class EmulatedBand:
    """One emulated wristband on a bumble virtual link."""

    def __init__(
        self,
        link: LocalLink,
        address: str,
        name: str,
        *,
        clock: Clock = utc_now,
        advertising_interval_ms: float = 100.0,
        heart_rate: int = 72,
        battery: int = 87,
        contact_supported: bool = True,
    ) -> None:
        self.link = link
        self.address = address.upper()
        self.name = name
        self.clock = clock
        self.advertising_interval_ms = advertising_interval_ms
        self.flags = CustodyFlags.STRAP_CLOSED | CustodyFlags.SKIN_CONTACT
        self.event_seq = 0
        self.timestamp = self._now_s()
        self.battery = battery
        self.heart_rate = heart_rate
        self.contact_supported = contact_supported
        self.in_range = True
        self.connections: list[Connection] = []
        self.indications_confirmed = 0
        self.control_writes: list[bytes] = []
        self._device: Device | None = None
        self._controller: Controller | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._advertising_lock = asyncio.Lock()
        self._advertising_kind: AdvertisingType | None = None
        self._hr: Characteristic[bytes] = Characteristic(
            profile.HEART_RATE_MEASUREMENT, Characteristic.NOTIFY, _NO_PERMISSIONS, b""
        )
        self._battery: Characteristic[bytes] = Characteristic(
            profile.BATTERY_LEVEL,
            Characteristic.READ | Characteristic.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue(read=self._read_battery),
        )
        self._status: Characteristic[bytes] = Characteristic(
            profile.CUSTODY_STATUS,
            Characteristic.READ | Characteristic.INDICATE,
            Characteristic.READABLE,
            CharacteristicValue(read=self._read_status),
        )
        self._control: Characteristic[bytes] = Characteristic(
            profile.CUSTODY_CONTROL_POINT,
            Characteristic.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._write_control),
        )

    # --- state ----------------------------------------------------------------------------

    @property
    def status(self) -> CustodyStatus:
        """The custody status as the band would send it now."""
        return CustodyStatus(self.flags, self.event_seq, self.timestamp)

    @property
    def mirror(self) -> AdvertMirror:
        """The advertisement mirror as the band would send it now."""
        return AdvertMirror(self.battery, self.flags, self.event_seq)

    @property
    def device(self) -> Device:
        """The bumble device; only while the band is started."""
        if self._device is None:
            raise RuntimeError(f"band {self.name} is not started")
        return self._device

    def _now_s(self) -> int:
        return int(self.clock().timestamp())

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Power the band on and start advertising."""
        controller = Controller(self.name, link=self.link, public_address=self.address)
        self._controller = controller
        device = Device(
            name=self.name,
            address=hci.Address(self.address),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        device.add_service(Service(profile.HEART_RATE_SERVICE, [self._hr]))
        device.add_service(Service(profile.BATTERY_SERVICE, [self._battery]))
        device.add_service(Service(profile.CUSTODY_SERVICE, [self._status, self._control]))
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._device = device
        await device.power_on()
        await self._advertise()

    async def stop(self) -> None:
        """Let radio work finish, drop connections, stop advertising and power off."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        device, self._device = self._device, None
        if device is None:
            return
        for connection in list(self.connections):
            await self._drop(connection, _POWER_OFF)
        await device.stop_advertising()
        await device.power_off()
        if self._controller is not None:
            self.link.remove_controller(self._controller)
            self._controller = None
        # Disconnection handlers scheduled work that now finds the band off; let it end.
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def leave_range(self) -> None:
        """The band walks out of range: silence, and the central loses the connection."""
        self.in_range = False
        await self._guarded(self._leave())

    async def _leave(self) -> None:
        async with self._advertising_lock:
            await self.device.stop_advertising()
            self._advertising_kind = None
        for connection in list(self.connections):
            await self._drop(connection, _CONNECTION_TIMEOUT)

    async def enter_range(self) -> None:
        """The band is back in range and advertises again."""
        self.in_range = True
        await self._advertise()

    # --- what the wearer does -------------------------------------------------------------

    async def open_strap(self) -> None:
        """The strap is opened (or cut): a custody event."""
        await self._change(self.flags & ~CustodyFlags.STRAP_CLOSED)

    async def close_strap(self) -> None:
        """The strap is closed again."""
        await self._change(self.flags | CustodyFlags.STRAP_CLOSED)

    async def tamper(self) -> None:
        """Something forced the case: the tamper latch is set until cleared by the centre."""
        await self._change(self.flags | CustodyFlags.TAMPER_LATCHED)

    async def set_contact(self, contact: bool) -> None:
        """The band gains or loses skin contact."""
        flags = (
            self.flags | CustodyFlags.SKIN_CONTACT
            if contact
            else (self.flags & ~CustodyFlags.SKIN_CONTACT)
        )
        await self._change(flags)

    async def fall(self) -> None:
        """The band felt a fall or a shock."""
        await self._change(self.flags | CustodyFlags.FALL)

    async def set_battery(self, percent: int) -> None:
        """A new battery level: notified, mirrored, and the low-battery flag below 15 %."""
        self.battery = percent
        flags = (
            self.flags | CustodyFlags.LOW_BATTERY
            if percent < 15
            else self.flags & ~CustodyFlags.LOW_BATTERY
        )
        if flags != self.flags:
            await self._change(flags)
        else:
            await self._advertise()
        if self._device is not None:
            await self.device.notify_subscribers(self._battery, encode_battery_level(percent))

    async def notify_heart_rate(self, bpm: int | None = None) -> None:
        """Send one Heart Rate Measurement notification to subscribed centrals."""
        if bpm is not None:
            self.heart_rate = bpm
        contact = (CustodyFlags.SKIN_CONTACT in self.flags) if self.contact_supported else None
        # One RR interval consistent with the rate, as a chest strap would report it.
        rr = (round(60 * 1024 / self.heart_rate),) if self.heart_rate else ()
        value = encode_heart_rate(
            HeartRateMeasurement(
                self.heart_rate, contact, None, rr, uint16_format=self.heart_rate > 255
            )
        )
        await self.device.notify_subscribers(self._hr, value)

    async def notify_raw_heart_rate(self, value: bytes) -> None:
        """Notify ``value`` as it is, as a band with faulty firmware would."""
        await self.device.notify_subscribers(self._hr, value)

    # --- GATT and advertising -------------------------------------------------------------

    async def _change(self, flags: CustodyFlags) -> None:
        await self._guarded(self._apply(flags))

    async def _apply(self, flags: CustodyFlags) -> None:
        self.flags = flags
        self.event_seq = (self.event_seq + 1) % 0x10000
        self.timestamp = self._now_s()
        # The indication goes out at once; new advertising data only from the next advertising
        # event on, so a connected central hears of the change by indication first.
        if self._device is not None:
            await self.device.indicate_subscribers(self._status, encode_custody_status(self.status))
            self.indications_confirmed += 1
        await self._advertise_now()

    def _read_battery(self, _connection: Connection) -> bytes:
        return encode_battery_level(self.battery)

    def _read_status(self, _connection: Connection) -> bytes:
        return encode_custody_status(self.status)

    def _write_control(self, _connection: Connection, value: bytes) -> None:
        self.control_writes.append(bytes(value))
        try:
            opcode = decode_control(value)
        except WristbandProtocolError as exc:
            raise ATT_Error(ErrorCode.VALUE_NOT_ALLOWED, message=str(exc)) from exc
        if opcode is profile.ControlOpcode.CLEAR_TAMPER:
            # The write response goes out first; the change is indicated right after it.
            self._spawn(self._change(self.flags & ~CustodyFlags.TAMPER_LATCHED))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"band-{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run radio work to its end even if the caller is cancelled; :meth:`stop` waits for it.

        bumble's host cannot take an HCI command abandoned mid-flight: the controller's reply
        finds the waiting future cancelled and the host logs an ``InvalidStateError``.
        """
        await asyncio.shield(self._spawn(coroutine))

    def advertising_data(self) -> bytes:
        """The advertisement payload: flags, name, Heart Rate service, custody mirror."""
        return build_advertising_data(
            [
                (AD_FLAGS, _AD_FLAGS_VALUE),
                (AD_COMPLETE_NAME, self.name.encode()),
                (AD_UUID16_COMPLETE, _HEART_RATE_UUID16),
                (AD_MANUFACTURER, encode_advert_mirror(self.mirror)),
            ]
        )

    async def _advertise(self) -> None:
        await self._guarded(self._advertise_now())

    async def _advertise_now(self) -> None:
        async with self._advertising_lock:
            if self._device is None or not self.in_range:
                return
            # Connectable while free; non-connectable (still visible) while a central holds it.
            kind = (
                AdvertisingType.UNDIRECTED
                if self.connections
                else AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
            )
            advertising_set = self.device.legacy_advertising_set
            if kind is self._advertising_kind and advertising_set and advertising_set.enabled:
                # Same kind of advertising: new data from the next advertising event on, as a
                # band's radio would send it (several changes in one interval show as a gap).
                await advertising_set.set_advertising_data(self.advertising_data())
                return
            self._advertising_kind = kind
            await self.device.start_advertising(
                advertising_type=kind,
                advertising_data=self.advertising_data(),
                scan_response_data=b"",
                advertising_interval_min=self.advertising_interval_ms,
                advertising_interval_max=self.advertising_interval_ms,
            )

    def _on_connection(self, connection: Connection) -> None:
        self.connections.append(connection)
        connection.on(
            Connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnection(connection)
        )
        self._spawn(self._advertise_now())

    def _on_disconnection(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        self._spawn(self._advertise_now())

    async def _drop(self, connection: Connection, reason: int) -> None:
        log.debug("band %s: dropping %s, reason 0x%02X", self.name, connection, reason)
        await connection.disconnect(reason)
