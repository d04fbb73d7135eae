"""SCP/1, the smart-cabinet protocol for RS-485 lock boards: a pure codec, no I/O.

A frame (all multi-byte fields little-endian)::

    offset size field
    0      2    SOF      AA 55
    2      1    ADDR     board address 1..247
    3      1    CMD      request 0x01..0x7F; response = CMD | 0x80
    4      1    SEQ      echoed; the same value on retries
    5      2    LEN      payload length N (0..1024)
    7      N    PAYLOAD  responses start with STATUS
    7+N    2    CRC      CRC-16/MODBUS over ADDR..PAYLOAD, low byte first

:func:`encode_request` / :func:`decode_reply` are the agent's side, :func:`decode_request` /
:func:`encode_reply` the board's (the simulator's). :class:`FrameDecoder` cuts frames out of a
byte stream: it resynchronises on SOF plus the explicit length after garbage, drops and counts
frames with a bad CRC, and never holds more than one maximal frame. Every function here raises
:class:`~devices.cabinet.errors.CabinetProtocolError` subclasses and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from devices.cabinet.crc import crc16_modbus
from devices.cabinet.errors import (
    CrcError,
    EncodeError,
    FrameError,
    PayloadError,
    Status,
    UnknownCommandError,
)

SOF = b"\xaa\x55"
HEADER_LEN = 7
CRC_LEN = 2
MAX_PAYLOAD = 1024
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
RESPONSE_BIT = 0x80
ALL_SLOTS = 0xFF
# GET_EVENTS: "n u8 (<= 16)".
MAX_EVENTS_PER_REPLY = 16
PULSE_MS_MIN = 50
PULSE_MS_MAX = 2000
SEQ_MODULUS = 1 << 16
ADDRESS_MIN = 1
ADDRESS_MAX = 247

_HEADER = struct.Struct("<2sBBBH")
_EVENT_HEAD = struct.Struct("<HBBIB")
_UNLOCK = struct.Struct("<BH")
_U16 = struct.Struct("<H")


class Command(IntEnum):
    """Request command codes; a response carries ``code | 0x80``."""

    GET_INFO = 0x01
    GET_SLOT_STATUS = 0x10
    UNLOCK_SLOT = 0x11
    RFID_INVENTORY = 0x20
    GET_EVENTS = 0x30
    ACK_EVENTS = 0x31

    @property
    def label(self) -> str:
        """The command's name as the protocol table writes it."""
        return self.name


class EventType(IntEnum):
    """Event record types of GET_EVENTS."""

    DOOR_OPENED = 1
    DOOR_CLOSED = 2
    FORCED_OPEN = 3
    TAMPER = 4
    TAG_ADDED = 5
    TAG_REMOVED = 6
    POWER_FAIL = 7


def seq_after(seq: int, reference: int) -> bool:
    """Whether 16-bit event sequence ``seq`` comes after ``reference``, modulo 2**16.

    Serial-number arithmetic: ``seq`` is after ``reference`` when it is 1..32767 steps ahead.
    """
    distance = (seq - reference) % SEQ_MODULUS
    return 0 < distance < SEQ_MODULUS // 2


# ---------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True, slots=True)
class Frame:
    """One SCP/1 frame, without SOF, length and CRC."""

    addr: int
    cmd: int
    seq: int
    payload: bytes = b""

    @property
    def is_response(self) -> bool:
        """Whether the frame is a board's response (CMD has bit 7 set)."""
        return bool(self.cmd & RESPONSE_BIT)


