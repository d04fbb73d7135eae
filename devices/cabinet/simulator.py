"""A behavioural SCP/1 lock board, and a pty that puts boards on a "serial port".

:class:`BoardModel` is the board: slots with doors, locks, item sensors and RFID tags, an event
buffer with a cursor and acknowledgement, the retry cache by SEQ, and fault injection
(:class:`Faults`). It is pure: frames in, bytes out, so tests can also drive it directly.

:class:`PtyBus` runs boards on the master side of ``os.openpty()``; its slave path is opened by a
driver exactly like ``/dev/ttyUSB0``. Several boards may share one pty, as on an RS-485 bus; the
bus counts collisions (a request that arrives while a reply is still due), which a driver that
keeps one request in flight per bus never causes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from devices.cabinet.errors import PayloadError, Status, UnknownCommandError
from devices.cabinet.scp1 import (
    ALL_SLOTS,
    MAX_EVENTS_PER_REPLY,
    PULSE_MS_MAX,
    PULSE_MS_MIN,
    RESPONSE_BIT,
    SEQ_MODULUS,
    AckEvents,
    AckReply,
    BoardEvent,
    ErrorReply,
    EventsReply,
    EventType,
    Frame,
    FrameDecoder,
    GetEvents,
    GetInfo,
    GetSlotStatus,
    InfoReply,
    InventoryReply,
    Reply,
    RfidInventory,
    SlotState,
    SlotStatusReply,
    TagRead,
    UnlockReply,
    UnlockSlot,
    decode_request,
    encode_frame,
    encode_reply,
    seq_after,
)

PROTOCOL_VERSION = 1
# Tags per RFID_INVENTORY page: 16 records of a 12-byte EPC fill 243 of the 1024 payload bytes.
INVENTORY_PAGE_SIZE = 16
DEFAULT_EVENT_CAPACITY = 512


@dataclass
class Faults:
    """What the board does wrong, on request.

    The ``*_next`` counters hit the next N replies (deterministic, for tests); the ``*_rate``
    probabilities hit any reply (the ``simulate`` command). ``silent`` stops all answers.
    """

    drop_next: int = 0
    corrupt_next: int = 0
    busy_next: int = 0
    garbage_next: int = 0
    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    busy_rate: float = 0.0
    silent: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def _hit(self, name: str) -> bool:
        count = getattr(self, f"{name}_next")
        if count > 0:
            setattr(self, f"{name}_next", count - 1)
            return True
        rate: float = getattr(self, f"{name}_rate", 0.0)
        return rate > 0 and self.rng.random() < rate

    def busy(self) -> bool:
        """Whether this request is answered "busy" instead of executed."""
        return self._hit("busy")

    def mangle(self, reply: bytes) -> bytes | None:
        """The reply as it leaves the board: dropped (None), corrupted, or after noise."""
        if self._hit("drop"):
            return None
        if self._hit("corrupt"):
            damaged = bytearray(reply)
            damaged[-3] ^= 0x5A  # the last payload byte, or LEN's high byte for an empty one
            reply = bytes(damaged)
        if self._hit("garbage"):
            noise = bytes(b for b in self.rng.randbytes(12) if b != 0xAA)
            # A lone AA right before the real SOF: the decoder must not lose the frame to it.
            reply = noise + b"\xaa" + reply
        return reply


@dataclass
class SlotModel:
    """One slot: door, lock, item sensor, fault line and the tags in it."""

    door_open: bool = False
    unlocked_until: float = 0.0
    fault: bool = False
    forced: bool = False
    tags: list[bytes] = field(default_factory=list)


class BoardModel:
    """A behavioural SCP/1 board: it executes requests and keeps events until acknowledged."""

    def __init__(
        self,
        address: int = 1,
        slots: int = 8,
        *,
        model: str | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        event_capacity: int = DEFAULT_EVENT_CAPACITY,
    ) -> None:
        if not 1 <= slots <= 254:
            raise ValueError("a board has 1..254 slots (0xFF means all)")
        self.address = address
        self.slots = {number: SlotModel() for number in range(1, slots + 1)}
        self.model = model if model is not None else f"SCP-SIM-{slots}"
        self.faults = faults if faults is not None else Faults()
        self.clock = clock
        self.wall_clock = wall_clock
        self.event_capacity = event_capacity
        self.events: collections.deque[BoardEvent] = collections.deque()
        self.next_event_seq = 1
        self.events_dropped = 0
        #: Lock pulses actually driven, per slot: a retried UNLOCK_SLOT must not add one.
        self.unlocks: collections.Counter[int] = collections.Counter()
        self.requests = 0
        self.cache_hits = 0
        self._last: tuple[tuple[int, int, bytes], bytes] | None = None

    # -- the wire -------------------------------------------------------------------------------

    def handle(self, frame: Frame) -> bytes | None:
        """The bytes the board sends in answer to ``frame``, or None (not for it, or a fault)."""
        if frame.addr != self.address or frame.is_response or self.faults.silent:
            return None
        self.requests += 1
        key = (frame.seq, frame.cmd, frame.payload)
        if self._last is not None and self._last[0] == key:
            # A retry: answer from the cache, do not execute again.
            self.cache_hits += 1
            reply = self._last[1]
        else:
            reply = self._execute(frame)
            self._last = (key, reply)
        return self.faults.mangle(reply)

    def _execute(self, frame: Frame) -> bytes:
        try:
            request = decode_request(frame)
        except UnknownCommandError:
            return encode_frame(
                Frame(
                    self.address,
                    frame.cmd | RESPONSE_BIT,
                    frame.seq,
                    bytes((Status.UNKNOWN_COMMAND,)),
                )
            )
        except PayloadError:
            return encode_frame(
                Frame(
                    self.address,
                    frame.cmd | RESPONSE_BIT,
                    frame.seq,
                    bytes((Status.BAD_PARAMETER,)),
                )
            )
        if self.faults.busy():
            reply: Reply = ErrorReply(request.command, Status.BUSY)
        else:
            reply = self._run(request)
        return encode_reply(self.address, frame.seq, reply)

    def _run(self, request: object) -> Reply:
        match request:
            case GetInfo():
                return InfoReply(PROTOCOL_VERSION, len(self.slots), self.model)
            case GetSlotStatus(slot=slot):
                if slot == ALL_SLOTS:
                    return SlotStatusReply(tuple(self.state(n) for n in self.slots))
                if slot not in self.slots:
                    return ErrorReply(GetSlotStatus.command, Status.BAD_PARAMETER)
                return SlotStatusReply((self.state(slot),))
            case UnlockSlot(slot=slot, pulse_ms=pulse_ms):
                if slot not in self.slots or not PULSE_MS_MIN <= pulse_ms <= PULSE_MS_MAX:
                    return ErrorReply(UnlockSlot.command, Status.BAD_PARAMETER)
                if self.slots[slot].fault:
                    return ErrorReply(UnlockSlot.command, Status.HARDWARE_FAULT)
                self.slots[slot].unlocked_until = self.clock() + pulse_ms / 1000
                self.unlocks[slot] += 1
                return UnlockReply(slot)
            case RfidInventory(slot=slot, page=page):
                return self._inventory(slot, page)
            case GetEvents(since_seq=since):
                batch = [e for e in self.events if seq_after(e.seq, since)]
                return EventsReply(tuple(batch[:MAX_EVENTS_PER_REPLY]))
            case AckEvents(up_to_seq=up_to):
                kept = [e for e in self.events if seq_after(e.seq, up_to)]
                self.events = collections.deque(kept)
                return AckReply()
        raise AssertionError(f"unhandled request {request!r}")  # pragma: no cover

    def _inventory(self, slot: int, page: int) -> Reply:
        if slot != ALL_SLOTS and slot not in self.slots:
            return ErrorReply(RfidInventory.command, Status.BAD_PARAMETER)
        numbers = list(self.slots) if slot == ALL_SLOTS else [slot]
        tags = [TagRead(n, self.rssi(n), epc) for n in numbers for epc in self.slots[n].tags]
        start = page * INVENTORY_PAGE_SIZE
        if start and start >= len(tags):
            return ErrorReply(RfidInventory.command, Status.BAD_PARAMETER)
        chunk = tuple(tags[start : start + INVENTORY_PAGE_SIZE])
        return InventoryReply(page, start + INVENTORY_PAGE_SIZE < len(tags), chunk)

    # -- what the board reports -----------------------------------------------------------------

    def state(self, slot: int) -> SlotState:
        """The slot's flags as GET_SLOT_STATUS reports them."""
        model = self.slots[slot]
        return SlotState(
            slot,
            model.door_open,
            self.clock() < model.unlocked_until,
            bool(model.tags),
            model.fault,
            model.forced,
        )

    @staticmethod
    def rssi(slot: int) -> int:
        """A plausible, stable RSSI for a tag in ``slot``."""
        return -40 - slot % 30

    def push_event(self, kind: int, slot: int, data: bytes = b"") -> BoardEvent:
        """Buffer an event of any type (the physical actions below use this)."""
        event = BoardEvent(
            self.next_event_seq, int(kind), slot, int(self.wall_clock()) & 0xFFFFFFFF, data
        )
        self.next_event_seq = (self.next_event_seq + 1) % SEQ_MODULUS
        self.events.append(event)
        while len(self.events) > self.event_capacity:
            self.events.popleft()
            self.events_dropped += 1
        return event

    # -- the physical world ---------------------------------------------------------------------

    def _slot(self, slot: int) -> SlotModel:
        if slot not in self.slots:
            raise ValueError(f"no slot {slot} (1..{len(self.slots)})")
        return self.slots[slot]

    def open_door(self, slot: int) -> BoardEvent | None:
        """Someone opens the door: "door opened" while unlocked, "forced open" otherwise."""
        model = self._slot(slot)
        if model.door_open:
            return None
        model.door_open = True
        if self.clock() < model.unlocked_until:
            return self.push_event(EventType.DOOR_OPENED, slot)
        model.forced = True
        return self.push_event(EventType.FORCED_OPEN, slot)

    def force_door(self, slot: int) -> BoardEvent | None:
        """The door is pried open while its lock is engaged."""
        model = self._slot(slot)
        model.unlocked_until = 0.0
        return self.open_door(slot)

    def close_door(self, slot: int) -> BoardEvent | None:
        """The door is shut; a forced flag clears when the lock engages again."""
        model = self._slot(slot)
        if not model.door_open:
            return None
        model.door_open = False
        model.forced = False
        return self.push_event(EventType.DOOR_CLOSED, slot)

    def add_tag(self, slot: int, epc: bytes) -> BoardEvent:
        """An item with RFID tag ``epc`` is put into ``slot``."""
        self._slot(slot).tags.append(bytes(epc))
        return self.push_event(EventType.TAG_ADDED, slot, bytes(epc))

    def remove_tag(self, slot: int, epc: bytes) -> BoardEvent | None:
        """The item with tag ``epc`` is taken out of ``slot``."""
        tags = self._slot(slot).tags
        if bytes(epc) not in tags:
            return None
        tags.remove(bytes(epc))
        return self.push_event(EventType.TAG_REMOVED, slot, bytes(epc))

    def tamper(self) -> BoardEvent:
        """The board's enclosure switch trips."""
        return self.push_event(EventType.TAMPER, 0)

    def power_fail(self) -> BoardEvent:
        """Mains power is lost (the board runs on its backup)."""
        return self.push_event(EventType.POWER_FAIL, 0)

    def set_fault(self, slot: int, fault: bool) -> None:
        """A lock's coil is open-circuit (unlocks answer "hardware fault")."""
        self._slot(slot).fault = fault

    def stock(self, tags_per_slot: int = 1) -> None:
        """Put items with made-up EPCs in every slot, without events (the board's boot state)."""
        for number, model in self.slots.items():
            for index in range(tags_per_slot):
                model.tags.append(
                    bytes.fromhex(
                        f"E2801160{self.address:02X}{number:02X}{index:02X}00000000{number:02X}"
                    )
                )


