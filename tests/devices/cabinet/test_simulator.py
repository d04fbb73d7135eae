"""The SCP/1 board model on its own: frames in, bytes out."""

from __future__ import annotations

from devices.cabinet.errors import Status
from devices.cabinet.scp1 import (
    AckEvents,
    Command,
    ErrorReply,
    EventsReply,
    EventType,
    Frame,
    FrameDecoder,
    GetEvents,
    GetInfo,
    InventoryReply,
    Reply,
    Request,
    RfidInventory,
    UnlockReply,
    UnlockSlot,
    decode_frame,
    decode_reply,
    encode_frame,
    encode_request,
)
from devices.cabinet.simulator import BoardModel


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(board: BoardModel, request: Request, seq: int = 0, addr: int = 1) -> Reply | None:
    wire = board.handle(decode_frame(encode_request(addr, seq, request)))
    return None if wire is None else decode_reply(decode_frame(wire))


def test_only_its_own_address_and_only_requests() -> None:
    board = BoardModel(2, 4)
    assert ask(board, GetInfo(), addr=1) is None
    assert board.handle(Frame(2, 0x81, 0, b"\x00")) is None
    assert ask(board, GetInfo(), addr=2) is not None


def test_the_retry_cache_answers_a_repeated_seq_without_executing() -> None:
    board = BoardModel(1, 4)
    assert ask(board, UnlockSlot(1, 500), seq=9) == UnlockReply(1)
    assert ask(board, UnlockSlot(1, 500), seq=9) == UnlockReply(1)
    assert board.unlocks == {1: 1}
    assert board.cache_hits == 1
    # The same SEQ with other content is a new request (a wrapped SEQ, another slot).
    assert ask(board, UnlockSlot(2, 500), seq=9) == UnlockReply(2)
    assert ask(board, UnlockSlot(1, 500), seq=10) == UnlockReply(1)
    assert board.unlocks == {1: 2, 2: 1}


def test_unknown_commands_and_bad_payloads_get_status_replies() -> None:
    board = BoardModel(1, 4)
    decoder = FrameDecoder()
    (reply,) = decoder.feed(board.handle(Frame(1, 0x42, 0, b"")) or b"")
    assert reply == Frame(1, 0xC2, 0, bytes((Status.UNKNOWN_COMMAND,)))
    (reply,) = decoder.feed(board.handle(Frame(1, 0x11, 1, b"\x01")) or b"")
    assert decode_reply(reply) == ErrorReply(Command.UNLOCK_SLOT, Status.BAD_PARAMETER)


def test_a_door_opened_within_the_pulse_is_legitimate_after_it_is_forced() -> None:
    clock = Clock()
    board = BoardModel(1, 4, clock=clock)
    ask(board, UnlockSlot(1, 500))
    assert board.state(1).unlocked
    event = board.open_door(1)
    assert event is not None
    assert event.type == EventType.DOOR_OPENED
    board.close_door(1)
    clock.now += 0.6
    assert not board.state(1).unlocked
    event = board.open_door(1)
    assert event is not None
    assert event.type == EventType.FORCED_OPEN
    assert board.state(1).forced
    board.close_door(1)
    assert not board.state(1).forced


def test_events_after_a_cursor_modulo_2_16_at_most_16_then_acknowledged() -> None:
    board = BoardModel(1, 4)
    board.next_event_seq = 65530
    for _ in range(20):
        board.tamper()
    reply = ask(board, GetEvents(65529))
    assert isinstance(reply, EventsReply)
    assert [e.seq for e in reply.events] == [*range(65530, 65536), *range(10)]
    assert ask(board, AckEvents(3), seq=1) is not None
    assert [e.seq for e in board.events] == list(range(4, 14))
    reply = ask(board, GetEvents(3), seq=2)
    assert isinstance(reply, EventsReply)
    assert [e.seq for e in reply.events] == list(range(4, 14))


def test_a_full_event_buffer_drops_the_oldest() -> None:
    board = BoardModel(1, 4, event_capacity=3)
    for _ in range(5):
        board.power_fail()
    assert [e.seq for e in board.events] == [3, 4, 5]
    assert board.events_dropped == 2


def test_inventory_pages() -> None:
    board = BoardModel(1, 2)
    assert ask(board, RfidInventory()) == InventoryReply(0, False, ())
    for n in range(20):
        board.add_tag(1, bytes([n]))
    first = ask(board, RfidInventory(0xFF, 0), seq=1)
    second = ask(board, RfidInventory(0xFF, 1), seq=2)
    assert isinstance(first, InventoryReply)
    assert isinstance(second, InventoryReply)
    assert (first.more, len(first.tags), second.more, len(second.tags)) == (True, 16, False, 4)
    assert ask(board, RfidInventory(0xFF, 2), seq=3) == ErrorReply(
        Command.RFID_INVENTORY, Status.BAD_PARAMETER
    )
    assert ask(board, RfidInventory(2, 0), seq=4) == InventoryReply(0, False, ())
    assert ask(board, RfidInventory(3, 0), seq=5) == ErrorReply(
        Command.RFID_INVENTORY, Status.BAD_PARAMETER
    )


def test_faults_hit_the_next_replies() -> None:
    board = BoardModel(1, 4)
    board.faults.drop_next = 1
    assert board.handle(decode_frame(encode_request(1, 0, GetInfo()))) is None
    board.faults.corrupt_next = 1
    decoder = FrameDecoder()
    assert decoder.feed(board.handle(decode_frame(encode_request(1, 1, GetInfo()))) or b"") == []
    assert decoder.crc_errors == 1
    board.faults.garbage_next = 1
    wire = board.handle(decode_frame(encode_request(1, 2, GetInfo()))) or b""
    (frame,) = decoder.feed(wire)
    assert wire.endswith(encode_frame(frame))
    assert len(wire) > len(encode_frame(frame))
    board.faults.busy_next = 1
    assert ask(board, UnlockSlot(1, 500), seq=3) == ErrorReply(Command.UNLOCK_SLOT, Status.BUSY)
    assert board.unlocks == {}
