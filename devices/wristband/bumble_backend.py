"""A bleak backend over bumble: the production bleak code path against emulated wristbands.

bleak picks its backend per platform, but both ``BleakScanner`` and ``BleakClient`` take a
``backend=`` class (``BaseBleakScanner`` / ``BaseBleakClient`` subclasses), and
bleak-retry-connector's ``establish_connection`` passes its extra keyword arguments through to
``BleakClient``. This module provides those two classes, implemented with a bumble host
(``bumble.device.Device``) acting as the central, so that the fleet driver runs unchanged on
an emulated radio.

Where the bumble host's controller lives:

- ``BumbleRadio.on_link(link)``: a bumble ``Controller`` on a ``LocalLink`` in this process, the
  link shared with emulated bands (tests).
- ``await BumbleRadio.open("tcp-client:127.0.0.1:9110")``: any bumble transport; with
  ``precinct wristband simulate`` serving a controller on its virtual link at that address,
  the agent and the bands run in different processes (the demo).

How bleak's calls map:

==========================  ===================================================================
bleak                       bumble
==========================  ===================================================================
scanner ``start``/``stop``  ``Device.start_scanning``/``stop_scanning``, shared by every
                            scanner of the radio (reference counted)
advertisement callback      ``Device`` ``advertisement`` event; the raw AD structures are
                            parsed by :mod:`devices.wristband.gap` and merged per address with
                            the scan response, as BlueZ does
``connect``                 ``Device.connect`` (one LE connection attempt at a time per radio,
                            a bumble and a controller limit), then GATT discovery of services,
                            characteristics and descriptors
``read/write_gatt_char``    ``gatt_client.Client.read_value``/``write_value``
``start_notify``            ``Client.subscribe`` (notify preferred when both are offered, as
                            bleak specifies; indications are confirmed by bumble's ATT layer)
``disconnect``              ``Connection.disconnect``
==========================  ===================================================================

Limits: no pairing or bonding (``pair``/``unpair`` raise ``BleakError``), no service cache,
no MTU exchange (bumble's default ATT MTU 23 is used), and ``use_cached`` reads always go to the
device. bumble's virtual radio reports a constant RSSI (-50 dBm), so presence logic is tested
with synthetic advertisements on the pure tracker instead. A client refuses to connect again
after a connection ended: clients are never reused, and this makes a reuse fail loudly in tests.

The connect timeout is the smaller of the one given to ``BleakClient(timeout=...)`` and the one
``connect()`` receives (bleak-retry-connector always passes its own 20 s), so that tests can
shorten it without patching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName, gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import core, hci
from bumble.att import ATT_Error
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.snoop import Snooper
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from devices.wristband.gap import AdvertisingFields, parse_advertising_data
from devices.wristband.radio import Radio

log = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"
# HCI says 127 for "RSSI not available"; bleak and BlueZ say -127.
_HCI_RSSI_UNAVAILABLE = 127
_BLEAK_NO_RSSI = -127
# bumble's scan parameters, in ms: scan continuously, as BlueZ does while discovering.
_SCAN_INTERVAL_MS = 60.0
_SCAN_WINDOW_MS = 60.0
_DISCONNECT_REASON = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
_MAX_MERGED_ADDRESSES = 1024
_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


class EmulatedController(Controller):
    """bumble's emulated ``Controller`` with two departures from real controllers corrected.

    - LE Create Connection Cancel: bumble 0.0.236 answers the cancel with success and does
      nothing else, so the host, which waits for the LE Connection Complete event that Core 5.4
      Vol 4 Part E 7.8.13 promises, waits forever, and the pending connection blocks every later
      one with "command disallowed". Here the pending connection is dropped and the event
      (status Unknown Connection Identifier) follows the Command Complete.
    - Passive scanning: bumble reports every advertisement twice, once as the advertisement and
      once as a scan response, whatever the scan type. A passive scanner sends no scan request
      and so never receives a response; here those reports are not sent, which halves the
      advertising reports the host has to parse, as on a real adapter.
    """

    _scanning_passive = False

    def on_hci_le_set_scan_parameters_command(
        self,
        command: hci.HCI_LE_Set_Scan_Parameters_Command,
    ) -> hci.HCI_StatusReturnParameters:
        result = super().on_hci_le_set_scan_parameters_command(command)
        if result.status == hci.HCI_ErrorCode.SUCCESS:
            self._scanning_passive = command.le_scan_type == 0
        return result

    def on_hci_le_set_extended_scan_parameters_command(
        self,
        command: hci.HCI_LE_Set_Extended_Scan_Parameters_Command,
    ) -> hci.HCI_StatusReturnParameters:
        result = super().on_hci_le_set_extended_scan_parameters_command(command)
        self._scanning_passive = all(
            scan_type == hci.HCI_LE_Set_Extended_Scan_Parameters_Command.PASSIVE_SCANNING
            for scan_type in command.scan_types
        )
        return result

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self._scanning_passive and _only_scan_responses(packet):
            return
        super().send_hci_packet(packet)

    def on_hci_le_create_connection_cancel_command(
        self,
        _command: hci.HCI_LE_Create_Connection_Cancel_Command,
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        event = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # The caller sends the Command Complete for our return value; the event goes after it.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


class QuietHost(Host):
    """bumble's ``Host`` without its eager debug formatting.

    bumble 0.0.236 builds a coloured text of every HCI packet for a debug line (an f-string,
    evaluated even with debug logging off): 1.1 % of a core at the 150 packets/s of 50
    emulated bands, a fifth of the emulated stack's cost. These two methods do what bumble's
    do, formatting the packet only when debug logging is on.
    """

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _bumble_host_log.isEnabledFor(logging.DEBUG):
            _bumble_host_log.debug("### HOST -> CONTROLLER: %s", packet)
        if self.snooper:
            self.snooper.snoop(bytes(packet), Snooper.Direction.HOST_TO_CONTROLLER)
        if self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _bumble_host_log.isEnabledFor(logging.DEBUG):
            _bumble_host_log.debug("### CONTROLLER -> HOST: %s", packet)
        if self.snooper:
            self.snooper.snoop(bytes(packet), Snooper.Direction.CONTROLLER_TO_HOST)
        match packet:
            case hci.HCI_Command():
                self.on_hci_command_packet(packet)
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case hci.HCI_SynchronousDataPacket():
                self.on_hci_sco_data_packet(packet)
            case hci.HCI_IsoDataPacket():
                self.on_hci_iso_data_packet(packet)
            case _:
                _bumble_host_log.warning("unknown HCI packet type %s", packet.hci_packet_type)


_bumble_host_log = logging.getLogger("bumble.host")


def _only_scan_responses(packet: hci.HCI_Packet) -> bool:
    if isinstance(packet, hci.HCI_LE_Advertising_Report_Event):
        return bool(packet.reports) and all(
            report.event_type == hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP
            for report in packet.reports
        )
    if isinstance(packet, hci.HCI_LE_Extended_Advertising_Report_Event):
        scan_response = hci.HCI_LE_Extended_Advertising_Report_Event.EventType.SCAN_RESPONSE
        return bool(packet.reports) and all(
            report.event_type & scan_response for report in packet.reports
        )
    return False


@dataclass(frozen=True, slots=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` of a device found by the bumble scanner: its typed address."""

    address: hci.Address


