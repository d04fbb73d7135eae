"""Pure codecs for the wristband's characteristics and its advertisement mirror.

No I/O: ``decode_*(bytes) -> value`` and ``encode_*(value) -> bytes``. Decoders treat their input
as hostile: every length is checked by hand before it is read, and the only exceptions they
raise are :class:`~devices.wristband.errors.WristbandProtocolError` subclasses. Encoders refuse
values the format cannot carry with :class:`~devices.wristband.errors.EncodeError`.

Formats (all little-endian):

Heart Rate Measurement (0x2A37), Bluetooth Heart Rate Service 1.0 section 3.1::

    flags u8      bit0 heart rate is uint16 (else uint8)
                  bit1 sensor contact detected (meaningful only with bit2)
                  bit2 sensor contact supported
                  bit3 energy expended present (uint16, kJ)
                  bit4 RR intervals present (all remaining bytes, uint16 each, 1/1024 s)
    hr            u8 or u16
    energy        u16, if bit3
    rr...         u16 each, if bit4

Battery Level (0x2A19): one uint8, percent, 0-100.

Custody status (7 bytes): ``flags u8, event_seq u16, timestamp u32`` (band clock, epoch s).

Advertisement mirror (manufacturer-specific data, 6 bytes with the company id):
``company u16, battery u8, flags u8, event_seq u16``.

Control point: one opcode byte (:class:`~devices.wristband.profile.ControlOpcode`).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from devices.wristband.errors import (
    EncodeError,
    FieldValueError,
    FrameLengthError,
    UnknownCompanyError,
)
from devices.wristband.profile import COMPANY_ID, ControlOpcode

_HR_UINT16 = 0x01
_HR_CONTACT_DETECTED = 0x02
_HR_CONTACT_SUPPORTED = 0x04
_HR_ENERGY = 0x08
_HR_RR = 0x10

_U8 = 0xFF
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF

RR_UNITS_PER_SECOND = 1024

_CUSTODY = struct.Struct("<BHI")
_MIRROR = struct.Struct("<HBBH")
CUSTODY_STATUS_LENGTH = _CUSTODY.size
ADVERT_MIRROR_LENGTH = _MIRROR.size


class CustodyFlags(enum.IntFlag):
    """Flags byte of the custody status and of its advertisement mirror.

    Bits 6 and 7 are reserved; they are kept as they came so that a newer band firmware's flags
    survive a decode/encode round trip.
    """

    STRAP_CLOSED = 0x01
    SKIN_CONTACT = 0x02
    TAMPER_LATCHED = 0x04
    LOW_BATTERY = 0x08
    CHARGING = 0x10
    FALL = 0x20


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    ``contact`` is ``None`` when the band does not support contact detection, which is not the
    same as "no contact". ``rr_intervals`` are in units of 1/1024 s, as on the air.
    ``uint16_format`` records which width the heart rate had, so that a decoded value encodes to
    the same bytes.
    """

    bpm: int
    contact: bool | None = None
    energy_kj: int | None = None
    rr_intervals: tuple[int, ...] = ()
    uint16_format: bool = False

    @property
    def rr_seconds(self) -> tuple[float, ...]:
        """RR intervals in seconds."""
        return tuple(rr / RR_UNITS_PER_SECOND for rr in self.rr_intervals)


@dataclass(frozen=True, slots=True)
class CustodyStatus:
    """The custody status characteristic: strap, contact, tamper latch and a sequence number."""

    flags: CustodyFlags
    event_seq: int
    timestamp: int

    @property
    def strap_closed(self) -> bool:
        """The strap is closed (bit 0)."""
        return CustodyFlags.STRAP_CLOSED in self.flags

    @property
    def skin_contact(self) -> bool:
        """The band touches skin (bit 1)."""
        return CustodyFlags.SKIN_CONTACT in self.flags

    @property
    def tamper_latched(self) -> bool:
        """The tamper latch is set until the control point clears it (bit 2)."""
        return CustodyFlags.TAMPER_LATCHED in self.flags

    @property
    def low_battery(self) -> bool:
        """The band says its battery is low (bit 3)."""
        return CustodyFlags.LOW_BATTERY in self.flags

    @property
    def band_time(self) -> datetime:
        """The band's clock at the event, as an aware datetime."""
        return datetime.fromtimestamp(self.timestamp, UTC)


