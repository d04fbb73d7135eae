"""CRC-16/MODBUS, the checksum of SCP/1 frames (and of Modbus RTU)."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    # Reflected polynomial 0x8005 -> 0xA001; one entry per byte value.
    entries = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        entries.append(crc)
    return tuple(entries)


_TABLE = _table()


def crc16_modbus(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/MODBUS of ``data`` (init 0xFFFF, reflected, no final xor).

    It goes on the wire low byte first. ``crc`` continues a computation over earlier bytes.
    """
    table = _TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
