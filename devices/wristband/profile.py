"""The wristband's GATT profile and advertisement: UUIDs, company id, control point opcodes.

Standard services (Bluetooth SIG assigned numbers):

=========================  ======  ===============================  ==================
service                    uuid    characteristic                   properties
=========================  ======  ===============================  ==================
Heart Rate                 0x180D  Heart Rate Measurement 0x2A37    notify
Battery                    0x180F  Battery Level 0x2A19             read, notify
=========================  ======  ===============================  ==================

Custody service (ours). Its 128-bit UUIDs share one base, generated at random for Precinct
(``a9458faa-ab53-4924-8eb0-fd408b35a94a``); as with the Nordic UART service, the third and fourth
bytes of the first group carry a 16-bit alias:

=========================================  ======  ==============================================
uuid                                       alias   what
=========================================  ======  ==============================================
``a9450001-ab53-4924-8eb0-fd408b35a94a``   0x0001  custody service
``a9450002-ab53-4924-8eb0-fd408b35a94a``   0x0002  custody status: read + indicate, 7 bytes
``a9450003-ab53-4924-8eb0-fd408b35a94a``   0x0003  custody control point: write with response
=========================================  ======  ==============================================

Status is *indicated*, not notified: an indication is acknowledged by the central's ATT layer,
so a strap-opened edge is not lost to a full radio queue the way a notification can be.

Advertisements carry the same state in manufacturer-specific data under company id
:data:`COMPANY_ID` (``FF FF 57 03 01 00``: battery 87 %, strap closed + contact, event_seq 1), so
that a passive scan, or a second agent's scanner, sees a strap opening without a connection.
0xFFFF is the SIG's identifier for internal use and tests; a production band would carry the
vendor's assigned id, which is the one thing to change here.
"""

from __future__ import annotations

import enum
import uuid

HEART_RATE_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"

CUSTODY_BASE_UUID = uuid.UUID("a9458faa-ab53-4924-8eb0-fd408b35a94a")


def custody_uuid(alias: int) -> str:
    """The custody profile's 128-bit UUID for a 16-bit ``alias``, as bleak spells UUIDs."""
    if not 0 <= alias <= 0xFFFF:
        raise ValueError(f"alias {alias} is not a 16-bit value")
    raw = bytearray(CUSTODY_BASE_UUID.bytes)
    raw[2:4] = alias.to_bytes(2, "big")
    return str(uuid.UUID(bytes=bytes(raw)))


CUSTODY_SERVICE = custody_uuid(0x0001)
CUSTODY_STATUS = custody_uuid(0x0002)
CUSTODY_CONTROL_POINT = custody_uuid(0x0003)

COMPANY_ID = 0xFFFF


class ControlOpcode(enum.IntEnum):
    """First byte of a write to the custody control point."""

    CLEAR_TAMPER = 0x01
