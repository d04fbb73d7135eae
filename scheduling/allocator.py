"""The instant allocator: places each booking's persons as it arrives, never breaking a hard rule.

Greedy and incremental, so that a station gets its rooms in milliseconds: persons are placed in
placing order (``scheduling.placing_order``: those near their legal limit first, then weighted
shortest session first), each in the room and at the time that lets the session start earliest
(S1), ties going to the room with the fewest extras (S3: keep special rooms for those who need
them), then the tightest fit (``scheduling.room_fit``), then the least used one (S9). At booking
time a person who would wait may take the slot of a session placed before, when that pays
(``scheduling.insertion``). A suspect who must wait is also given a waiting room where no
co-suspect, no one of the other sex and no one of the other age group is held at the same time
(H2). A re-plan moves only the persons it concerns (S5); sessions that have started never move
(H10). When a session ends early, the later sessions that can now start earlier move up (S1),
and only those (S5).

The background improver (CP-SAT) starts from this plan and replaces it only with a better one.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from scheduling.insertion import INSERT_BUDGET_SECONDS, insert_earlier
from scheduling.model import (
    Assignment,
    AssignmentKind,
    Booking,
    Minute,
    Person,
    PersonKey,
    Placement,
    PlanRoom,
    Unassigned,
)
from scheduling.needs import CannotPlace, Need, may_wait_together, need_for
from scheduling.placing_order import placing_order
from scheduling.policy import Policy
from scheduling.repair import REPAIR_BUDGET_SECONDS, repair
from scheduling.room_fit import idle_around
from scheduling.rooms import RoomType

DISPLACE_ROOMS = 3
# A session moves up after an early end only if it gains this much: a station is not told of
# a one-minute change.
MOVE_UP_GAIN = 5


@dataclass(frozen=True, slots=True)
class _Held:
    start: Minute
    end: Minute
    key: PersonKey


class Planner:
    """The live plan of the centre; not thread-safe (the caller holds one lock around it)."""

    def __init__(self, rooms: Iterable[PlanRoom], policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.rooms: dict[str, PlanRoom] = {room.id: room for room in rooms}
        self.bookings: dict[str, Booking] = {}
        self.assignments: dict[PersonKey, list[Assignment]] = {}
        self.unassigned: dict[PersonKey, Unassigned] = {}
        self.fixed: set[PersonKey] = set()
        # room -> sorted (start, end including the cleaning buffer, person)
        self._busy: dict[str, list[tuple[Minute, Minute, PersonKey]]] = {}
        self._held: dict[str, list[_Held]] = {}
        self._booking_sessions: dict[str, list[tuple[Minute, Minute]]] = {}
        self._usage: dict[str, int] = {}
        # Bumped by every change: the improver applies its result only to the plan it read.
        self.version = 0
        # May a person placed move others: one the legal limit would leave unplaced, persons
        # with more time; one who would wait, at booking time, a session placed before?
        self.displace = True

    def copy(self) -> Planner:
        """An independent plan to try changes on (rooms, bookings and assignments are frozen,
        so only the containers are copied)."""
        other = Planner(self.rooms.values(), self.policy)
        other.bookings = dict(self.bookings)
        other.assignments = {key: list(items) for key, items in self.assignments.items()}
        other.unassigned = dict(self.unassigned)
        other.fixed = set(self.fixed)
        other._busy = {room: list(items) for room, items in self._busy.items()}
        other._held = {room: list(items) for room, items in self._held.items()}
        other._booking_sessions = {b: list(items) for b, items in self._booking_sessions.items()}
        other._usage = dict(self._usage)
        other.version = self.version
        other.displace = self.displace
        return other

    # --- queries ---------------------------------------------------------------------------

    def all_assignments(self) -> list[Assignment]:
        return [a for items in self.assignments.values() for a in items]

    def person(self, key: PersonKey) -> Person:
        return self.bookings[key[0]].person(key[1])

    def session_of(self, key: PersonKey) -> Assignment | None:
        for assignment in self.assignments.get(key, ()):
            if assignment.kind is AssignmentKind.SESSION:
                return assignment
        return None

    # --- changes ---------------------------------------------------------------------------

    def add_booking(self, booking: Booking, now: Minute | None = None) -> Placement:
        """Place a new booking's persons; whatever cannot be placed is left unassigned."""
        if booking.id in self.bookings:
            raise ValueError(f"booking {booking.id!r} is already planned")
        self.bookings[booking.id] = booking
        self.version += 1
        return self._place([(booking.id, p.id) for p in booking.persons], now, insert=True)

    def restore(
        self,
        booking: Booking,
        assignments: Iterable[Assignment],
        unassigned: Iterable[Unassigned] = (),
        fixed: Iterable[PersonKey] = (),
    ) -> None:
        """Take back a booking's plan as stored, without placing anything again."""
        self.bookings[booking.id] = booking
        grouped: dict[PersonKey, list[Assignment]] = {}
        for assignment in assignments:
            grouped.setdefault(assignment.key, []).append(assignment)
        for key, items in grouped.items():
            self._commit(key, sorted(items, key=lambda a: a.start))
        for item in unassigned:
            self.unassigned[(item.booking, item.person)] = item
        self.fixed.update(fixed)

    def place_unassigned(self, now: Minute | None = None) -> Placement:
        """Try again everyone left unassigned (rooms freed by a no-show or a cancellation)."""
        return self.replan(list(self.unassigned), now)

    def suggest_arrival(
        self, booking: Booking, now: Minute | None = None, step: int = 15, furthest: int = 240
    ) -> Minute | None:
        """The earliest later arrival, in ``step`` minutes up to ``furthest``, at which every
        person of ``booking`` could be placed (the legal clocks keep running meanwhile); None
        if there is none. The plan itself is not changed."""
        for shift in range(step, furthest + 1, step):
            trial = self.copy()
            trial.displace = False
            moved = replace(
                booking,
                expected_arrival=booking.expected_arrival + shift,
                persons=tuple(
                    replace(
                        p,
                        guardian_at=None
                        if p.guardian_at is None
                        else max(p.guardian_at, booking.expected_arrival + shift),
                    )
                    for p in booking.persons
                ),
            )
            if trial.add_booking(moved, now).complete:
                return moved.expected_arrival
        return None

    def remove_booking(self, booking_id: str) -> None:
        booking = self.bookings.pop(booking_id, None)
        if booking is None:
            return
        self.version += 1
        for person in booking.persons:
            key = (booking_id, person.id)
            self._release(key)
            self.unassigned.pop(key, None)
            self.fixed.discard(key)
        self._booking_sessions.pop(booking_id, None)

    def replace_booking(self, booking: Booking, now: Minute | None = None) -> Placement:
        """A changed booking: its persons are planned again, everyone else stays (S5).

        Persons whose session has started keep it (H10)."""
        old = self.bookings.get(booking.id)
        if old is None:
            return self.add_booking(booking, now)
        kept = {key for key in self.fixed if key[0] == booking.id}
        for person in old.persons:
            key = (booking.id, person.id)
            if key not in kept:
                self._release(key)
                self.unassigned.pop(key, None)
        self.bookings[booking.id] = booking
        self.version += 1
        return self._place(
            [(booking.id, p.id) for p in booking.persons if (booking.id, p.id) not in kept], now
        )

    def replan(self, keys: Iterable[PersonKey], now: Minute | None = None) -> Placement:
        """Plan these persons again (a late arrival, an overrun, a red clock)."""
        movable = [key for key in keys if key in self._known() and key not in self.fixed]
        for key in movable:
            self._release(key)
            self.unassigned.pop(key, None)
        return self._place(movable, now)

    def replan_first(self, key: PersonKey, now: Minute) -> Placement:
        """Plan this person ahead of everyone not yet started in rooms of their kind (a red
        custody clock): those sessions before theirs are placed again after them. Taken only if
        no one else is left unplaced by it; otherwise a plain re-plan of the person."""
        if key not in self._known() or key in self.fixed:
            return Placement()
        booking = self.bookings[key[0]]
        try:
            need = need_for(booking, booking.person(key[1]), self.policy)
        except CannotPlace:
            return self.replan([key], now)
        session = self.session_of(key)
        until = session.start if session is not None else 1 << 40
        blockers = [
            a.key
            for a in self.all_assignments()
            if a.kind is AssignmentKind.SESSION
            and a.key != key
            and a.key not in self.fixed
            and a.end > now
            and a.start < until
            and self.rooms[a.room].type is need.room_type
        ]
        trial = self.copy()
        for other in (key, *blockers):
            trial._release(other)
            trial.unassigned.pop(other, None)
        first = trial._place([key], now)
        rest = trial._place(blockers, now)
        if first.complete and rest.complete:
            self._adopt(trial)
            first.assignments.extend(rest.assignments)
            return first
        return self.replan([key], now)

    def _adopt(self, other: Planner) -> None:
        self.assignments, self.unassigned, self.fixed = (
            other.assignments,
            other.unassigned,
            other.fixed,
        )
        self._busy, self._held = other._busy, other._held
        self._booking_sessions, self._usage = other._booking_sessions, other._usage
        self.version = other.version + 1

    def set_room(self, room: PlanRoom, now: Minute | None = None) -> Placement:
        """A new or changed room; persons planned into it after ``now`` move if it is unusable."""
        self.rooms[room.id] = room
        self.version += 1
        if room.available:
            return Placement()
        affected = [
            a.key
            for a in self.all_assignments()
            if a.room == room.id and a.key not in self.fixed and (now is None or a.end > now)
        ]
        return self.replan(dict.fromkeys(affected), now)

    def rebook(self, key: PersonKey, assignments: list[Assignment]) -> None:
        """Give a person exactly these assignments (the improver's result, already checked)."""
        self._release(key)
        self.unassigned.pop(key, None)
        self._commit(key, assignments)

    def hold_back(self, key: PersonKey, unassigned: Unassigned) -> None:
        """Leave a placed person unassigned for this reason (a co-suspect group that waits
        together); a session that has started never moves (H10)."""
        if key in self.fixed:
            raise ValueError(f"{key}: the session has started")
        self._release(key)
        self.unassigned[key] = unassigned

    def holding_room(self, key: PersonKey, start: Minute, end: Minute) -> str | None:
        """A waiting room where the person may be held over ``[start, end)`` (H2), if any."""
        return self._holding_room(self.person(key), key, start, end)

    def start_session(
        self, key: PersonKey, at: Minute | None = None, now: Minute | None = None
    ) -> Placement:
        """H10: the session has started and will not move again. Started at ``at``, earlier or
        later than planned, it keeps its room and length from then; waiting planned past its
        start is cut short, and the sessions it now collides with are planned again."""
        session = self.session_of(key)
        if session is None:
            return Placement()
        self.fixed.add(key)
        self.version += 1
        if at is None or at == session.start:
            return Placement()
        waiting = [
            replace(a, end=min(a.end, at))
            for a in self.assignments[key]
            if a.kind is not AssignmentKind.SESSION and a.start < at
        ]
        self._release(key)
        moved = replace(session, start=at, end=at + session.end - session.start)
        self._commit(key, [*waiting, moved])
        return self._replan_collisions(key, moved, now)

    def end_session(self, key: PersonKey, at: Minute) -> Placement:
        """The session ended at ``at``: the room is free from then (plus its cleaning). Ended
        later than planned (before the overrun job extended it), what it ran into is planned
        again, as for an overrun."""
        session = self.session_of(key)
        if session is None:
            return Placement()
        placement = Placement()
        if at > session.end:
            placement = self.extend_session(key, at, at)
            session = self.session_of(key)
            assert session is not None  # extend_session keeps the session
        self._release(key)
        ended = Assignment(
            session.booking,
            session.person,
            session.kind,
            session.room,
            session.start,
            max(session.start + 1, at),
        )
        self._commit(key, [ended])
        self.fixed.add(key)
        return placement

    def move_up(self, room_id: str, now: Minute, skip: Collection[PersonKey] = ()) -> Placement:
        """A session in ``room_id`` ended before its planned end: the sessions that can now
        start earlier move up (S1). Candidates are the sessions in rooms of that room's type
        that have not started and start after ``now``, taken in order of their start, so that
        a slot one of them leaves can go to the next. Each is placed again as if new, and the
        new place is taken only if its session starts at least ``MOVE_UP_GAIN`` minutes
        earlier; otherwise it keeps exactly the place it had (S5). Persons in ``skip`` do not
        move. No session moves later, and started sessions never move (H10)."""
        room = self.rooms.get(room_id)
        if room is None:
            return Placement()
        candidates = sorted(
            (a.start, a.key)
            for a in self.all_assignments()
            if a.kind is AssignmentKind.SESSION
            and a.start > now
            and a.key not in self.fixed
            and a.key not in skip
            and self.rooms[a.room].type is room.type
        )
        placement = Placement()
        for _start, key in candidates:
            session = self.session_of(key)
            if session is None:  # pragma: no cover - candidates hold a session each
                continue
            booking = self.bookings[key[0]]
            try:
                need = need_for(booking, booking.person(key[1]), self.policy)
            except CannotPlace:
                continue
            if max(need.earliest_start, now) > session.start - MOVE_UP_GAIN:
                continue  # planned as soon as the person is ready: nothing to gain
            kept = self.assignments[key]
            self._release(key)
            try:
                placed = self._place_one(key, need, now)
            except CannotPlace:
                placed = []
            moved = next((a for a in placed if a.kind is AssignmentKind.SESSION), None)
            if moved is not None and moved.start <= session.start - MOVE_UP_GAIN:
                self._commit(key, placed)
                placement.assignments.extend(placed)
            else:
                self._commit(key, kept)
        return placement

    def extend_session(
        self,
        key: PersonKey,
        end: Minute,
        now: Minute | None = None,
    ) -> Placement:
        """A session overruns until ``end``: it keeps its room, and the sessions it now collides
        with (the room's next ones, the booking's beyond its officers) are planned again."""
        session = self.session_of(key)
        if session is None or end <= session.end:
            return Placement()
        kept = [a for a in self.assignments[key] if a.kind is not AssignmentKind.SESSION]
        self._release(key)
        longer = Assignment(
            session.booking, session.person, session.kind, session.room, session.start, end
        )
        self._commit(key, [*kept, longer])
        return self._replan_collisions(key, longer, now)

    def _replan_collisions(
        self, key: PersonKey, session: Assignment, now: Minute | None
    ) -> Placement:
        """Plan again what ``session`` (fixed where it is) now collides with: the room's other
        sessions, and the booking's beyond its officers."""
        end = session.end
        clean = self.policy.cleaning(self.rooms[session.room].type)
        cap = self.bookings[key[0]].officers // 2
        colliding: list[PersonKey] = []
        partners: list[PersonKey] = []
        for other in self.all_assignments():
            if (
                other.kind is not AssignmentKind.SESSION
                or other.key == key
                or other.key in self.fixed
            ):
                continue
            if other.room == session.room and (
                other.start < end + clean and session.start < other.end + clean
            ):
                colliding.append(other.key)
            elif other.booking == key[0] and other.start < end and session.start < other.end:
                partners.append(other.key)
        if len(partners) + 1 > cap:
            # The booking's officers may now be busy for longer than its other sessions allow.
            colliding.extend(partners)
        return self.replan(colliding, now)

    # --- placing ---------------------------------------------------------------------------

    def _known(self) -> set[PersonKey]:
        return {(b.id, p.id) for b in self.bookings.values() for p in b.persons}

    def _place(self, keys: list[PersonKey], now: Minute | None, insert: bool = False) -> Placement:
        """Place ``keys`` in order of urgency; at booking time (``insert``) a person who would
        wait may take the slot of one placed before (``scheduling.insertion``)."""
        placement = Placement()
        needs: list[tuple[PersonKey, Need]] = []
        for key in keys:
            booking = self.bookings[key[0]]
            try:
                needs.append((key, need_for(booking, booking.person(key[1]), self.policy)))
            except CannotPlace as exc:
                placement.unassigned.append(self._leave(key, exc))
        needs.sort(key=lambda item: self._urgency(item[0], item[1]))
        # One budget for the repairs of the whole call, so that the answer stays instant.
        repair_until = time.perf_counter() + REPAIR_BUDGET_SECONDS
        insert_until = time.perf_counter() + INSERT_BUDGET_SECONDS
        for key, need in needs:
            try:
                placed = self._place_one(key, need, now)
            except CannotPlace as exc:
                if self.displace and (
                    (exc.rule == "H5" and self._displace(key, need, now))
                    or repair(self, key, need, now, exc.rule, repair_until)
                ):
                    placement.assignments.extend(self.assignments[key])
                    continue
                placement.unassigned.append(self._leave(key, exc))
                continue
            self._commit(key, placed)
            if insert and self.displace:
                insert_earlier(self, key, need, now, insert_until)
            placement.assignments.extend(self.assignments[key])
        return placement

    def _displace(self, key: PersonKey, need: Need, now: Minute | None) -> bool:
        """H5 would leave this person unplaced: free one fitting room before their limit by
        moving sessions of persons with a later legal limit (or none), if every one of them
        can be placed again; up to ``DISPLACE_ROOMS`` rooms are tried, fewest moves first.
        The persons moved are told to their stations like any re-plan."""
        if need.latest_end is None:
            return False
        floor = need.earliest_start if now is None else max(need.earliest_start, now)
        in_window: dict[str, list[Assignment]] = {}
        for other in self.all_assignments():
            room = self.rooms[other.room]
            if (
                other.kind is AssignmentKind.SESSION
                and room.type is need.room_type
                and room.available
                and need.equipment <= room.equipment
                and other.end > floor
                and other.start < need.latest_end
            ):
                in_window.setdefault(other.room, []).append(other)
        movable: list[tuple[int, str, list[PersonKey]]] = []
        for room_id, sessions in in_window.items():
            if all(self._has_more_time(s.key, need.latest_end) for s in sessions):
                movable.append((len(sessions), room_id, [s.key for s in sessions]))
        for _count, _room, blockers in sorted(movable)[:DISPLACE_ROOMS]:
            trial = self.copy()
            trial.displace = False  # one level: the persons moved do not move others
            for moved in blockers:
                trial._release(moved)
            try:
                trial._commit(key, trial._place_one(key, need, now))
            except CannotPlace:
                continue
            if trial._place(blockers, now).complete:
                trial.unassigned.pop(key, None)
                self._adopt(trial)
                return True
        return False

    def _has_more_time(self, key: PersonKey, than: Minute) -> bool:
        if key in self.fixed:
            return False
        person = self.person(key)
        limit = self.policy.limit_minutes(person.legal_basis)
        return limit is None or person.brought_in_at + limit - self.policy.exit_minutes > than

    def _urgency(self, key: PersonKey, need: Need) -> tuple[float, ...]:
        """Placing order (``scheduling.placing_order``): persons near their legal limit first,
        then the weighted shortest session, then the booking's own order (the sort is stable)."""
        return placing_order(need, self.policy.weight(self.person(key)))

    @staticmethod
    def _preference(
        start: Minute, extras: int, idle: int, usage: int, room_id: str
    ) -> tuple[Any, ...]:
        """Among fitting rooms: the earliest start (S1), then the fewest extras (S3), then the
        tightest fit (``scheduling.room_fit``), then the least used room (S9)."""
        return (start, extras, idle, usage, room_id)

    def _leave(self, key: PersonKey, exc: CannotPlace) -> Unassigned:
        unassigned = Unassigned(key[0], key[1], exc.rule, exc.reason)
        self.unassigned[key] = unassigned
        return unassigned

    def _place_one(self, key: PersonKey, need: Need, now: Minute | None) -> list[Assignment]:
        earliest = need.earliest_start if now is None else max(need.earliest_start, now)
        candidates = [
            room
            for room in self.rooms.values()
            if room.type is need.room_type and room.available and need.equipment <= room.equipment
        ]
        if not candidates:
            raise CannotPlace(
                "H3" if not any(r.type is need.room_type for r in self.rooms.values()) else "H4",
                f"no {need.room_type} room in service with "
                f"{', '.join(sorted(need.equipment)) or 'the needed equipment'}",
            )
        cap = self.bookings[key[0]].officers // 2
        found: list[tuple[Minute, int, str]] = []
        for room in candidates:
            start = self._earliest_in_room(room, key[0], cap, earliest, need.duration)
            if need.latest_end is not None and start + need.duration > need.latest_end:
                continue
            found.append((start, len(room.equipment - need.equipment), room.id))
        if not found:
            raise CannotPlace("H5", "every fitting room is taken until past the legal limit")
        # The fit only breaks ties of start and extras: it is measured for those alone (it is
        # the costliest key, and most rooms differ in their start).
        ties: dict[tuple[Minute, int], int] = {}
        for start, extras, _room in found:
            ties[start, extras] = ties.get((start, extras), 0) + 1
        options: list[tuple[Minute, int, int, int, str]] = []
        for start, extras, room_id in found:
            fit = 0
            if ties[start, extras] > 1:
                busy_until = start + need.duration + self.policy.cleaning(need.room_type)
                fit = idle_around(self._busy.get(room_id, []), start, busy_until)
            options.append((start, extras, fit, self._usage.get(room_id, 0), room_id))
        options.sort(key=lambda option: self._preference(*option))
        person = self.person(key)
        # A later start only lengthens the wait: no waiting room refusing the shorter one takes
        # the longer one, so the rooms' later options need not be looked at again.
        refused_from: Minute | None = None
        for start, _extras, _idle, _usage, room_id in options:
            if refused_from is not None and start >= refused_from:
                continue
            session = Assignment(
                key[0], key[1], AssignmentKind.SESSION, room_id, start, start + need.duration
            )
            if not need.waits_in_holding or start <= need.holding_from:
                return [session]
            hold_from = need.holding_from if now is None else max(need.holding_from, now)
            if start <= hold_from:
                return [session]
            holding = self._holding_room(person, key, hold_from, start)
            if holding is not None:
                return [
                    Assignment(key[0], key[1], AssignmentKind.WAITING, holding, hold_from, start),
                    session,
                ]
            refused_from = start
        raise CannotPlace(
            "H2",
            "no waiting room keeps this person apart from co-suspects, the "
            "other sex and the other age group until the session",
        )

    def _earliest_in_room(
        self, room: PlanRoom, booking_id: str, cap: int, earliest: Minute, duration: int
    ) -> Minute:
        busy = self._busy.get(room.id, [])
        mine = self._booking_sessions.get(booking_id, [])
        occupied = duration + self.policy.cleaning(room.type)
        start = earliest
        while True:
            start = _first_gap(busy, start, occupied)
            if sum(1 for s, e in mine if s < start + duration and start < e) < cap:
                return start
            # Until one of the booking's own sessions ends, a later start overlaps at least
            # as many of them: the next start worth trying is the next such end.
            start = min(e for _s, e in mine if e > start)

    def _holding_room(
        self, person: Person, key: PersonKey, start: Minute, end: Minute
    ) -> str | None:
        """A waiting room that keeps H2 over ``[start, end)``; of those, the one already
        holding the most people the person may share with (best fit), so that the rooms left
        empty stay free for the other sex, the other age group and co-suspects."""
        booking = self.bookings[key[0]]
        best: tuple[int, str] | None = None
        for room in self.rooms.values():
            if room.type is not RoomType.WAITING or not room.available:
                continue
            overlapping = [
                held
                for held in self._held.get(room.id, [])
                if held.start < end and start < held.end
            ]
            if any(not self._may_share(person, booking, held.key) for held in overlapping):
                continue
            if _peak(overlapping, start, end) + 1 <= room.capacity:
                fit = (-len(overlapping), room.id)
                if best is None or fit < best:
                    best = fit
        return None if best is None else best[1]

    def _may_share(self, person: Person, booking: Booking, other_key: PersonKey) -> bool:
        other_booking = self.bookings[other_key[0]]
        return may_wait_together(person, booking, other_booking.person(other_key[1]), other_booking)

    # --- bookkeeping -----------------------------------------------------------------------

    def _commit(self, key: PersonKey, assignments: list[Assignment]) -> None:
        self.version += 1
        self.assignments[key] = assignments
        for assignment in assignments:
            room = self.rooms[assignment.room]
            if assignment.kind is AssignmentKind.WAITING:
                self._held.setdefault(room.id, []).append(
                    _Held(assignment.start, assignment.end, key)
                )
                continue
            entry = (assignment.start, assignment.end + self.policy.cleaning(room.type), key)
            bisect.insort(self._busy.setdefault(room.id, []), entry)
            self._booking_sessions.setdefault(key[0], []).append((assignment.start, assignment.end))
            self._usage[room.id] = self._usage.get(room.id, 0) + assignment.end - assignment.start

    def _release(self, key: PersonKey) -> None:
        self.version += 1
        for assignment in self.assignments.pop(key, []):
            if assignment.kind is AssignmentKind.WAITING:
                held = self._held.get(assignment.room, [])
                held[:] = [h for h in held if h.key != key]
                continue
            busy = self._busy.get(assignment.room, [])
            busy[:] = [b for b in busy if b[2] != key]
            sessions = self._booking_sessions.get(key[0], [])
            if (assignment.start, assignment.end) in sessions:
                sessions.remove((assignment.start, assignment.end))
            self._usage[assignment.room] = self._usage.get(assignment.room, 0) - (
                assignment.end - assignment.start
            )


def _first_gap(busy: list[tuple[Minute, Minute, PersonKey]], start: Minute, length: int) -> Minute:
    """The earliest moment from ``start`` at which ``length`` minutes are free of every busy
    interval (sorted by start; intervals of started sessions may overlap each other)."""
    for busy_start, busy_end, _key in busy:
        if busy_start >= start + length:
            break
        if busy_end > start:
            start = busy_end
    return start


def _peak(intervals: list[_Held], start: Minute, end: Minute) -> int:
    """Most intervals overlapping at one moment within ``[start, end)``."""
    points: list[tuple[Minute, int]] = []
    for held in intervals:
        points.append((max(held.start, start), 1))
        points.append((min(held.end, end), -1))
    points.sort()
    peak = current = 0
    for _moment, step in points:
        current += step
        peak = max(peak, current)
    return peak