def _check_byte(what: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise EncodeError(what, f"{value!r} is not a byte (0..255)")
    return value


def _check_u16(what: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise EncodeError(what, f"{value!r} is not a uint16 (0..65535)")
    return value


def encode_frame(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire, SOF to CRC."""
    _check_byte("addr", frame.addr)
    _check_byte("cmd", frame.cmd)
    _check_byte("seq", frame.seq)
    if len(frame.payload) > MAX_PAYLOAD:
        raise EncodeError("payload", f"{len(frame.payload)} bytes, at most {MAX_PAYLOAD}")
    body = (
        bytes((frame.addr, frame.cmd, frame.seq))
        + _U16.pack(len(frame.payload))
        + bytes(frame.payload)
    )
    return SOF + body + crc16_modbus(body).to_bytes(2, "little")


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame from ``data``; anything else is a :class:`FrameError`."""
    data = bytes(data)
    if len(data) < HEADER_LEN + CRC_LEN:
        raise FrameError(
            "frame", f"{len(data)} bytes, a frame has at least {HEADER_LEN + CRC_LEN}", data
        )
    sof, addr, cmd, seq, length = _HEADER.unpack_from(data)
    if sof != SOF:
        raise FrameError("frame", "does not start with SOF AA 55", data)
    if length > MAX_PAYLOAD:
        raise FrameError("frame", f"length {length} above the bound {MAX_PAYLOAD}", data)
    if len(data) != HEADER_LEN + length + CRC_LEN:
        raise FrameError(
            "frame",
            f"{len(data)} bytes where LEN {length} makes {HEADER_LEN + length + CRC_LEN}",
            data,
        )
    _check_crc(data, length)
    return Frame(addr, cmd, seq, data[HEADER_LEN : HEADER_LEN + length])


def _check_crc(data: bytes | bytearray, length: int) -> None:
    end = HEADER_LEN + length
    expected = crc16_modbus(memoryview(data)[2:end])
    received = data[end] | data[end + 1] << 8
    if expected != received:
        raise CrcError(expected, received, bytes(data[: end + CRC_LEN]))


class FrameDecoder:
    """Incremental frame decoder: feed it bytes as they arrive, get whole frames back.

    Bytes before a SOF are skipped and counted; a header whose LEN exceeds the bound, or a frame
    whose CRC does not match, loses only its first byte, so a real frame that starts inside it
    is still found. At most one maximal frame (1033 bytes) is ever held. ``feed`` never raises.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buffer = bytearray()
        self.frames = 0
        self.crc_errors = 0
        self.oversize = 0
        self.skipped_bytes = 0

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def reset(self) -> int:
        """Forget a partial frame (before a new request on a half-duplex bus); bytes dropped."""
        dropped = len(self._buffer)
        self.skipped_bytes += dropped
        self._buffer.clear()
        return dropped

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Frames completed by ``data``, in order."""
        buffer = self._buffer
        buffer += data
        out: list[Frame] = []
        while buffer:
            start = buffer.find(SOF)
            if start < 0:
                # Keep a trailing AA: it may be the first half of the next SOF.
                keep = 1 if buffer[-1] == SOF[0] else 0
                self.skipped_bytes += len(buffer) - keep
                del buffer[: len(buffer) - keep]
                break
            if start:
                self.skipped_bytes += start
                del buffer[:start]
            if len(buffer) < HEADER_LEN:
                break
            length = buffer[5] | buffer[6] << 8
            if length > self.max_payload:
                self.oversize += 1
                self.skipped_bytes += 1
                del buffer[:1]
                continue
            total = HEADER_LEN + length + CRC_LEN
            if len(buffer) < total:
                break
            end = HEADER_LEN + length
            if crc16_modbus(memoryview(buffer)[2:end]) != buffer[end] | buffer[end + 1] << 8:
                self.crc_errors += 1
                self.skipped_bytes += 1
                del buffer[:1]
                continue
            out.append(Frame(buffer[2], buffer[3], buffer[4], bytes(buffer[HEADER_LEN:end])))
            self.frames += 1
            del buffer[:total]
        return out


# ---------------------------------------------------------------------------------------------
# Requests (agent -> board)


@dataclass(frozen=True, slots=True)
class GetInfo:
    """GET_INFO: protocol version, slot count and model."""

    command: ClassVar[Command] = Command.GET_INFO


@dataclass(frozen=True, slots=True)
class GetSlotStatus:
    """GET_SLOT_STATUS for one slot, or all (0xFF)."""

    slot: int = ALL_SLOTS
    command: ClassVar[Command] = Command.GET_SLOT_STATUS


@dataclass(frozen=True, slots=True)
class UnlockSlot:
    """UNLOCK_SLOT: pulse a slot's lock for ``pulse_ms`` (the board accepts 50..2000)."""

    slot: int
    pulse_ms: int
    command: ClassVar[Command] = Command.UNLOCK_SLOT


@dataclass(frozen=True, slots=True)
class RfidInventory:
    """RFID_INVENTORY for one slot, or all (0xFF); replies are paged from page 0."""

    slot: int = ALL_SLOTS
    page: int = 0
    command: ClassVar[Command] = Command.RFID_INVENTORY


@dataclass(frozen=True, slots=True)
class GetEvents:
    """GET_EVENTS: buffered events after ``since_seq`` (modulo 2**16)."""

    since_seq: int
    command: ClassVar[Command] = Command.GET_EVENTS


@dataclass(frozen=True, slots=True)
class AckEvents:
    """ACK_EVENTS: the board may forget events up to and including ``up_to_seq``."""

    up_to_seq: int
    command: ClassVar[Command] = Command.ACK_EVENTS


Request = GetInfo | GetSlotStatus | UnlockSlot | RfidInventory | GetEvents | AckEvents


def request_payload(request: Request) -> bytes:
    """The payload bytes of ``request``."""
    match request:
        case GetInfo():
            return b""
        case GetSlotStatus(slot=slot):
            return bytes((_check_byte("slot", slot),))
        case UnlockSlot(slot=slot, pulse_ms=pulse_ms):
            return _UNLOCK.pack(_check_byte("slot", slot), _check_u16("pulse_ms", pulse_ms))
        case RfidInventory(slot=slot, page=page):
            return bytes((_check_byte("slot", slot), _check_byte("page", page)))
        case GetEvents(since_seq=since):
            return _U16.pack(_check_u16("since_seq", since))
        case AckEvents(up_to_seq=up_to):
            return _U16.pack(_check_u16("up_to_seq", up_to))
    raise EncodeError("request", f"{request!r} is not an SCP/1 request")


def encode_request(addr: int, seq: int, request: Request) -> bytes:
    """The wire bytes of ``request`` to board ``addr`` with sequence number ``seq``."""
    if not isinstance(addr, int) or not ADDRESS_MIN <= addr <= ADDRESS_MAX:
        raise EncodeError("addr", f"{addr!r} is not a board address ({ADDRESS_MIN}..{ADDRESS_MAX})")
    return encode_frame(Frame(addr, int(request.command), seq, request_payload(request)))


def _expect_length(command: Command, payload: bytes, length: int) -> None:
    if len(payload) != length:
        raise PayloadError(
            command.label, f"payload of {len(payload)} bytes, expected {length}", payload
        )


def decode_request(frame: Frame) -> Request:
    """The request carried by ``frame`` (the board's side)."""
    if frame.is_response:
        raise PayloadError("request", f"CMD 0x{frame.cmd:02X} is a response")
    try:
        command = Command(frame.cmd)
    except ValueError:
        raise UnknownCommandError(frame.cmd, frame.payload) from None
    payload = frame.payload
    match command:
        case Command.GET_INFO:
            _expect_length(command, payload, 0)
            return GetInfo()
        case Command.GET_SLOT_STATUS:
            _expect_length(command, payload, 1)
            return GetSlotStatus(payload[0])
        case Command.UNLOCK_SLOT:
            _expect_length(command, payload, _UNLOCK.size)
            slot, pulse_ms = _UNLOCK.unpack(payload)
            return UnlockSlot(slot, pulse_ms)
        case Command.RFID_INVENTORY:
            _expect_length(command, payload, 2)
            return RfidInventory(payload[0], payload[1])
        case Command.GET_EVENTS:
            _expect_length(command, payload, 2)
            return GetEvents(_U16.unpack(payload)[0])
        case Command.ACK_EVENTS:
            _expect_length(command, payload, 2)
            return AckEvents(_U16.unpack(payload)[0])
    raise UnknownCommandError(frame.cmd, payload)  # pragma: no cover - the match is exhaustive


# ---------------------------------------------------------------------------------------------
# Replies (board -> agent)


@dataclass(frozen=True, slots=True)
class InfoReply:
    """GET_INFO reply."""

    proto_ver: int
    slot_count: int
    model: str
    reserved: int = 0
    command: ClassVar[Command] = Command.GET_INFO


SLOT_DOOR_OPEN = 0x01
SLOT_UNLOCKED = 0x02
SLOT_ITEM_PRESENT = 0x04
SLOT_FAULT = 0x08
SLOT_FORCED = 0x10


@dataclass(frozen=True, slots=True)
class SlotState:
    """One slot of a GET_SLOT_STATUS reply.

    ``item_present`` is ``None`` for boards without an item sensor (Modbus lock boards).
    """

    slot: int
    door_open: bool
    unlocked: bool
    item_present: bool | None
    fault: bool = False
    forced: bool = False

    @property
    def flags(self) -> int:
        """The SCP/1 flags: bit0 door open, bit1 unlocked, bit2 item, bit3 fault, bit4 forced."""
        return (
            (SLOT_DOOR_OPEN if self.door_open else 0)
            | (SLOT_UNLOCKED if self.unlocked else 0)
            | (SLOT_ITEM_PRESENT if self.item_present else 0)
            | (SLOT_FAULT if self.fault else 0)
            | (SLOT_FORCED if self.forced else 0)
        )

    @classmethod
    def from_flags(cls, slot: int, flags: int) -> SlotState:
        """Decode a flag byte; bits 5..7 are reserved and ignored."""
        return cls(
            slot,
            bool(flags & SLOT_DOOR_OPEN),
            bool(flags & SLOT_UNLOCKED),
            bool(flags & SLOT_ITEM_PRESENT),
            bool(flags & SLOT_FAULT),
            bool(flags & SLOT_FORCED),
        )


@dataclass(frozen=True, slots=True)
class SlotStatusReply:
    """GET_SLOT_STATUS reply."""

    slots: tuple[SlotState, ...]
    command: ClassVar[Command] = Command.GET_SLOT_STATUS


@dataclass(frozen=True, slots=True)
class UnlockReply:
    """UNLOCK_SLOT reply: the slot that was unlocked."""

    slot: int
    command: ClassVar[Command] = Command.UNLOCK_SLOT


@dataclass(frozen=True, slots=True)
class TagRead:
    """One RFID tag seen in a slot."""

    slot: int
    rssi: int
    epc: bytes


@dataclass(frozen=True, slots=True)
class InventoryReply:
    """RFID_INVENTORY reply: one page of tags; ``more`` asks for the next page."""

    page: int
    more: bool
    tags: tuple[TagRead, ...]
    command: ClassVar[Command] = Command.RFID_INVENTORY


@dataclass(frozen=True, slots=True)
class BoardEvent:
    """One buffered board event. ``type`` stays an int: a newer board may send new types."""

    seq: int
    type: int
    slot: int
    ts: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class EventsReply:
    """GET_EVENTS reply: at most 16 events."""

    events: tuple[BoardEvent, ...]
    command: ClassVar[Command] = Command.GET_EVENTS


@dataclass(frozen=True, slots=True)
class AckReply:
    """ACK_EVENTS reply (STATUS only)."""

    command: ClassVar[Command] = Command.ACK_EVENTS


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Any reply whose STATUS is not OK; the rest of its payload is ignored."""

    command: Command
    status: Status


Reply = (
    InfoReply | SlotStatusReply | UnlockReply | InventoryReply | EventsReply | AckReply | ErrorReply
)


def _reply_body(reply: Reply) -> bytes:
    match reply:
        case InfoReply(proto_ver=proto_ver, slot_count=slot_count, model=model, reserved=reserved):
            try:
                model_bytes = model.encode("ascii")
            except UnicodeEncodeError:
                raise EncodeError("model", f"{model!r} is not ASCII") from None
            return (
                bytes(
                    (
                        _check_byte("proto_ver", proto_ver),
                        _check_byte("reserved", reserved),
                        _check_byte("slot_count", slot_count),
                    )
                )
                + model_bytes
            )
        case SlotStatusReply(slots=slots):
            out = bytearray((_check_byte("n", len(slots)),))
            for state in slots:
                out += bytes((_check_byte("slot", state.slot), state.flags))
            return bytes(out)
        case UnlockReply(slot=slot):
            return bytes((_check_byte("slot", slot),))
        case InventoryReply(page=page, more=more, tags=tags):
            out = bytearray(
                (_check_byte("page", page), 1 if more else 0, _check_byte("n", len(tags)))
            )
            for tag in tags:
                if not -128 <= tag.rssi <= 127:
                    raise EncodeError("rssi", f"{tag.rssi} is not an int8")
                out += (
                    bytes(
                        (
                            _check_byte("slot", tag.slot),
                            tag.rssi & 0xFF,
                            _check_byte("epc_len", len(tag.epc)),
                        )
                    )
                    + tag.epc
                )
            return bytes(out)
        case EventsReply(events=events):
            if len(events) > MAX_EVENTS_PER_REPLY:
                raise EncodeError("n", f"{len(events)} events, at most {MAX_EVENTS_PER_REPLY}")
            out = bytearray((len(events),))
            for event in events:
                if not 0 <= event.ts <= 0xFFFFFFFF:
                    raise EncodeError("ts", f"{event.ts} is not a uint32")
                out += (
                    _EVENT_HEAD.pack(
                        _check_u16("ev_seq", event.seq),
                        _check_byte("type", event.type),
                        _check_byte("slot", event.slot),
                        event.ts,
                        _check_byte("dlen", len(event.data)),
                    )
                    + event.data
                )
            return bytes(out)
        case AckReply():
            return b""
    raise EncodeError("reply", f"{reply!r} is not an SCP/1 reply")


def encode_reply(addr: int, seq: int, reply: Reply) -> bytes:
    """The wire bytes of ``reply`` from board ``addr`` echoing ``seq`` (the board's side)."""
    if isinstance(reply, ErrorReply):
        if reply.status is Status.OK:
            raise EncodeError("status", "an ErrorReply cannot carry status OK")
        payload = bytes((reply.status,))
    else:
        payload = bytes((Status.OK,)) + _reply_body(reply)
    return encode_frame(Frame(addr, int(reply.command) | RESPONSE_BIT, seq, payload))


class _Reader:
    """Bounds-checked reads over one payload; running short is a :class:`PayloadError`."""

    __slots__ = ("data", "offset", "what")

    def __init__(self, what: str, data: bytes, offset: int = 0) -> None:
        self.what = what
        self.data = data
        self.offset = offset

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise PayloadError(
                self.what,
                f"{field} runs past the end of the payload "
                f"(offset {self.offset}, {len(self.data)} bytes)",
                self.data,
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def rest(self) -> bytes:
        chunk = self.data[self.offset :]
        self.offset = len(self.data)
        return chunk

    def done(self) -> None:
        if self.offset != len(self.data):
            raise PayloadError(
                self.what,
                f"{len(self.data) - self.offset} unexpected bytes after the last field",
                self.data,
            )


def decode_reply(frame: Frame) -> Reply:
    """The reply carried by ``frame`` (the agent's side)."""
    if not frame.is_response:
        raise PayloadError("reply", f"CMD 0x{frame.cmd:02X} is a request")
    try:
        command = Command(frame.cmd & ~RESPONSE_BIT)
    except ValueError:
        raise UnknownCommandError(frame.cmd & ~RESPONSE_BIT, frame.payload) from None
    if not frame.payload:
        raise PayloadError(command.label, "reply without STATUS")
    try:
        status = Status(frame.payload[0])
    except ValueError:
        raise PayloadError(
            command.label, f"unknown status 0x{frame.payload[0]:02X}", frame.payload
        ) from None
    if status is not Status.OK:
        return ErrorReply(command, status)
    reader = _Reader(command.label, frame.payload, 1)
    reply: Reply
    match command:
        case Command.GET_INFO:
            proto_ver, reserved, slot_count = reader.take(3, "header")
            model = reader.rest().decode("ascii", "replace")
            reply = InfoReply(proto_ver, slot_count, model, reserved)
        case Command.GET_SLOT_STATUS:
            count = reader.u8("n")
            slots = []
            for _ in range(count):
                slot, flags = reader.take(2, "slot record")
                slots.append(SlotState.from_flags(slot, flags))
            reply = SlotStatusReply(tuple(slots))
        case Command.UNLOCK_SLOT:
            reply = UnlockReply(reader.u8("slot"))
        case Command.RFID_INVENTORY:
            page, more, count = reader.take(3, "header")
            tags = []
            for _ in range(count):
                slot, rssi, epc_len = reader.take(3, "tag record")
                epc = reader.take(epc_len, "epc")
                tags.append(TagRead(slot, rssi - 256 if rssi > 127 else rssi, epc))
            reply = InventoryReply(page, bool(more), tuple(tags))
        case Command.GET_EVENTS:
            count = reader.u8("n")
            if count > MAX_EVENTS_PER_REPLY:
                raise PayloadError(
                    command.label, f"{count} events, at most {MAX_EVENTS_PER_REPLY}", frame.payload
                )
            events = []
            for _ in range(count):
                seq, kind, slot, ts, dlen = _EVENT_HEAD.unpack(
                    reader.take(_EVENT_HEAD.size, "event record")
                )
                events.append(BoardEvent(seq, kind, slot, ts, reader.take(dlen, "event data")))
            reply = EventsReply(tuple(events))
        case Command.ACK_EVENTS:
            reply = AckReply()
    reader.done()
    return reply
