"""The background improver: OR-Tools CP-SAT over every booked day (or a rolling window), one
room kind at a time.

It first re-dispatches the sessions that have not started as the offline dispatchers would
(``scheduling.redispatch``: cheap, and it sees every booking at once), then CP-SAT starts from
the better of that and the instant allocator's plan (completed into a full solution, the
solver's starting point); it may move the sessions that have not started (H10), and pays
for every move (S5), so a plan only changes where the waiting it saves (S1, weighted) and the
slack it wins before legal limits (S2) are worth more than the change. The result is used only
if it is strictly better than the plan it started from; the caller then runs the independent
checker over it before it replaces the live plan.

Held suspects get their waiting rooms in the model (``scheduling.waiting_model``). Should that
find nothing in time, a held suspect may only move earlier: their waiting interval only
shrinks, stays inside the waiting room already chosen, and H2 holds by construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduling import apart_rooms, limit_slack, same_room, spare_rooms, station_fairness
from scheduling.allocator import Planner
from scheduling.cp_anytime import solve_from_plan
from scheduling.model import Assignment, AssignmentKind, Minute, PersonKey, PlanRoom
from scheduling.needs import CannotPlace, Need, need_for
from scheduling.place_more import place_more
from scheduling.put_back import fewer_moves
from scheduling.redispatch import redispatch
from scheduling.rooms import RoomType
from scheduling.waiting_model import HeldPerson, add_waiting_rooms

CHANGE_PENALTY = 10  # weighted minutes of waiting a move must save to be worth it (S5)
WEIGHT_SCALE = 10  # CP-SAT wants integers: weights to one decimal
DAY_MINUTES = 24 * 60
# Of the budget, what the re-dispatch may start within; it usually takes far less.
REDISPATCH_SHARE = 0.5
# Of the budget, what putting back the re-dispatch's small moves may take (far less, usually).
PUT_BACK_SHARE = 0.1
# The budget is the whole call: a CP-SAT round whose model leaves less than this to solve in
# is not solved, and a model's build checks the deadline every so many persons.
MIN_SOLVE_SECONDS = 0.1
BUILD_CHECK_EVERY = 32
# Of the budget, until when the unplaced persons are tried again, before the re-dispatch (on a
# day where everyone is placed there is nothing to try, and the re-dispatch has its share).
PLACE_MORE_SHARE = 0.4


@dataclass(frozen=True, slots=True)
class Improvement:
    changes: dict[PersonKey, list[Assignment]]
    cost_before: int
    cost_after: int
    seconds: float
    groups: int


@dataclass(frozen=True, slots=True)
class _Movable:
    key: PersonKey
    need: Need
    current: Assignment | None  # None: unassigned now, placed if the solver can
    weight: int
    unplaced_cost: int  # waiting until the window's end, weighted


def charged_waiting(
    planner: Planner, horizon_end: Minute, keys: Iterable[PersonKey] | None = None
) -> float:
    """S1 as the improver counts it: weighted minutes from ready to session start; a person
    left unplaced waits until ``horizon_end`` (escalated, questioned outside the plan)."""
    total = 0.0
    if keys is None:
        keys = [(b.id, p.id) for b in planner.bookings.values() for p in b.persons]
    for key in keys:
        booking = planner.bookings.get(key[0])
        if booking is None:
            continue
        person = booking.person(key[1])
        try:
            need = need_for(booking, person, planner.policy)
        except CannotPlace:
            continue
        session = planner.session_of(key)
        until = horizon_end if session is None else session.start
        total += planner.policy.weight(person) * max(0, until - need.earliest_start)
    return total


def improve(
    planner: Planner,
    now: Minute,
    budget_seconds: float,
    window_minutes: int | None = None,
    redispatch_first: bool = True,
) -> Improvement | None:
    """Better sessions for the window ``[now, now + window_minutes)``, or None if none found;
    without a window (None or 0), over every booked day.

    ``planner`` is not changed; apply ``changes`` (each person's new assignments) under the
    same lock that guarded the copy it was computed from."""
    started = time.monotonic()
    work = planner.copy()
    window_end = (
        now + window_minutes if window_minutes else _end_of_bookings(work, now) + DAY_MINUTES
    )
    movable = _movable(work, now, window_end)
    cost_before = _cost(work, movable, now, window_end)
    changes: dict[PersonKey, list[Assignment]] = {}
    _place_more(work, now, window_end, started + budget_seconds * PLACE_MORE_SHARE, changes)
    dispatched = (
        None
        if not redispatch_first
        else redispatch(
            work,
            now,
            window_end,
            lambda plan: _cost(plan, movable, now, window_end),
            # Not charged per move as CP-SAT's moves are (S5): a re-dispatch moves most of the
            # day a little, and its gain is in the sum.
            0,
            started + budget_seconds * REDISPATCH_SHARE,
        )
    )
    if dispatched is not None:
        # Its moves were not charged: those that gain their person little go back (S5).
        kept = fewer_moves(
            work,
            dispatched.changes,
            lambda plan: _cost(plan, movable, now, window_end),
            _own_cost(movable),
            CHANGE_PENALTY * WEIGHT_SCALE,
            now,
            time.monotonic() + budget_seconds * PUT_BACK_SHARE,
        )
        for key, assignments in kept.items():
            work.rebook(key, assignments)
            changes[key] = assignments
    # CP-SAT continues from the better plan: its starting point and what a move is.
    groups: dict[RoomType, list[_Movable]] = {}
    for item in _movable(work, now, window_end):
        groups.setdefault(item.need.room_type, []).append(item)
    solved = 0
    for room_type in sorted(groups):
        remaining = budget_seconds - (time.monotonic() - started)
        if remaining <= MIN_SOLVE_SECONDS:
            break
        left = sum(len(groups[t]) for t in sorted(groups)[solved:])
        share = remaining * len(groups[room_type]) / max(1, left)
        solved += 1
        group_end = time.monotonic() + share
        result = _solve_with_waiting_rooms(
            work, room_type, groups[room_type], now, window_end, group_end
        )
        if not result:
            continue
        for key, assignments in result.items():
            work.rebook(key, assignments)
            changes[key] = assignments
    if not changes:
        return None
    cost_after = _cost(work, movable, now, window_end)
    if cost_after >= cost_before:
        return None
    return Improvement(changes, cost_before, cost_after, time.monotonic() - started, solved)


def _place_more(
    work: Planner,
    now: Minute,
    window_end: Minute,
    deadline: float,
    changes: dict[PersonKey, list[Assignment]],
) -> None:
    """The unplaced persons tried again with a larger repair budget
    (``scheduling.place_more``); what it places is applied to ``work`` and ``changes``."""
    placed = place_more(work, now, window_end, deadline)
    if placed is None:
        return
    for key, assignments in placed.changes.items():
        work.rebook(key, assignments)
        changes[key] = assignments


def judged_cost(planner: Planner, now: Minute, window_minutes: int | None = None) -> int:
    """What :func:`improve` judges a plan by over the same window (S1, S2, S4, S6, S7, S8, in
    tenths of a weighted minute): its result is used only if this goes down."""
    window_end = (
        now + window_minutes if window_minutes else _end_of_bookings(planner, now) + DAY_MINUTES
    )
    return _cost(planner, _movable(planner, now, window_end), now, window_end)


def _end_of_bookings(planner: Planner, now: Minute) -> Minute:
    """The latest moment any booked person is ready or planned to start."""
    latest = now
    for booking in planner.bookings.values():
        latest = max(latest, booking.expected_arrival)
    for assignment in planner.all_assignments():
        latest = max(latest, assignment.start)
    return latest


def apply(planner: Planner, improvement: Improvement) -> None:
    for key, assignments in improvement.changes.items():
        planner.rebook(key, assignments)


def _cost(planner: Planner, movable: list[_Movable], now: Minute, window_end: Minute) -> int:
    """The improver's objective over the whole plan: what it judges a result by."""
    total = sum(_person_cost(planner, item) for item in movable)
    return total + WEIGHT_SCALE * _other_soft_rules(planner, movable, now, window_end)


def _person_cost(planner: Planner, item: _Movable) -> int:
    """One person's own part of the objective: their waiting (S1) and slack (S2)."""
    session = planner.session_of(item.key)
    if session is None:
        return item.unplaced_cost
    waited = item.weight * max(0, session.start - item.need.earliest_start)
    short = limit_slack.shortfall(item.need, session.start)
    return waited + limit_slack.SLACK_WEIGHT * WEIGHT_SCALE * short


def _own_cost(movable: list[_Movable]) -> Callable[[Planner, PersonKey], int]:
    by_key = {item.key: item for item in movable}

    def own(planner: Planner, key: PersonKey) -> int:
        item = by_key.get(key)
        return 0 if item is None else _person_cost(planner, item)

    return own


def _other_soft_rules(
    planner: Planner, movable: list[_Movable], now: Minute, window_end: Minute
) -> int:
    """S4, S6, S7 and S8 in weighted minutes, counted as the model counts them."""
    policy = planner.policy
    counted = {item.key for item in movable}
    sessions = [a for a in planner.all_assignments() if a.kind is AssignmentKind.SESSION]
    total = policy.weight_apart * apart_rooms.violations(
        planner.bookings, apart_rooms.adjacency(planner.rooms), sessions, counted
    )
    if policy.weight_spare_room:
        for room_type in sorted(spare_rooms.MAIN_TYPES):
            rooms = [r for r in planner.rooms.values() if r.type is room_type and r.available]
            clean = policy.cleaning(room_type)
            in_rooms = {r.id for r in rooms}
            occupied = [(a.start, a.end + clean) for a in sessions if a.room in in_rooms]
            total += policy.weight_spare_room * spare_rooms.full_blocks(
                occupied, len(rooms), now, window_end
            )
    waits: dict[RoomType, dict[str, list[int]]] = {}
    for item in movable:
        session = planner.session_of(item.key)
        if item.current is None or session is None:
            continue
        station = planner.bookings[item.key[0]].station
        waits.setdefault(item.need.room_type, {}).setdefault(station, []).append(
            max(0, session.start - item.need.earliest_start)
        )
    total += policy.weight_station_fairness * sum(
        station_fairness.worst_mean(by_station) for by_station in waits.values()
    )
    pairs = same_room.follow_ups(planner.bookings, [*planner.assignments, *planner.unassigned])
    room_of = {a.key: a.room for a in sessions}
    total += policy.weight_same_room * same_room.moved_rooms(pairs, room_of, counted)
    return total


def _movable(planner: Planner, now: Minute, window_end: Minute) -> list[_Movable]:
    found = []
    for key, booking in (
        (k, planner.bookings[k[0]]) for k in [*planner.assignments, *planner.unassigned]
    ):
        if key in planner.fixed:
            continue
        person = booking.person(key[1])
        session = planner.session_of(key)
        if session is not None and not now <= session.start < window_end:
            continue
        try:
            need = need_for(booking, person, planner.policy)
        except CannotPlace:
            continue
        if session is None and need.earliest_start >= window_end:
            continue
        weight = int(planner.policy.weight(person) * WEIGHT_SCALE)
        found.append(
            _Movable(key, need, session, weight, weight * max(0, window_end - need.earliest_start))
        )
    return found


def _solve_with_waiting_rooms(
    planner: Planner,
    room_type: RoomType,
    items: list[_Movable],
    now: Minute,
    window_end: Minute,
    deadline: float,
) -> dict[PersonKey, list[Assignment]] | None:
    """Solve with held persons free to move either way and find their waiting rooms again;
    whoever then has none may only move earlier in the next round (which keeps their current
    waiting room valid). The last round holds everyone that way, and cannot fail on H2."""
    modeled = _solve_group(
        planner,
        room_type,
        items,
        (now, window_end),
        (deadline, 0.8),
        set(),
        model_waiting=True,
    )
    if modeled is not None:
        return modeled
    monotone: set[PersonKey] = set()
    for _round in range(4):
        if deadline - time.monotonic() < 2 * MIN_SOLVE_SECONDS:
            break
        result = _solve_group(
            planner, room_type, items, (now, window_end), (deadline, 0.5), monotone
        )
        if result is None:
            break
        held = _rehold(planner, result, now)
        if isinstance(held, dict):
            return held
        monotone.update(held)
    everyone = {item.key for item in items}
    return _solve_group(planner, room_type, items, (now, window_end), (deadline, 1.0), everyone)


def _rehold(
    planner: Planner, result: dict[PersonKey, list[Assignment]], now: Minute
) -> dict[PersonKey, list[Assignment]] | set[PersonKey]:
    """Waiting rooms for the moved persons, by the allocator's own rule; or the persons left
    without one."""
    trial = planner.copy()
    for key in result:
        trial.rebook(key, [])
    final: dict[PersonKey, list[Assignment]] = {}
    homeless: set[PersonKey] = set()
    ordered = sorted(result.items(), key=lambda item: item[1][-1].start)
    for key, assignments in ordered:
        session = assignments[-1]
        booking = trial.bookings[key[0]]
        person = booking.person(key[1])
        need = need_for(booking, person, trial.policy)
        hold_from = max(need.holding_from, now)
        items = [session]
        if need.waits_in_holding and session.start > hold_from:
            room = trial.holding_room(key, hold_from, session.start)
            if room is None:
                homeless.add(key)
                continue
            items = [
                Assignment(key[0], key[1], AssignmentKind.WAITING, room, hold_from, session.start),
                session,
            ]
        trial.rebook(key, items)
        final[key] = items
    return homeless or final


def _solve_group(
    planner: Planner,
    room_type: RoomType,
    items: list[_Movable],
    window: tuple[Minute, Minute],
    time_box: tuple[float, float],
    monotone: set[PersonKey],
    model_waiting: bool = False,
) -> dict[PersonKey, list[Assignment]] | None:
    """One CP-SAT round for ``items``; ``time_box`` is (deadline, share): the round gives up
    once building its model reaches the deadline (``time.monotonic()``), and then solves for
    ``share`` of what is left (None when too little is)."""
    deadline, share = time_box
    now = window[0]
    rooms = [r for r in planner.rooms.values() if r.type is room_type and r.available]
    if not rooms:
        return None
    moving = {item.key for item in items}
    clean = planner.policy.cleaning(room_type)
    model = cp_model.CpModel()
    horizon = max([now + 3 * 24 * 60, *(a.end + clean for a in planner.all_assignments())]) - now
    per_room: dict[str, list[cp_model.IntervalVar]] = {room.id: [] for room in rooms}
    per_booking: dict[str, list[cp_model.IntervalVar]] = {}
    for assignment in planner.all_assignments():
        if assignment.kind is not AssignmentKind.SESSION or assignment.key in moving:
            continue
        offset = assignment.start - now
        if assignment.room in per_room:
            per_room[assignment.room].append(
                model.new_fixed_size_interval_var(
                    offset, assignment.end - assignment.start + clean, "fixed"
                )
            )
        per_booking.setdefault(assignment.booking, []).append(
            model.new_fixed_size_interval_var(offset, assignment.end - assignment.start, "fixed")
        )
    objective = []
    chosen: dict[PersonKey, tuple[cp_model.IntVar, dict[str, cp_model.IntVar]]] = {}
    placed_vars: dict[PersonKey, cp_model.IntVar] = {}
    latest: dict[PersonKey, Minute] = {}
    for index, item in enumerate(items):
        # A day's model takes a second or more to build at 650 persons: it counts in the
        # budget, so a build that runs out of time ends here rather than after it.
        if index % BUILD_CHECK_EVERY == 0 and time.monotonic() >= deadline:
            return None
        need = item.need
        low = max(need.earliest_start, now) - now
        high = horizon - need.duration
        if need.latest_end is not None:
            high = min(high, need.latest_end - need.duration - now)
        if (
            need.waits_in_holding
            and not model_waiting
            and (item.key in monotone or item.current is None)
        ):
            # Held persons only move earlier (module doc); an unplaced one only where no
            # waiting is needed at all.
            high = min(
                high,
                (item.current.start if item.current is not None else max(need.holding_from, now))
                - now,
            )
        fitting = [r for r in rooms if need.equipment <= r.equipment]
        if high < low or not fitting:
            if item.current is None:
                continue
            return None  # the current plan itself does not fit the model: leave it alone
        start = model.new_int_var(low, high, f"start{item.key}")
        latest[item.key] = high + now
        literals: dict[str, cp_model.IntVar] = {}
        for room in fitting:
            literal = model.new_bool_var(f"in{room.id}{item.key}")
            literals[room.id] = literal
            per_room[room.id].append(
                model.new_optional_fixed_size_interval_var(
                    start, need.duration + clean, literal, f"room{item.key}"
                )
            )
            per_booking.setdefault(item.key[0], []).append(
                model.new_optional_fixed_size_interval_var(
                    start, need.duration, literal, f"officers{item.key}"
                )
            )
        placed = model.new_bool_var(f"placed{item.key}")
        model.add(sum(literals.values()) == placed)
        if item.current is not None:
            model.add(placed == 1)
            model.add_hint(start, item.current.start - now)
            for room_id, literal in literals.items():
                model.add_hint(literal, int(room_id == item.current.room))
            moved = model.new_bool_var(f"moved{item.key}")
            same_room = literals.get(item.current.room)
            if same_room is None:
                model.add(moved == 1)
            else:
                model.add(start == item.current.start - now).only_enforce_if(moved.Not())
                model.add(same_room == 1).only_enforce_if(moved.Not())
            objective.append(CHANGE_PENALTY * WEIGHT_SCALE * moved)
        else:
            objective.append(item.unplaced_cost * (1 - placed))
        objective.append(item.weight * (start - (need.earliest_start - now)))
        short = limit_slack.shortfall_var(model, need, start, placed, now)
        if short is not None:
            objective.append(limit_slack.SLACK_WEIGHT * WEIGHT_SCALE * short)
        chosen[item.key] = (start, literals)
        placed_vars[item.key] = placed
    objective.extend(
        _other_soft_terms(
            model,
            planner,
            [item for item in items if item.key in chosen],
            chosen,
            placed_vars,
            rooms,
            [interval for intervals in per_room.values() for interval in intervals],
            window,
            horizon,
        )
    )
    waiting_rooms: dict[PersonKey, dict[str, cp_model.IntVar]] = {}
    if model_waiting:
        modeled = add_waiting_rooms(
            model,
            planner,
            _held(planner, items, chosen, latest, now),
            [
                a
                for a in planner.all_assignments()
                if a.kind is AssignmentKind.WAITING and a.key not in moving
            ],
            now,
            deadline,
        )
        if modeled is None:
            return None
        waiting_rooms = modeled
    for intervals in per_room.values():
        if len(intervals) > 1:
            model.add_no_overlap(intervals)
    for booking_id, intervals in per_booking.items():
        booking = planner.bookings.get(booking_id)
        if booking is not None and len(intervals) > 1:
            model.add_cumulative(intervals, [1] * len(intervals), booking.officers // 2)
    model.minimize(sum(objective))
    budget = (deadline - time.monotonic()) * share
    if budget < MIN_SOLVE_SECONDS:
        return None
    outcome = solve_from_plan(model, budget)
    if outcome is None:
        return None
    if not outcome.better:
        return {}  # the plan it started from is as good as anything found: nothing moves
    solver = outcome.solver
    result: dict[PersonKey, list[Assignment]] = {}
    by_key = {item.key: item for item in items}
    for key, (start_var, literals) in chosen.items():
        picked = next((r for r, lit in literals.items() if solver.boolean_value(lit)), None)
        if picked is None:
            continue
        begin = solver.value(start_var) + now
        item = by_key[key]
        session = Assignment(
            key[0], key[1], AssignmentKind.SESSION, picked, begin, begin + item.need.duration
        )
        if model_waiting:
            holding = next(
                (w for w, lit in waiting_rooms.get(key, {}).items() if solver.boolean_value(lit)),
                None,
            )
            hold_from = max(item.need.holding_from, now)
            planned = (
                [session]
                if holding is None
                else [
                    Assignment(key[0], key[1], AssignmentKind.WAITING, holding, hold_from, begin),
                    session,
                ]
            )
        else:
            kept = [
                a
                for a in planner.assignments.get(key, [])
                if a.kind is AssignmentKind.WAITING and a.start < begin
            ]
            planned = [
                *(Assignment(a.booking, a.person, a.kind, a.room, a.start, begin) for a in kept),
                session,
            ]
        # Only what changed goes back: an unchanged person is not a move (S5).
        if planned != planner.assignments.get(key):
            result[key] = planned
    return result


def _other_soft_terms(
    model: cp_model.CpModel,
    planner: Planner,
    items: list[_Movable],
    chosen: dict[PersonKey, tuple[cp_model.IntVar, dict[str, cp_model.IntVar]]],
    placed: dict[PersonKey, cp_model.IntVar],
    rooms: list[PlanRoom],
    occupied: list[cp_model.IntervalVar],
    window: tuple[Minute, Minute],
    horizon: int,
) -> list[cp_model.LinearExpr]:
    """S4, S6, S7 and S8 for one room kind, in the objective's units (see ``_other_soft_rules``
    for the same figures counted on a plan)."""
    policy = planner.policy
    now, window_end = window
    terms: list[cp_model.LinearExpr] = []
    if policy.weight_apart:
        placed_sessions = {
            item.key: apart_rooms.Placed(
                chosen[item.key][0], item.need.duration, chosen[item.key][1]
            )
            for item in items
        }
        staying = [
            a
            for a in planner.all_assignments()
            if a.kind is AssignmentKind.SESSION and a.key not in chosen
        ]
        for penalty in apart_rooms.add_terms(
            model,
            planner.bookings,
            apart_rooms.adjacency(planner.rooms),
            placed_sessions,
            staying,
            now,
        ):
            terms.append(policy.weight_apart * WEIGHT_SCALE * penalty)
    if policy.weight_spare_room and rooms and rooms[0].type in spare_rooms.MAIN_TYPES:
        for spare in spare_rooms.add_terms(model, occupied, len(rooms), now, window_end):
            terms.append(policy.weight_spare_room * WEIGHT_SCALE * (1 - spare))
    if policy.weight_station_fairness:
        waits: dict[str, list[cp_model.LinearExprT]] = {}
        for item in items:
            if item.current is not None:
                station = planner.bookings[item.key[0]].station
                waits.setdefault(station, []).append(
                    chosen[item.key][0] + (now - item.need.earliest_start)
                )
        bound = horizon + max((now - item.need.earliest_start for item in items), default=0)
        worst = station_fairness.add_term(model, waits, bound)
        if worst is not None:
            terms.append(policy.weight_station_fairness * WEIGHT_SCALE * worst)
    if policy.weight_same_room:
        moving = {item.key for item in items}
        keys = [*planner.assignments, *planner.unassigned]
        for before, after in same_room.follow_ups(planner.bookings, keys):
            if before not in moving and after not in moving:
                continue
            if before in moving and after in moving:
                differ = same_room.add_term(
                    model, chosen[before][1], chosen[after][1], placed[before], placed[after]
                )
            else:
                mine, other = (before, after) if before in moving else (after, before)
                session = planner.session_of(other)
                if session is None or other in placed:
                    continue
                differ = same_room.add_term(model, chosen[mine][1], session.room, placed[mine], 1)
            terms.append(policy.weight_same_room * WEIGHT_SCALE * differ)
    return terms


def _held(
    planner: Planner,
    items: list[_Movable],
    chosen: dict[PersonKey, tuple[cp_model.IntVar, dict[str, cp_model.IntVar]]],
    latest: dict[PersonKey, Minute],
    now: Minute,
) -> list[HeldPerson]:
    found = []
    for item in items:
        if not item.need.waits_in_holding or item.key not in chosen:
            continue
        current = next(
            (
                a.room
                for a in planner.assignments.get(item.key, [])
                if a.kind is AssignmentKind.WAITING
            ),
            None,
        )
        found.append(
            HeldPerson(
                item.key,
                chosen[item.key][0],
                max(item.need.holding_from, now),
                latest[item.key],
                current,
            )
        )
    return found