@dataclass(frozen=True, slots=True)
class AdvertMirror:
    """The custody state as mirrored in every advertisement."""

    battery: int
    flags: CustodyFlags
    event_seq: int

    @property
    def strap_closed(self) -> bool:
        """The strap is closed (bit 0)."""
        return CustodyFlags.STRAP_CLOSED in self.flags

    @property
    def tamper_latched(self) -> bool:
        """The tamper latch is set until the control point clears it (bit 2)."""
        return CustodyFlags.TAMPER_LATCHED in self.flags


# --- Heart Rate Measurement -------------------------------------------------------------------


def decode_heart_rate(data: bytes | bytearray) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement value."""
    what = "heart rate measurement"
    data = bytes(data)
    if not data:
        raise FrameLengthError(what, data, "empty")
    flags = data[0]
    offset = 1
    uint16_format = bool(flags & _HR_UINT16)
    if uint16_format:
        if len(data) < offset + 2:
            raise FrameLengthError(what, data, "uint16 heart rate truncated")
        bpm = int.from_bytes(data[offset : offset + 2], "little")
        offset += 2
    else:
        if len(data) < offset + 1:
            raise FrameLengthError(what, data, "uint8 heart rate missing")
        bpm = data[offset]
        offset += 1
    energy: int | None = None
    if flags & _HR_ENERGY:
        if len(data) < offset + 2:
            raise FrameLengthError(what, data, "energy expended truncated")
        energy = int.from_bytes(data[offset : offset + 2], "little")
        offset += 2
    rr: tuple[int, ...] = ()
    if flags & _HR_RR:
        remaining = len(data) - offset
        if remaining % 2:
            raise FrameLengthError(what, data, "odd number of RR interval bytes")
        rr = tuple(int.from_bytes(data[i : i + 2], "little") for i in range(offset, len(data), 2))
        offset = len(data)
    if offset != len(data):
        raise FrameLengthError(what, data, f"{len(data) - offset} bytes after the last field")
    contact = bool(flags & _HR_CONTACT_DETECTED) if flags & _HR_CONTACT_SUPPORTED else None
    return HeartRateMeasurement(bpm, contact, energy, rr, uint16_format)


def encode_heart_rate(measurement: HeartRateMeasurement) -> bytes:
    """Encode a Heart Rate Measurement value."""
    what = "heart rate measurement"
    flags = 0
    limit = _U16 if measurement.uint16_format else _U8
    if not 0 <= measurement.bpm <= limit:
        raise EncodeError(what, f"heart rate {measurement.bpm} outside 0..{limit}")
    if measurement.uint16_format:
        flags |= _HR_UINT16
        body = measurement.bpm.to_bytes(2, "little")
    else:
        body = measurement.bpm.to_bytes(1, "little")
    if measurement.contact is not None:
        flags |= _HR_CONTACT_SUPPORTED | (_HR_CONTACT_DETECTED if measurement.contact else 0)
    if measurement.energy_kj is not None:
        if not 0 <= measurement.energy_kj <= _U16:
            raise EncodeError(what, f"energy {measurement.energy_kj} kJ outside 0..{_U16}")
        flags |= _HR_ENERGY
        body += measurement.energy_kj.to_bytes(2, "little")
    if measurement.rr_intervals:
        flags |= _HR_RR
        for rr in measurement.rr_intervals:
            if not 0 <= rr <= _U16:
                raise EncodeError(what, f"RR interval {rr} outside 0..{_U16}")
            body += rr.to_bytes(2, "little")
    return bytes([flags]) + body


# --- Battery Level ----------------------------------------------------------------------------


def decode_battery_level(data: bytes | bytearray) -> int:
    """Decode a Battery Level value: percent, 0-100."""
    what = "battery level"
    data = bytes(data)
    if len(data) != 1:
        raise FrameLengthError(what, data, f"expected 1 byte, got {len(data)}")
    if data[0] > 100:
        raise FieldValueError(what, data, f"{data[0]} % is above 100 %")
    return data[0]


def encode_battery_level(percent: int) -> bytes:
    """Encode a Battery Level value."""
    if not 0 <= percent <= 100:
        raise EncodeError("battery level", f"{percent} % outside 0..100")
    return bytes([percent])


# --- Custody status ---------------------------------------------------------------------------


def decode_custody_status(data: bytes | bytearray) -> CustodyStatus:
    """Decode the 7-byte custody status."""
    what = "custody status"
    data = bytes(data)
    if len(data) != CUSTODY_STATUS_LENGTH:
        raise FrameLengthError(
            what, data, f"expected {CUSTODY_STATUS_LENGTH} bytes, got {len(data)}"
        )
    flags, seq, timestamp = _CUSTODY.unpack(data)
    return CustodyStatus(CustodyFlags(flags), seq, timestamp)


def encode_custody_status(status: CustodyStatus) -> bytes:
    """Encode the 7-byte custody status."""
    what = "custody status"
    _check_flags_seq(what, int(status.flags), status.event_seq)
    if not 0 <= status.timestamp <= _U32:
        raise EncodeError(what, f"timestamp {status.timestamp} outside 0..{_U32}")
    return _CUSTODY.pack(int(status.flags), status.event_seq, status.timestamp)


# --- Advertisement mirror ---------------------------------------------------------------------


def decode_advert_mirror(data: bytes | bytearray) -> AdvertMirror:
    """Decode the manufacturer-specific data of an advertisement, company id included."""
    what = "advertisement mirror"
    data = bytes(data)
    if len(data) != ADVERT_MIRROR_LENGTH:
        raise FrameLengthError(
            what, data, f"expected {ADVERT_MIRROR_LENGTH} bytes, got {len(data)}"
        )
    company, battery, flags, seq = _MIRROR.unpack(data)
    if company != COMPANY_ID:
        raise UnknownCompanyError(what, data, f"company id 0x{company:04X}")
    if battery > 100:
        raise FieldValueError(what, data, f"battery {battery} % is above 100 %")
    return AdvertMirror(battery, CustodyFlags(flags), seq)


def encode_advert_mirror(mirror: AdvertMirror) -> bytes:
    """Encode the manufacturer-specific data of an advertisement, company id included."""
    what = "advertisement mirror"
    _check_flags_seq(what, int(mirror.flags), mirror.event_seq)
    if not 0 <= mirror.battery <= 100:
        raise EncodeError(what, f"battery {mirror.battery} % outside 0..100")
    return _MIRROR.pack(COMPANY_ID, mirror.battery, int(mirror.flags), mirror.event_seq)


def mirror_from_manufacturer_data(data: Mapping[int, bytes]) -> AdvertMirror | None:
    """The mirror in a bleak-style ``{company id: payload}`` mapping, or ``None`` if absent."""
    payload = data.get(COMPANY_ID)
    if payload is None:
        return None
    return decode_advert_mirror(COMPANY_ID.to_bytes(2, "little") + bytes(payload))


# --- Control point ----------------------------------------------------------------------------


def decode_control(data: bytes | bytearray) -> ControlOpcode:
    """Decode a write to the custody control point."""
    what = "control point"
    data = bytes(data)
    if len(data) != 1:
        raise FrameLengthError(what, data, f"expected 1 byte, got {len(data)}")
    try:
        return ControlOpcode(data[0])
    except ValueError:
        raise FieldValueError(what, data, f"unknown opcode 0x{data[0]:02X}") from None


def encode_control(opcode: ControlOpcode) -> bytes:
    """Encode a write to the custody control point."""
    return bytes([int(opcode)])


def _check_flags_seq(what: str, flags: int, seq: int) -> None:
    if not 0 <= flags <= _U8:
        raise EncodeError(what, f"flags 0x{flags:X} do not fit a byte")
    if not 0 <= seq <= _U16:
        raise EncodeError(what, f"event_seq {seq} outside 0..{_U16}")