def _uuid_text(value: core.UUID) -> str:
    """A bumble UUID as bleak spells UUIDs: lower-case 128-bit text."""
    return str(uuid_module.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def _bumble_uuid(text: str) -> core.UUID:
    """A bleak UUID string as bumble wants it: 16-bit when it is on the Bluetooth base."""
    if text.startswith("0000") and text.endswith(_BASE_SUFFIX):
        return core.UUID.from_16_bits(int(text[4:8], 16))
    return core.UUID(text)


def _bleak_error(exc: Exception) -> Exception:
    """The bleak exception for a bumble one."""
    if isinstance(exc, ATT_Error):
        return BleakGATTProtocolError(int(exc.error_code))
    if isinstance(exc, core.TimeoutError):
        return TimeoutError(str(exc) or "bumble timeout")
    return BleakError(f"bumble: {exc}")


class BumbleRadio(Radio):
    """A bumble host used as this process's Bluetooth adapter."""

    def __init__(
        self,
        name: str,
        make_device: Callable[[BumbleRadio], Device],
        transport_spec: str | None = None,
    ) -> None:
        self.name = name
        self._make_device = make_device
        self._transport_spec = transport_spec
        self._transport: Transport | None = None
        self._device: Device | None = None
        self._on_close: list[Callable[[], None]] = []
        self._scanners: set[BumbleScannerBackend] = set()
        self._scan_lock = asyncio.Lock()
        self._fields: dict[str, AdvertisingFields] = {}
        self._clients: set[BumbleClientBackend] = set()
        # bumble refuses a second LE connection while one is pending; so do real controllers.
        self.connect_lock = asyncio.Lock()
        radio = self

        class _Scanner(BumbleScannerBackend):
            _radio = radio

        class _Client(BumbleClientBackend):
            _radio = radio

        self._scanner_backend: type[BumbleScannerBackend] = _Scanner
        self._client_backend: type[BumbleClientBackend] = _Client

    @classmethod
    def on_link(
        cls,
        link: LocalLink,
        address: str = CENTRAL_ADDRESS,
        name: str = "bumble-local",
        controller_class: type[Controller] = EmulatedController,
    ) -> BumbleRadio:
        """A radio whose controller sits on ``link`` in this process.

        ``controller_class`` lets a test put a misbehaving controller under the host; each
        open (and so each reset) creates a new one.
        """

        def make_device(radio: BumbleRadio) -> Device:
            controller = controller_class(name, link=link, public_address=address)
            # A reopened radio gets a new controller; the old one must leave the link.
            radio._on_close.append(lambda: link.remove_controller(controller))
            host = QuietHost(controller, AsyncPipeSink(controller))
            return Device(name=name, address=hci.Address(address), host=host)

        return cls(name, make_device)

    @classmethod
    def over_transport(cls, spec: str, address: str | None = None) -> BumbleRadio:
        """A radio reached through a bumble transport (``tcp-client:HOST:PORT``, ``unix:PATH``).

        Without ``address`` the host takes a random static address, kept across reopenings,
        so that several agents on one simulator's link never share one.
        """
        own = hci.Address(address) if address else hci.Address.generate_static_address()

        def make_device(radio: BumbleRadio) -> Device:
            transport = radio._transport
            if transport is None:
                raise BleakError("bumble transport is not open")
            return Device(name=spec, address=own, host=QuietHost(transport.source, transport.sink))

        return cls(f"bumble:{spec}", make_device, spec)

    @property
    def scanner_backend(self) -> type[BaseBleakScanner]:
        return self._scanner_backend

    @property
    def client_backend(self) -> type[BaseBleakClient]:
        return self._client_backend

    def scanner_kwargs(self) -> dict[str, Any]:
        # The custody mirror and the name travel in the advertisement itself; active scanning
        # would only double the reports (each with an empty scan response) for the host to parse.
        return {"scanning_mode": "passive"}

    @property
    def device(self) -> Device:
        """The bumble host; raises ``BleakError`` when the radio is not open."""
        if self._device is None:
            raise BleakError("bumble radio is not open")
        return self._device

    async def open(self) -> None:
        if self._device is not None:
            return
        if self._transport_spec is not None:
            self._transport = await open_transport(self._transport_spec)
        try:
            device = self._make_device(self)
            device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            await device.power_on()
        except BaseException:
            await self._close_transport()
            while self._on_close:
                self._on_close.pop()()
            raise
        self._device = device

    async def close(self) -> None:
        for client in list(self._clients):
            await client.disconnect()
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(core.BaseBumbleError, OSError, TimeoutError):
                if device.is_scanning:
                    await device.stop_scanning()
            device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            await device.power_off()
        await self._close_transport()
        while self._on_close:
            self._on_close.pop()()

    async def reset(self) -> None:
        """Drop every connection and power-cycle the host; a transport is reopened too."""
        scanners = set(self._scanners)
        await self.close()
        await self.open()
        self._scanners = scanners
        await self._update_scanning()

    async def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    # --- scanning -------------------------------------------------------------------------

    async def _add_scanner(self, scanner: BumbleScannerBackend) -> None:
        self._scanners.add(scanner)
        await self._update_scanning()

    async def _remove_scanner(self, scanner: BumbleScannerBackend) -> None:
        self._scanners.discard(scanner)
        await self._update_scanning()

    async def _update_scanning(self) -> None:
        async with self._scan_lock:
            device = self.device
            try:
                if self._scanners and not device.is_scanning:
                    active = any(not scanner.passive for scanner in self._scanners)
                    self._fields.clear()
                    await device.start_scanning(
                        active=active, scan_interval=_SCAN_INTERVAL_MS, scan_window=_SCAN_WINDOW_MS
                    )
                elif not self._scanners and device.is_scanning:
                    await device.stop_scanning()
            except (core.BaseBumbleError, hci.HCI_Error) as exc:
                raise _bleak_error(exc) from exc

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        key = advertisement.address.to_string(False)
        fields = parse_advertising_data(advertisement.data_bytes)
        if len(self._fields) >= _MAX_MERGED_ADDRESSES and key not in self._fields:
            # Phones rotate random addresses all day; merged state must not grow without end.
            self._fields.clear()
        previous = self._fields.get(key)
        fields = previous.merge(fields) if previous is not None else fields
        self._fields[key] = fields
        rssi = advertisement.rssi
        data = AdvertisementData(
            local_name=fields.local_name,
            manufacturer_data=dict(fields.manufacturer_data),
            service_data=dict(fields.service_data),
            service_uuids=list(fields.service_uuids),
            tx_power=fields.tx_power,
            rssi=_BLEAK_NO_RSSI if rssi == _HCI_RSSI_UNAVAILABLE else rssi,
            platform_data=(advertisement,),
        )
        for scanner in list(self._scanners):
            scanner.deliver(advertisement.address, data)


class BumbleScannerBackend(BaseBleakScanner):
    """``BaseBleakScanner`` over a :class:`BumbleRadio`; use ``radio.scanner_backend``."""

    _radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.passive = scanning_mode == "passive"

    async def start(self) -> None:
        self.seen_devices = {}
        await self._radio._add_scanner(self)

    async def stop(self) -> None:
        await self._radio._remove_scanner(self)

    def deliver(self, address: hci.Address, data: AdvertisementData) -> None:
        """Called by the radio for every advertisement while this scanner runs."""
        if not self.is_allowed_uuid(data.service_uuids):
            return
        text = address.to_string(False)
        device = self.create_or_update_device(
            text, text, data.local_name or text, BumbleDeviceDetails(address), data
        )
        self.call_detection_callbacks(device, data)


class BumbleClientBackend(BaseBleakClient):
    """``BaseBleakClient`` over a :class:`BumbleRadio`; use ``radio.client_backend``."""

    _radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        details = (
            address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        )
        if isinstance(details, BumbleDeviceDetails):
            self._peer_address = details.address
        else:
            # A bare address string: bumble's emulated peripherals use random static addresses.
            self._peer_address = hci.Address(self.address)
        self._services_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._used = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._name = self.address

    # --- connection -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._require_peer().gatt_client.mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._used:
            raise BleakError("this client was connected before; create a new BleakClient")
        if pair:
            raise BleakError("pairing is not supported by the bumble backend")
        timeout = min(float(kwargs.get("timeout", self._timeout)), self._timeout)
        radio = self._radio
        async with radio.connect_lock:
            try:
                connection = await radio.device.connect(self._peer_address, timeout=timeout)
            except (core.BaseBumbleError, hci.HCI_Error) as exc:
                raise _bleak_error(exc) from exc
        self._connection = connection
        radio._clients.add(self)
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            async with asyncio.timeout(timeout):
                self.services = await self._discover(Peer(connection))
        except (core.BaseBumbleError, ATT_Error, TimeoutError) as exc:
            await self.disconnect()
            raise _bleak_error(exc) from exc
        except BaseException:
            await self.disconnect()
            raise
        # Only a connection that got this far makes the client spent: bleak-retry-connector
        # calls connect() again on the same client after a failed attempt.
        self._used = True

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        self._peer = peer
        wanted = (
            [_bumble_uuid(text) for text in self._services_filter] if self._services_filter else []
        )
        collection = BleakGATTServiceCollection()
        services: list[ServiceProxy] = await peer.discover_services(wanted)
        for service in services:
            bleak_service = BleakGATTService(service, service.handle, _uuid_text(service.uuid))
            collection.add_service(bleak_service)
            characteristics = await service.discover_characteristics()
            for characteristic in characteristics:
                collection.add_characteristic(self._characteristic(characteristic, bleak_service))
            for characteristic in characteristics:
                descriptors: list[DescriptorProxy] = await characteristic.discover_descriptors()
                bleak_char = collection.get_characteristic(characteristic.handle)
                if bleak_char is None:
                    continue
                for descriptor in descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, _uuid_text(descriptor.type), bleak_char
                        )
                    )
        return collection

    def _characteristic(
        self, characteristic: CharacteristicProxy[bytes], service: BleakGATTService
    ) -> BleakGATTCharacteristic:
        properties: list[CharacteristicPropertyName] = sorted(
            gatt_char_props_to_strs(int(characteristic.properties))
        )

        def max_write_without_response() -> int:
            return self.mtu_size - 3 if self._peer is not None else 20

        return BleakGATTCharacteristic(
            characteristic,
            characteristic.handle,
            _uuid_text(characteristic.uuid),
            properties,
            max_write_without_response,
            service,
        )

    def _on_disconnection(self, reason: int) -> None:
        log.debug("%s disconnected, reason 0x%02X", self.address, reason)
        self._forget()

    def _forget(self) -> None:
        if self._connection is None:
            return
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        self.services = None
        self._radio._clients.discard(self)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await connection.disconnect(_DISCONNECT_REASON)
        except (core.BaseBumbleError, hci.HCI_Error, TimeoutError) as exc:
            log.debug("%s: disconnect failed (%s); dropping the connection", self.address, exc)
        finally:
            self._forget()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    # --- GATT -----------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None or self._connection is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        try:
            return bytearray(await peer.read_value(characteristic.handle))
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        try:
            return bytearray(await peer.read_value(descriptor.handle))
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        try:
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        try:
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        try:
            await peer.subscribe(proxy, deliver, prefer_notify=True)
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc
        self._subscriptions[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        deliver = self._subscriptions.pop(characteristic.handle, None)
        try:
            await peer.unsubscribe(characteristic.obj, deliver)
        except (core.BaseBumbleError, ATT_Error) as exc:
            raise _bleak_error(exc) from exc