class PtyBus:
    """Boards answering on the master side of a pty; :attr:`path` is the serial port.

    ``turnaround`` delays every reply, as a real board's processing time does; a request that
    arrives meanwhile is a collision on a real RS-485 bus and is counted in :attr:`collisions`.
    """

    def __init__(self, boards: Iterable[BoardModel], *, turnaround: float = 0.0) -> None:
        self.boards = list(boards)
        self.turnaround = turnaround
        self.collisions = 0
        self.frames_in = 0
        self.decoder = FrameDecoder()
        self._master = -1
        self._slave = -1
        self.path = ""
        self._out = bytearray()
        self._pending = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer_added = False

    async def __aenter__(self) -> PtyBus:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Open the pty and start answering (in the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        # The slave stays open here too: with no slave open, reading the master fails with EIO
        # whenever the driver closes its port.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._loop.add_reader(self._master, self._readable)

    def stop(self) -> None:
        """Stop answering and close the pty."""
        if self._loop is None:
            return
        self._loop.remove_reader(self._master)
        if self._writer_added:
            self._loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._loop = None

    def board(self, address: int) -> BoardModel:
        """The board at ``address``."""
        for board in self.boards:
            if board.address == address:
                return board
        raise KeyError(address)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while nobody holds the slave: nothing to read
        for frame in self.decoder.feed(data):
            self.frames_in += 1
            if self._pending:
                self.collisions += 1
            for board in self.boards:
                reply = board.handle(frame)
                if reply is None:
                    continue
                if self.turnaround > 0 and self._loop is not None:
                    self._pending += 1
                    self._loop.call_later(self.turnaround, self._send_later, reply)
                else:
                    self._send(reply)

    def _send_later(self, data: bytes) -> None:
        self._pending -= 1
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self._loop is None:
            return
        self._out += data
        self._flush()

    def _flush(self) -> None:
        while self._out:
            try:
                written = os.write(self._master, self._out)
            except BlockingIOError:
                break
            except OSError:
                self._out.clear()
                break
            del self._out[:written]
        if self._loop is None:
            return
        if self._out and not self._writer_added:
            self._loop.add_writer(self._master, self._flush)
            self._writer_added = True
        elif not self._out and self._writer_added:
            self._loop.remove_writer(self._master)
            self._writer_added = False
