"""A smart file cabinet as the agent sees it: polling, the event cursor, readings, commands.

Each poll: buffered events first (GET_EVENTS after the cursor, hand each to the sink, save the
cursor, ACK_EVENTS), then slot status, then (less often) the RFID inventory. What reaches the
sink:

==============  =====  ====================================================================
kind            event  when
==============  =====  ====================================================================
slot_status     no     on change, and every ``status_interval``
inventory       no     on change of which EPC is in which slot, and every ``status_interval``
door_opened     yes    board event 1
door_closed     yes    board event 2
door_forced     yes    board event 3 (a door opened while locked)
tamper          yes    board event 4
tag_added       yes    board event 5 (``epc``)
tag_removed     yes    board event 6 (``epc``)
power_fail      yes    board event 7
board_event     yes    an event type this code does not know (``type``)
==============  =====  ====================================================================

Events are never lost: the cursor moves only past events the sink accepted, it is on disk
before the board is told to forget them, and a restart asks for events after it. A sink that
refuses an event (:class:`~devices.base.ReadingRefused`: the agent's disk is full) leaves the
cursor before it, so the board keeps the event and the next poll reads it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from devices.base import (
    CommandRejected,
    DeviceHealth,
    DeviceReading,
    ReadingRefused,
    ReadingSink,
)
from devices.cabinet.config import CabinetOptions
from devices.cabinet.cursor import EventCursor
from devices.cabinet.driver import BoardInfo, CabinetDriver
from devices.cabinet.errors import (
    BoardSilentError,
    BoardStatusError,
    CabinetProtocolError,
    TransportError,
)
from devices.cabinet.scp1 import (
    MAX_EVENTS_PER_REPLY,
    PULSE_MS_MAX,
    PULSE_MS_MIN,
    SEQ_MODULUS,
    BoardEvent,
    EventType,
    SlotState,
    TagRead,
    seq_after,
)

log = logging.getLogger(__name__)

EVENT_KINDS: Mapping[int, str] = {
    EventType.DOOR_OPENED: "door_opened",
    EventType.DOOR_CLOSED: "door_closed",
    EventType.FORCED_OPEN: "door_forced",
    EventType.TAMPER: "tamper",
    EventType.TAG_ADDED: "tag_added",
    EventType.TAG_REMOVED: "tag_removed",
    EventType.POWER_FAIL: "power_fail",
}
UNKNOWN_EVENT_KIND = "board_event"
# One poll reads at most this many GET_EVENTS batches before it turns to slot status, so a
# board that keeps producing events cannot starve the rest of the poll.
MAX_EVENT_BATCHES = 8
# A missing board is probed less and less often (it holds the shared bus for every silent
# attempt), up to this interval or the poll interval if that is longer.
MISSING_PROBE_MAX = 5.0
PROBE_JITTER = 0.1


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _after(events: Iterable[BoardEvent], cursor: int) -> list[BoardEvent]:
    """The events after ``cursor``, once each, oldest first (modulo 2**16)."""
    unique = {e.seq: e for e in events if seq_after(e.seq, cursor)}
    return sorted(unique.values(), key=lambda e: (e.seq - cursor) % SEQ_MODULUS)


class _HealthRelay:
    """Forwards the driver's health reports to the agent's, while the device runs."""

    def __init__(self) -> None:
        self.target: DeviceHealth | None = None

    def frame(self) -> None:
        if self.target is not None:
            self.target.frame()

    def error(self, kind: str) -> None:
        if self.target is not None:
            self.target.error(kind)

    def available(self, online: bool) -> None:
        if self.target is not None:
            self.target.available(online)


def slot_body(state: SlotState) -> dict[str, Any]:
    """One slot as it appears in a ``slot_status`` reading."""
    return {
        "slot": state.slot,
        "door_open": state.door_open,
        "unlocked": state.unlocked,
        "item_present": state.item_present,
        "fault": state.fault,
        "forced": state.forced,
    }


def tag_body(tag: TagRead) -> dict[str, Any]:
    """One tag as it appears in an ``inventory`` reading."""
    return {"slot": tag.slot, "epc": tag.epc.hex().upper(), "rssi": tag.rssi}


class CabinetDevice:
    """One cabinet board, run by the agent's device supervisor (a :class:`devices.base.Device`)."""

    def __init__(
        self,
        device_id: str,
        options: CabinetOptions,
        driver: CabinetDriver,
        cursor: EventCursor | None,
        *,
        now: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._id = device_id
        self.options = options
        self.driver = driver
        self._relay = _HealthRelay()
        driver.health = self._relay
        self._cursor_store = cursor
        self._now = now
        self._rng = rng or random.Random()
        self._cursor: int | None = None
        self._acked: int | None = None
        # Start with a check: the board may have restarted while the agent was down.
        self._renumber_check = True
        self._renumber_due = 0.0
        self.info: BoardInfo | None = None
        self.online: bool | None = None
        self._misses = 0
        self._last_status: list[dict[str, Any]] | None = None
        self._status_sent = 0.0
        self._last_inventory: list[tuple[int, str]] | None = None
        self._inventory_sent = 0.0
        self._inventory_due = 0.0
        self._wake = asyncio.Event()

    @property
    def id(self) -> str:
        """The device id (its ``[[devices]]`` id)."""
        return self._id

    # -- running --------------------------------------------------------------------------------

    async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
        """Poll the board until cancelled; a missing board or port is retried, not fatal."""
        self._relay.target = health
        self.online = None
        try:
            async with self.driver:
                while True:
                    await self.poll_once(sink)
                    await self._pause()
        finally:
            self._relay.target = None

    async def _pause(self) -> None:
        interval = self.options.poll_interval
        if self._misses:
            cap = max(interval, MISSING_PROBE_MAX)
            interval = min(interval * 2 ** (self._misses - 1), cap)
            interval *= 1 + self._rng.uniform(-PROBE_JITTER, PROBE_JITTER)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await self._wake.wait()
        self._wake.clear()

    def _set_online(self, online: bool, reason: object = None) -> None:
        self._misses = 0 if online else self._misses + 1
        if online == self.online:
            return
        if online and self.online is False:
            self._renumber_check = True  # it may have been rebooted meanwhile
        self.online = online
        if online:
            log.info(
                "cabinet %s: board %d on %s answers",
                self._id,
                self.driver.address,
                self.driver.port,
            )
        else:
            log.warning(
                "cabinet %s: board %d on %s is missing: %s",
                self._id,
                self.driver.address,
                self.driver.port,
                reason,
            )
        self._relay.available(online)

    async def poll_once(self, sink: ReadingSink) -> bool:
        """One poll; True when the board answered all of it."""
        try:
            if self.info is None:
                self.info = await self.driver.info()
                log.info(
                    "cabinet %s: %s board %d, %s, %d slots",
                    self._id,
                    self.info.protocol,
                    self.driver.address,
                    self.info.model,
                    self.info.slot_count,
                )
            await self._poll_events(sink)
            await self._poll_status(sink)
            if self.driver.has_rfid and time.monotonic() >= self._inventory_due:
                await self._poll_inventory(sink)
        except TransportError as exc:
            self._relay.error("transport")
            self._set_online(False, exc)
            return False
        except BoardSilentError as exc:
            self._set_online(False, exc)
            return False
        except (BoardStatusError, CabinetProtocolError) as exc:
            # The board answers, just not this time: still online, try again next poll.
            log.warning("cabinet %s: %s", self._id, exc)
            self._set_online(True)
            return False
        except ReadingRefused as exc:
            # The board still holds the event (the cursor stayed before it): read it again next
            # poll. The agent has already logged the full disk once.
            log.debug("cabinet %s: event refused (%s); reading it again next poll", self._id, exc)
            self._set_online(True)
            return False
        self._set_online(True)
        return True

    # -- events ---------------------------------------------------------------------------------

    async def _current_cursor(self) -> int | None:
        if self._cursor is None:
            if not self.driver.buffered_events:
                # The driver numbers the events it derives after whatever cursor it is given.
                self._cursor = 0
            elif (
                self._cursor_store is not None and (saved := self._cursor_store.load()) is not None
            ):
                self._cursor = saved
            else:
                self._cursor = await self._find_oldest_event()
            # Assume acknowledged: acking a cursor read from disk could make a board forget
            # events if that file were stale or from another board.
            self._acked = self._cursor
        return self._cursor

    async def _find_oldest_event(self) -> int | None:
        """The cursor just before the oldest buffered event, for a board never polled before.

        Asking "after 0" would miss events numbered 32768 and up, which are "before" 0 modulo
        2**16. Asking after 0 and after 32768 sees both halves; the oldest event is the one
        every other follows within half the sequence space. None while the board holds none.
        """
        seen = {
            e.seq for since in (0, SEQ_MODULUS // 2) for e in await self.driver.events_since(since)
        }
        for start in sorted(seen):
            if all((seq - start) % SEQ_MODULUS < SEQ_MODULUS // 2 for seq in seen):
                return (start - 1) % SEQ_MODULUS
        return (min(seen) - 1) % SEQ_MODULUS if seen else None

    async def _poll_events(self, sink: ReadingSink) -> None:
        cursor = await self._current_cursor()
        if cursor is None:
            return
        if self.driver.buffered_events and self._acked != cursor:
            # A previous acknowledgement did not get through: repeat it.
            await self.driver.ack_events(cursor)
            self._acked = cursor
        if self.driver.buffered_events and (
            self._renumber_check or time.monotonic() >= self._renumber_due
        ):
            # Before reading after the cursor: acknowledging newer events would make the board
            # forget renumbered ones behind the cursor.
            cursor = await self._check_renumbered(cursor)
        for _ in range(MAX_EVENT_BATCHES):
            events = await self.driver.events_since(cursor)
            fresh = _after(events, cursor)
            if len(fresh) != len(events):
                self._relay.error("event_stale")
            if not fresh:
                break
            if fresh[0].seq != (cursor + 1) % SEQ_MODULUS:
                # The board overwrote events it could not keep: tell, then carry on.
                log.warning(
                    "cabinet %s: board events %d..%d are missing",
                    self._id,
                    (cursor + 1) % SEQ_MODULUS,
                    (fresh[0].seq - 1) % SEQ_MODULUS,
                )
                self._relay.error("event_gap")
            cursor = self._deliver(sink, fresh)
            if self.driver.buffered_events:
                await self.driver.ack_events(cursor)
                self._acked = cursor
            if len(events) < MAX_EVENTS_PER_REPLY:
                break

    async def _check_renumbered(self, cursor: int) -> int:
        """Catch a board that started numbering its events again (a reboot, a swap).

        Acknowledging the cursor made the board forget every event in the half of the sequence
        space behind it, so any event it now holds there is new, with a number the cursor has
        already passed: without this check it would wait there unseen until the numbers came
        round. Checked at start, when a missing board answers again, after a power failure and
        every ``status_interval``.
        """
        self._renumber_check = False
        self._renumber_due = time.monotonic() + self.options.status_interval
        behind_from = (cursor + SEQ_MODULUS // 2) % SEQ_MODULUS
        behind = _after(await self.driver.events_since(behind_from), behind_from)
        if not behind:
            return cursor
        restart = (behind[0].seq - 1) % SEQ_MODULUS
        log.warning(
            "cabinet %s: board %d numbers its events again (holds %d behind the "
            "cursor %d); reading them from %d",
            self._id,
            self.driver.address,
            len(behind),
            cursor,
            behind[0].seq,
        )
        self._relay.error("event_renumbered")
        # Not saved until the sink has the events: a crash now repeats the check, loses nothing.
        self._cursor = self._acked = restart
        return restart

    def _deliver(self, sink: ReadingSink, events: list[BoardEvent]) -> int:
        """Hand events to the sink in order; the cursor follows the last one it accepted.

        Synchronous on purpose: no await between the sink accepting an event and the cursor
        file saying so, so a cancellation cannot make a restart deliver it twice.
        """
        assert self._cursor is not None
        accepted = self._cursor
        try:
            for event in events:
                sink(self._event_reading(event))
                accepted = event.seq
                if event.type in (EventType.TAG_ADDED, EventType.TAG_REMOVED):
                    self._inventory_due = 0.0
                elif event.type == EventType.POWER_FAIL:
                    self._renumber_check = True
        finally:
            if accepted != self._cursor:
                self._cursor = accepted
                if self._cursor_store is not None:
                    try:
                        self._cursor_store.save(accepted)
                    except OSError as exc:
                        # A full disk: the events are in the outbox, and the cursor in memory
                        # goes on; the next save writes it. A restart before then reads from the
                        # older cursor, which repeats at most what the board still holds.
                        log.debug("cabinet %s: cursor not saved: %s", self._id, exc)
        return accepted

    def _event_reading(self, event: BoardEvent) -> DeviceReading:
        kind = EVENT_KINDS.get(event.type, UNKNOWN_EVENT_KIND)
        body: dict[str, Any] = {
            "board": self.driver.address,
            "seq": event.seq,
            "slot": event.slot,
            "board_time": datetime.fromtimestamp(event.ts, UTC).isoformat(),
        }
        if kind == UNKNOWN_EVENT_KIND:
            body["type"] = event.type
        if event.type in (EventType.TAG_ADDED, EventType.TAG_REMOVED):
            body["epc"] = event.data.hex().upper()
        elif event.data:
            body["data"] = event.data.hex().upper()
        return DeviceReading(self._id, kind, self._now(), body, event=True)

    # -- state ----------------------------------------------------------------------------------

    async def _poll_status(self, sink: ReadingSink) -> None:
        slots = [slot_body(state) for state in await self.driver.slot_status()]
        now = time.monotonic()
        if slots == self._last_status and now - self._status_sent < self.options.status_interval:
            return
        sink(
            DeviceReading(
                self._id, "slot_status", self._now(), {"board": self.driver.address, "slots": slots}
            )
        )
        self._last_status = slots
        self._status_sent = now

    async def _poll_inventory(self, sink: ReadingSink) -> None:
        tags = sorted(await self.driver.inventory(), key=lambda t: (t.slot, t.epc))
        now = time.monotonic()
        self._inventory_due = now + self.options.inventory_interval
        placement = [(tag.slot, tag.epc.hex().upper()) for tag in tags]
        if (
            placement == self._last_inventory
            and now - self._inventory_sent < self.options.status_interval
        ):
            return
        sink(
            DeviceReading(
                self._id,
                "inventory",
                self._now(),
                {"board": self.driver.address, "tags": [tag_body(t) for t in tags]},
            )
        )
        self._last_inventory = placement
        self._inventory_sent = now

    # -- commands -------------------------------------------------------------------------------

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Carry out ``unlock``: ``{"slot": n, "pulse_ms": ms}`` (pulse optional).

        Returns ``{"slot": n, "unlocked": true}``. Executed once per call; a retry inside the
        driver never pulses the lock twice. Other keys (the agent adds ``device``) are ignored.
        """
        if name != "unlock":
            raise CommandRejected(f"cabinet {self._id} has no command {name!r}")
        slot = args.get("slot")
        pulse_ms = args.get("pulse_ms", self.options.pulse_ms)
        slots = self.options.slots or (self.info.slot_count if self.info else None)
        if (
            not isinstance(slot, int)
            or isinstance(slot, bool)
            or slot < 1
            or (slots is not None and slot > slots)
            or slot > 254
        ):
            raise CommandRejected(
                f"no slot {slot!r} in cabinet {self._id}" + (f" (1..{slots})" if slots else "")
            )
        if (
            not isinstance(pulse_ms, int)
            or isinstance(pulse_ms, bool)
            or not PULSE_MS_MIN <= pulse_ms <= PULSE_MS_MAX
        ):
            raise CommandRejected(
                f"pulse_ms {pulse_ms!r} is outside {PULSE_MS_MIN}..{PULSE_MS_MAX}"
            )
        try:
            # Joins the port the polling loop holds, or opens it if the device is not running.
            async with self.driver:
                await self.driver.unlock(slot, pulse_ms)
        except BoardStatusError as exc:
            raise CommandRejected(
                f"cabinet {self._id} refused to unlock slot {slot}: {exc.status.label}"
            ) from exc
        except BoardSilentError as exc:
            raise CommandRejected(
                f"cabinet {self._id} did not answer; slot {slot} may or may not be unlocked"
            ) from exc
        except TransportError as exc:
            raise CommandRejected(f"cabinet {self._id} is not reachable: {exc}") from exc
        except CabinetProtocolError as exc:
            raise CommandRejected(f"cabinet {self._id} gave a malformed answer: {exc}") from exc
        log.info("cabinet %s: slot %d unlocked for %d ms", self._id, slot, pulse_ms)
        self._wake.set()
        return {"slot": slot, "unlocked": True}
