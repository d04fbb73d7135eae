"""Parse advertising data (AD structures) into the fields bleak reports.

Used by the bumble backend, which receives raw advertising reports and must hand bleak an
``AdvertisementData`` like BlueZ would. Pure: bytes in, fields out. A structure whose length runs
past the end of the data, or whose payload does not fit its type, is skipped and counted in
``malformed``; parsing never raises.

Core Specification Supplement, Part A, section 1: each structure is ``length u8, type u8,
payload[length - 1]``; a zero length ends the significant part of the data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"

AD_FLAGS = 0x01
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_UUID32_INCOMPLETE = 0x04
AD_UUID32_COMPLETE = 0x05
AD_UUID128_INCOMPLETE = 0x06
AD_UUID128_COMPLETE = 0x07
AD_SHORT_NAME = 0x08
AD_COMPLETE_NAME = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA16 = 0x16
AD_SERVICE_DATA32 = 0x20
AD_SERVICE_DATA128 = 0x21
AD_MANUFACTURER = 0xFF

_UUID_LISTS = {
    AD_UUID16_INCOMPLETE: 2,
    AD_UUID16_COMPLETE: 2,
    AD_UUID32_INCOMPLETE: 4,
    AD_UUID32_COMPLETE: 4,
    AD_UUID128_INCOMPLETE: 16,
    AD_UUID128_COMPLETE: 16,
}
_SERVICE_DATA = {AD_SERVICE_DATA16: 2, AD_SERVICE_DATA32: 4, AD_SERVICE_DATA128: 16}


@dataclass(slots=True)
class AdvertisingFields:
    """The parts of an advertisement bleak exposes; later structures win, as in BlueZ."""

    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None
    malformed: int = 0

    def merge(self, other: AdvertisingFields) -> AdvertisingFields:
        """These fields updated by a later packet (a scan response), as BlueZ merges them."""
        uuids = list(self.service_uuids)
        uuids += [u for u in other.service_uuids if u not in uuids]
        return AdvertisingFields(
            local_name=other.local_name if other.local_name is not None else self.local_name,
            manufacturer_data={**self.manufacturer_data, **other.manufacturer_data},
            service_data={**self.service_data, **other.service_data},
            service_uuids=uuids,
            tx_power=other.tx_power if other.tx_power is not None else self.tx_power,
            malformed=self.malformed + other.malformed,
        )


def uuid_from_le(raw: bytes) -> str:
    """A 16-, 32- or 128-bit UUID in over-the-air (little-endian) order, as a 128-bit string."""
    if len(raw) in (2, 4):
        return f"{int.from_bytes(raw, 'little'):08x}{_BASE_SUFFIX}"
    return str(uuid.UUID(bytes=bytes(reversed(raw))))


def parse_advertising_data(data: bytes) -> AdvertisingFields:
    """Parse AD structures; malformed ones are skipped and counted."""
    fields = AdvertisingFields()
    offset = 0
    end = len(data)
    while offset < end:
        length = data[offset]
        if length == 0:
            break
        if offset + 1 + length > end:
            fields.malformed += 1
            break
        ad_type = data[offset + 1]
        payload = data[offset + 2 : offset + 1 + length]
        offset += 1 + length
        if not _apply(fields, ad_type, payload):
            fields.malformed += 1
    return fields


def build_advertising_data(structures: list[tuple[int, bytes]]) -> bytes:
    """Encode AD structures (used by the emulated band); each payload must fit 254 bytes."""
    out = bytearray()
    for ad_type, payload in structures:
        if len(payload) > 254:
            raise ValueError(f"AD structure 0x{ad_type:02X} too long: {len(payload)} bytes")
        out += bytes([len(payload) + 1, ad_type]) + payload
    return bytes(out)


def _apply(fields: AdvertisingFields, ad_type: int, payload: bytes) -> bool:
    if ad_type in _UUID_LISTS:
        size = _UUID_LISTS[ad_type]
        if len(payload) % size:
            return False
        for i in range(0, len(payload), size):
            text = uuid_from_le(payload[i : i + size])
            if text not in fields.service_uuids:
                fields.service_uuids.append(text)
        return True
    if ad_type in (AD_SHORT_NAME, AD_COMPLETE_NAME):
        name = payload.decode("utf-8", errors="replace")
        # A complete name is better than a shortened one whatever the order.
        if ad_type == AD_COMPLETE_NAME or fields.local_name is None:
            fields.local_name = name
        return True
    if ad_type == AD_TX_POWER:
        if len(payload) != 1:
            return False
        fields.tx_power = int.from_bytes(payload, "little", signed=True)
        return True
    if ad_type in _SERVICE_DATA:
        size = _SERVICE_DATA[ad_type]
        if len(payload) < size:
            return False
        fields.service_data[uuid_from_le(payload[:size])] = payload[size:]
        return True
    if ad_type == AD_MANUFACTURER:
        if len(payload) < 2:
            return False
        fields.manufacturer_data[int.from_bytes(payload[:2], "little")] = payload[2:]
        return True
    # Flags and types bleak does not expose are valid but not kept.
    return True
