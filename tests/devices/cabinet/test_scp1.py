"""The SCP/1 codec: every vector of devices.md, hostile bytes, round trips, resync."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.base import ProtocolError
from devices.cabinet.crc import crc16_modbus
from devices.cabinet.errors import (
    CabinetProtocolError,
    CrcError,
    EncodeError,
    FrameError,
    PayloadError,
    Status,
    UnknownCommandError,
)
from devices.cabinet.scp1 import (
    MAX_FRAME,
    AckEvents,
    AckReply,
    BoardEvent,
    Command,
    ErrorReply,
    EventsReply,
    Frame,
    FrameDecoder,
    GetEvents,
    GetInfo,
    GetSlotStatus,
    InfoReply,
    InventoryReply,
    Reply,
    Request,
    RfidInventory,
    SlotState,
    SlotStatusReply,
    TagRead,
    UnlockReply,
    UnlockSlot,
    decode_frame,
    decode_reply,
    decode_request,
    encode_frame,
    encode_reply,
    encode_request,
    seq_after,
)

FUZZ = settings(
    max_examples=300,
    deadline=1000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------------------------
# The vectors of devices.md, each a test.


def test_crc_check_value() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37


@pytest.mark.parametrize(
    ("message", "trailer"),
    [
        ("01 03 00 00 00 0A", "C5 CD"),
        ("01 05 00 00 FF 00", "8C 3A"),
        ("01 01 00 00 00 08", "3D CC"),
    ],
)
def test_crc_on_the_wire_low_byte_first(message: str, trailer: str) -> None:
    crc = crc16_modbus(bytes.fromhex(message))
    assert crc.to_bytes(2, "little") == bytes.fromhex(trailer)


REQUEST_VECTORS: list[tuple[int, Request, str]] = [
    (0, GetInfo(), "AA 55 01 01 00 00 00 18 3C"),
    (1, GetSlotStatus(0xFF), "AA 55 01 10 01 01 00 FF D0 75"),
    (2, UnlockSlot(3, 500), "AA 55 01 11 02 03 00 03 F4 01 B2 24"),
    (3, RfidInventory(3, 0), "AA 55 01 20 03 02 00 03 00 49 E8"),
    (4, GetEvents(0), "AA 55 01 30 04 02 00 00 00 FE 48"),
]
VECTOR_IDS = [
    "GET_INFO",
    "GET_SLOT_STATUS all",
    "UNLOCK slot 3 500 ms",
    "RFID_INVENTORY slot 3 page 0",
    "GET_EVENTS since 0",
]


@pytest.mark.parametrize(("seq", "request_", "wire"), REQUEST_VECTORS, ids=VECTOR_IDS)
def test_request_vectors_encode(seq: int, request_: Request, wire: str) -> None:
    assert encode_request(1, seq, request_) == bytes.fromhex(wire)


@pytest.mark.parametrize(("seq", "request_", "wire"), REQUEST_VECTORS, ids=VECTOR_IDS)
def test_request_vectors_decode(seq: int, request_: Request, wire: str) -> None:
    frame = decode_frame(bytes.fromhex(wire))
    assert (frame.addr, frame.cmd, frame.seq) == (1, request_.command, seq)
    assert decode_request(frame) == request_


def test_reply_vector_unlock_ok_slot_3() -> None:
    wire = bytes.fromhex("AA 55 01 91 02 02 00 00 03 2F 38")
    frame = decode_frame(wire)
    assert frame == Frame(1, 0x91, 2, b"\x00\x03")
    assert decode_reply(frame) == UnlockReply(3)
    assert encode_reply(1, 2, UnlockReply(3)) == wire


def test_every_vector_through_the_stream_decoder_byte_by_byte() -> None:
    wires = [bytes.fromhex(wire) for _, _, wire in REQUEST_VECTORS]
    wires.append(bytes.fromhex("AA 55 01 91 02 02 00 00 03 2F 38"))
    decoder = FrameDecoder()
    frames = [frame for byte in b"".join(wires) for frame in decoder.feed(bytes((byte,)))]
    assert [encode_frame(f) for f in frames] == wires
    assert decoder.skipped_bytes == 0
    assert decoder.pending == 0


# ---------------------------------------------------------------------------------------------
# Replies for every command, and what a hostile board can send.


def test_replies_for_every_command_round_trip() -> None:
    replies: list[Reply] = [
        InfoReply(1, 8, "CAB-8"),
        SlotStatusReply(
            (
                SlotState(1, True, False, True),
                SlotState(2, False, True, False, fault=True, forced=True),
            )
        ),
        UnlockReply(7),
        InventoryReply(0, True, (TagRead(1, -48, bytes.fromhex("E2801160")),)),
        EventsReply((BoardEvent(65535, 3, 2, 1_700_000_000), BoardEvent(0, 5, 1, 1, b"\x01"))),
        AckReply(),
        ErrorReply(Command.UNLOCK_SLOT, Status.BUSY),
    ]
    for reply in replies:
        assert decode_reply(decode_frame(encode_reply(9, 200, reply))) == reply
    assert {r.command for r in replies} == set(Command)


def test_ack_events_request_round_trips() -> None:
    wire = encode_request(5, 9, AckEvents(0xFFFE))
    assert decode_request(decode_frame(wire)) == AckEvents(0xFFFE)


def test_slot_flags_reserved_bits_are_ignored() -> None:
    frame = Frame(1, 0x90, 0, bytes((0, 1, 4, 0xFF)))
    reply = decode_reply(frame)
    assert isinstance(reply, SlotStatusReply)
    (state,) = reply.slots
    assert state == SlotState(4, True, True, True, True, True)
    assert state.flags == 0x1F


def test_negative_rssi_is_signed() -> None:
    frame = Frame(1, 0xA0, 0, bytes((0, 0, 0, 1, 3, 0x80, 1, 0xAB)))
    assert decode_reply(frame) == InventoryReply(0, False, (TagRead(3, -128, b"\xab"),))


@pytest.mark.parametrize(
    ("frame", "error", "reason"),
    [
        (Frame(1, 0x91, 0, b""), PayloadError, "without STATUS"),
        (Frame(1, 0x91, 0, b"\x09"), PayloadError, "unknown status"),
        (Frame(1, 0xFF, 0, b"\x00"), UnknownCommandError, "unknown command"),
        (Frame(1, 0x11, 0, b"\x00"), PayloadError, "is a request"),
        (Frame(1, 0x91, 0, b"\x00"), PayloadError, "runs past"),
        (Frame(1, 0x91, 0, b"\x00\x03\x04"), PayloadError, "unexpected bytes"),
        (Frame(1, 0x90, 0, b"\x00\x02\x01\x00"), PayloadError, "runs past"),
        (Frame(1, 0xA0, 0, b"\x00\x00\x00\x01\x01\xd0\x0c\xe2"), PayloadError, "epc runs past"),
        (Frame(1, 0xB0, 0, b"\x00\x11" + bytes(200)), PayloadError, "at most 16"),
        (
            Frame(1, 0xB0, 0, b"\x00\x01\x01\x00\x03\x01\x00\x00\x00\x00\x05"),
            PayloadError,
            "event data runs past",
        ),
        (Frame(1, 0x81, 0, b"\x00\x01"), PayloadError, "header runs past"),
    ],
)
def test_malformed_replies_raise_payload_errors(
    frame: Frame, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        decode_reply(frame)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (Frame(1, 0x7E, 0, b""), UnknownCommandError),
        (Frame(1, 0x91, 0, b"\x00\x03"), PayloadError),
        (Frame(1, 0x11, 0, b"\x03\xf4"), PayloadError),
        (Frame(1, 0x01, 0, b"\x00"), PayloadError),
    ],
)
def test_malformed_requests_raise_payload_errors(frame: Frame, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_request(frame)


def test_decode_frame_rejects_what_is_not_one_frame() -> None:
    wire = encode_request(1, 0, GetInfo())
    with pytest.raises(CrcError) as caught:
        decode_frame(wire[:-1] + bytes((wire[-1] ^ 1,)))
    assert caught.value.expected == 0x3C18
    with pytest.raises(FrameError, match="at least"):
        decode_frame(wire[:5])
    with pytest.raises(FrameError, match="SOF"):
        decode_frame(b"\x55\xaa" + wire[2:])
    with pytest.raises(FrameError, match="makes"):
        decode_frame(wire + b"\x00")
    with pytest.raises(FrameError, match="above the bound"):
        decode_frame(b"\xaa\x55\x01\x01\x00\x01\x04" + bytes(1027))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: encode_request(0, 0, GetInfo()), "addr"),
        (lambda: encode_request(248, 0, GetInfo()), "addr"),
        (lambda: encode_request(1, 256, GetInfo()), "seq"),
        (lambda: encode_request(1, 0, UnlockSlot(256, 500)), "slot"),
        (lambda: encode_request(1, 0, UnlockSlot(1, 70000)), "pulse_ms"),
        (lambda: encode_request(1, 0, GetEvents(-1)), "since_seq"),
        (lambda: encode_frame(Frame(1, 1, 0, bytes(1025))), "payload"),
        (lambda: encode_reply(1, 0, InfoReply(1, 8, "Schrank-ä")), "model"),
        (lambda: encode_reply(1, 0, ErrorReply(Command.GET_INFO, Status.OK)), "status"),
        (lambda: encode_reply(1, 0, EventsReply((BoardEvent(1, 1, 1, 0),) * 17)), "n"),
        (lambda: encode_reply(1, 0, InventoryReply(0, False, (TagRead(1, 200, b"\x01"),))), "rssi"),
    ],
)
def test_unencodable_values_raise_encode_errors(call: Callable[[], object], field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        call()
    assert caught.value.what == field
    assert isinstance(caught.value, ProtocolError)


@pytest.mark.parametrize(
    ("seq", "reference", "after"),
    [
        (1, 0, True),
        (0, 0, False),
        (0, 1, False),
        (0, 65535, True),
        (5, 65530, True),
        (32767, 0, True),
        (32768, 0, False),
        (65535, 1, False),
    ],
)
def test_event_seq_is_compared_modulo_2_16(seq: int, reference: int, after: bool) -> None:
    assert seq_after(seq, reference) is after


# ---------------------------------------------------------------------------------------------
# The stream decoder: resync, CRC, bounds.


def _frame(seq: int = 0, payload: bytes = b"\x00") -> bytes:
    return encode_frame(Frame(1, 0x81, seq, payload))


def test_garbage_before_and_between_frames_is_skipped_and_counted() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00\x13\x37" + _frame(1) + b"\xaa\xaa\x01" + _frame(2))
    assert [f.seq for f in frames] == [1, 2]
    assert decoder.skipped_bytes == 6


def test_bad_crc_frame_is_dropped_counted_and_the_next_one_survives() -> None:
    bad = bytearray(_frame(1))
    bad[-1] ^= 0xFF
    decoder = FrameDecoder()
    assert [f.seq for f in decoder.feed(bytes(bad) + _frame(2))] == [2]
    assert decoder.crc_errors == 1


def test_a_frame_hidden_inside_a_false_header_is_found() -> None:
    # A fake SOF whose LEN swallows the real frame: its CRC fails, the real frame is rescanned.
    fake = b"\xaa\x55\x01\x81\x00\x10\x00"
    real = _frame(7)
    decoder = FrameDecoder()
    frames = decoder.feed(fake + real + bytes(16))
    assert [f.seq for f in frames] == [7]
    assert decoder.crc_errors == 1


def test_a_length_above_the_bound_is_rejected_at_once() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(b"\xaa\x55\x01\x81\x00\x01\x04" + _frame(3))
    assert [f.seq for f in frames] == [3]
    assert decoder.oversize == 1


def test_the_buffer_never_holds_more_than_one_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(bytes(range(256)).replace(b"\xaa", b"") * 40)
    assert decoder.pending == 0
    decoder.feed(b"\xaa\x55\x01\x81\x00\x00\x04" + bytes(5000))
    assert decoder.pending < MAX_FRAME


def test_reset_forgets_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(_frame(1)[:6])
    assert decoder.reset() == 6
    assert [f.seq for f in decoder.feed(_frame(2))] == [2]


# ---------------------------------------------------------------------------------------------
# Properties.

_u8 = st.integers(0, 255)
_u16 = st.integers(0, 0xFFFF)
_ascii = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
_slot_states = st.builds(
    SlotState, _u8, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()
)
_tags = st.builds(TagRead, _u8, st.integers(-128, 127), st.binary(max_size=32))
_events = st.builds(BoardEvent, _u16, _u8, _u8, st.integers(0, 0xFFFFFFFF), st.binary(max_size=40))
_replies: st.SearchStrategy[Reply] = st.one_of(
    st.builds(InfoReply, _u8, _u8, _ascii, _u8),
    st.builds(SlotStatusReply, st.lists(_slot_states, max_size=60).map(tuple)),
    st.builds(UnlockReply, _u8),
    st.builds(InventoryReply, _u8, st.booleans(), st.lists(_tags, max_size=20).map(tuple)),
    st.builds(EventsReply, st.lists(_events, max_size=16).map(tuple)),
    st.just(AckReply()),
    st.builds(
        ErrorReply,
        st.sampled_from(Command),
        st.sampled_from([s for s in Status if s is not Status.OK]),
    ),
)
_requests: st.SearchStrategy[Request] = st.one_of(
    st.just(GetInfo()),
    st.builds(GetSlotStatus, _u8),
    st.builds(UnlockSlot, _u8, _u16),
    st.builds(RfidInventory, _u8, _u8),
    st.builds(GetEvents, _u16),
    st.builds(AckEvents, _u16),
)
_addresses = st.integers(1, 247)


@FUZZ
@given(_addresses, _u8, _replies)
def test_every_reply_round_trips_through_the_stream_decoder(
    addr: int, seq: int, reply: Reply
) -> None:
    decoder = FrameDecoder()
    (frame,) = decoder.feed(encode_reply(addr, seq, reply))
    assert (frame.addr, frame.seq) == (addr, seq)
    assert decode_reply(frame) == reply


@FUZZ
@given(_addresses, _u8, _requests)
def test_every_request_round_trips(addr: int, seq: int, request: Request) -> None:
    (frame,) = FrameDecoder().feed(encode_request(addr, seq, request))
    assert decode_request(frame) == request


@FUZZ
@given(st.binary(max_size=2 * MAX_FRAME))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    # Anything but a CabinetProtocolError escaping here fails the test.
    with contextlib.suppress(CabinetProtocolError):
        decode_frame(data)
    for cmd in (data[0] if data else 0x81, 0x81, 0x90, 0x91, 0xA0, 0xB0, 0xB1, 0x10):
        with contextlib.suppress(CabinetProtocolError):
            decode_reply(Frame(1, cmd | 0x80, 0, data[1:1025]))
        with contextlib.suppress(CabinetProtocolError):
            decode_request(Frame(1, cmd & 0x7F, 0, data[:1024]))


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_the_stream_decoder_swallows_anything(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert decode_frame(encode_frame(frame)) == frame
        assert decoder.pending < MAX_FRAME


@FUZZ
@given(
    st.lists(st.tuples(_replies, st.binary(max_size=40)), min_size=1, max_size=8),
    st.integers(1, 64),
)
def test_garbage_between_frames_resyncs(pairs: list[tuple[Reply, bytes]], chunk: int) -> None:
    stream = bytearray()
    expected = []
    for seq, (reply, garbage) in enumerate(pairs):
        stream += garbage
        wire = encode_reply(1, seq, reply)
        expected.append(decode_frame(wire))
        stream += wire
    # Padding flushes a fake header in the last garbage whose LEN reaches past the end.
    stream += bytes(MAX_FRAME)
    decoder = FrameDecoder()
    got = [f for i in range(0, len(stream), chunk) for f in decoder.feed(stream[i : i + chunk])]
    # Garbage may itself hold a frame with a valid CRC; every real frame is still there, in order.
    remaining = iter(got)
    assert all(any(f == want for f in remaining) for want in expected)


@FUZZ
@given(st.lists(st.tuples(_replies, st.binary(max_size=40)), min_size=1, max_size=8))
def test_noise_without_sof_bytes_loses_no_frame(pairs: list[tuple[Reply, bytes]]) -> None:
    stream = bytearray()
    expected = []
    for seq, (reply, garbage) in enumerate(pairs):
        stream += garbage.replace(b"\xaa", b"")
        wire = encode_reply(1, seq, reply)
        expected.append(decode_frame(wire))
        stream += wire
    assert FrameDecoder().feed(bytes(stream)) == expected
