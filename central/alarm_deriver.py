"""Alarms derived from what is stored, never from memory.

The deriver reads ``events``, ``agent_events`` and ``plan_events`` after its cursors (their
ids), applies :mod:`central.alarm_rules` (and :mod:`central.plan_alarm_rules` for the plan) and
writes through :mod:`central.alarms_store`, the alarms and the moved cursor in one transaction
per batch. A central killed at any point either committed a batch whole or not at all; the next
run reads it again. Each reading is keyed in ``alarm_sources`` (on agent, epoch and seq; on the
row's id for the other two tables), so a batch applied twice (a cursor reset, a second central
on the same file) raises nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from central import alarms_store, bands, feed, presence
from central.alarm_rules import (
    AlarmAction,
    Effect,
    Reading,
    Severity,
    action_for,
    agent_event_action,
    binding_subject,
    device_offline_action,
    offline_action,
    presence_effects,
    severity,
    subject_of,
)
from central.alarms_store import AlarmChange, Source
from central.plan_alarm_rules import PLAN_EVENT_KINDS, PlanEvent, plan_event_actions
from central.settings import CentralSettings
from central.store import connect, write_transaction
from edge_agent.wire import AVAILABILITY_KIND, format_time, parse_time
from monitoring.central_metrics import CentralMetrics

log = logging.getLogger(__name__)

BATCH = 500
# Runs after ingest commits at most this often: each run takes the store's write lock, and one
# run per commit cost ingest a fifth of its throughput (bench ingest ratio 0.78 -> 0.59).
_MIN_GAP = 0.25
EVENTS_CURSOR = "events"
AGENT_EVENTS_CURSOR = "agent_events"
PLAN_EVENTS_CURSOR = "plan_events"
# The plan events that close a booking: the rules need its persons to end their clocks' alarms.
_CLOSING = frozenset({"cancelled", "no_show"})


@dataclass(slots=True)
class Outcome:
    """One run: the alarms changed, and per raised alarm its reading time."""

    changes: list[AlarmChange] = field(default_factory=list)
    raised_at: list[datetime] = field(default_factory=list)
    read: int = 0


def _cursor(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT last_id FROM alarm_cursors WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _move(conn: sqlite3.Connection, name: str, last_id: int) -> None:
    conn.execute(
        "INSERT INTO alarm_cursors (name, last_id) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id",
        (name, last_id),
    )


def _time(text: object) -> datetime | None:
    try:
        return parse_time(text, "time")
    except ValueError:
        return None


def _body(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Stations:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._known: dict[str, str | None] = {}

    def of(self, agent: str) -> str | None:
        if agent not in self._known:
            row = self._conn.execute(
                "SELECT station FROM agents WHERE agent = ?", (agent,)
            ).fetchone()
            self._known[agent] = None if row is None else row[0]
        return self._known[agent]


def _apply(
    conn: sqlite3.Connection,
    action: AlarmAction,
    source: Source,
    table: Mapping[str, Severity],
    now: datetime,
    outcome: Outcome,
) -> None:
    if action.effect is Effect.CLEAR:
        outcome.changes += alarms_store.clear(
            conn, kinds=action.kinds, subject=action.subject, key=source.key, at=source.at
        )
        return
    kind = action.kinds[0]
    change = alarms_store.raise_or_count(
        conn,
        kind=kind,
        severity=severity(kind, table),
        subject=action.subject,
        source=source,
        now=now,
    )
    if change is not None:
        outcome.changes.append(change)
        if change.change == "raised":
            outcome.raised_at.append(source.at)


def _events_batch(
    conn: sqlite3.Connection, table: Mapping[str, Severity], now: datetime, outcome: Outcome
) -> bool:
    """One batch of ``events``; True when there may be more."""
    after = _cursor(conn, EVENTS_CURSOR)
    upto = conn.execute(
        "SELECT max(id), count(*) FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?)",
        (after, BATCH),
    ).fetchone()
    if upto[0] is None:
        return False
    # Telemetry is read only where it can end an alarm (a band's custody flags).
    rows = conn.execute(
        "SELECT agent, epoch, seq, class, device, kind, time, body FROM events "
        "WHERE id > ? AND id <= ? AND (class = 'event' OR kind = 'custody') ORDER BY id",
        (after, upto[0]),
    ).fetchall()
    stations = _Stations(conn)
    for agent, epoch, seq, cls, device, kind, time_text, body_text in rows:
        body = _body(body_text)
        action = action_for(Reading(agent, device, cls, kind, body))
        if action is None:
            continue
        at = _time(time_text) or now
        # A band's alarm is about whoever wore it when the reading was taken: their station
        # sees it, not only the station of the floor the scanner is on.
        worn = None if action.band is None else bands.worn_at(conn, action.band, format_time(at))
        source = Source(
            key=f"event:{agent}:{epoch}:{seq}",
            agent=agent,
            epoch=epoch,
            device=action.device,
            band=action.band,
            station=stations.of(agent) if worn is None else worn.station,
            at=at,
            body=body,
            person=None if worn is None else worn.person,
            booking=None if worn is None else worn.booking,
        )
        _apply(conn, action, source, table, now, outcome)
    _move(conn, EVENTS_CURSOR, int(upto[0]))
    outcome.read += int(upto[1])
    return int(upto[1]) == BATCH


def _agent_events_batch(
    conn: sqlite3.Connection, table: Mapping[str, Severity], now: datetime, outcome: Outcome
) -> bool:
    after = _cursor(conn, AGENT_EVENTS_CURSOR)
    rows = conn.execute(
        "SELECT id, at, agent, kind, epoch, body FROM agent_events WHERE id > ? ORDER BY id "
        "LIMIT ?",
        (after, BATCH),
    ).fetchall()
    if not rows:
        return False
    stations = _Stations(conn)
    for row_id, at_text, agent, kind, epoch, body_text in rows:
        action = agent_event_action(agent, kind)
        if action is None:
            continue
        at = _time(at_text) or now
        source = Source(
            key=f"agent_event:{row_id}",
            agent=agent,
            epoch=epoch,
            device=None,
            band=None,
            station=stations.of(agent),
            at=at,
            body=_body(body_text),
        )
        _apply(conn, action, source, table, now, outcome)
    _move(conn, AGENT_EVENTS_CURSOR, int(rows[-1][0]))
    outcome.read += len(rows)
    return len(rows) == BATCH


def _plan_events_batch(
    conn: sqlite3.Connection, table: Mapping[str, Severity], now: datetime, outcome: Outcome
) -> bool:
    """One batch of ``plan_events``; True when there may be more."""
    after = _cursor(conn, PLAN_EVENTS_CURSOR)
    upto = conn.execute(
        "SELECT max(id), count(*) FROM "
        "(SELECT id FROM plan_events WHERE id > ? ORDER BY id LIMIT ?)",
        (after, BATCH),
    ).fetchone()
    if upto[0] is None:
        return False
    # Most plan events are re-plans with large bodies and no alarm in them: not read.
    marks = ", ".join("?" for _ in PLAN_EVENT_KINDS)
    rows = conn.execute(
        "SELECT id, at, kind, station, booking, person, body FROM plan_events "  # noqa: S608
        f"WHERE id > ? AND id <= ? AND kind IN ({marks}) ORDER BY id",
        (after, upto[0], *PLAN_EVENT_KINDS),
    ).fetchall()
    for row_id, at_text, kind, station, booking, person, body_text in rows:
        body = _body(body_text)
        persons: tuple[str, ...] = ()
        if kind in _CLOSING and booking is not None:
            persons = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT person FROM booking_persons WHERE booking = ? ORDER BY person",
                    (booking,),
                )
            )
        at = _time(at_text) or now
        for action in plan_event_actions(PlanEvent(kind, booking, person, body, persons)):
            key = f"plan_event:{row_id}"
            if action.effect is Effect.CLEAR:
                # One event may end several alarms (each person's clock of a closed booking).
                key = f"{key}:clear:{action.subject}"
            source = Source(
                key=key,
                agent="",  # raised by the plan, not by an agent
                epoch=None,
                device=None,
                band=None,
                station=station,
                at=at,
                body=body,
                person=person,
                booking=booking,
            )
            _apply(conn, action, source, table, now, outcome)
    _move(conn, PLAN_EVENTS_CURSOR, int(upto[0]))
    outcome.read += int(upto[1])
    return int(upto[1]) == BATCH


def _availability(
    conn: sqlite3.Connection,
    table: Mapping[str, Severity],
    offline_after: float,
    now: datetime,
    outcome: Outcome,
) -> None:
    rows = conn.execute(
        "SELECT a.agent, a.station, a.online, a.status_time, a.epoch FROM agents a"
    ).fetchall()
    for agent, station, online, status_time, epoch in rows:
        since = _time(status_time)
        offline_for = None if since is None else (now - since).total_seconds()
        effect = offline_action(bool(online), offline_for, offline_after)
        if effect is None:
            continue
        subject = subject_of(agent, None)
        if effect is Effect.CLEAR:
            # Cheap check first: most agents are online with nothing to clear.
            if (
                conn.execute(
                    "SELECT 1 FROM alarms WHERE kind = 'agent_offline' AND subject = ? "
                    "AND active = 1",
                    (subject,),
                ).fetchone()
                is None
            ):
                continue
            outcome.changes += alarms_store.clear(
                conn,
                kinds=("agent_offline",),
                subject=subject,
                key=f"online:{agent}:{status_time}",
                at=since or now,
            )
            continue
        assert since is not None
        source = Source(
            key=f"offline:{agent}:{status_time}",
            agent=agent,
            epoch=epoch,
            device=None,
            band=None,
            station=station,
            at=since,
            body={"offline_since": format_time(since), "after_s": offline_after},
        )
        _apply(
            conn,
            AlarmAction(Effect.RAISE, ("agent_offline",), subject, None, None),
            source,
            table,
            now,
            outcome,
        )


def _devices(
    conn: sqlite3.Connection, table: Mapping[str, Severity], now: datetime, outcome: Outcome
) -> None:
    rows = conn.execute(
        "SELECT d.agent, d.device, d.online, d.state, a.online, a.station FROM devices d "
        "JOIN agents a ON a.agent = d.agent WHERE d.online IS NOT NULL"
    ).fetchall()
    for agent, device, online, state_text, agent_online, station in rows:
        effect = device_offline_action(bool(agent_online), bool(online))
        if effect is None:
            continue
        subject = subject_of(agent, device)
        if effect is Effect.CLEAR and (
            conn.execute(
                "SELECT 1 FROM alarms WHERE kind = 'device_offline' AND subject = ? AND active = 1",
                (subject,),
            ).fetchone()
            is None
        ):
            continue
        # The availability reading that said so: its number keys the alarm, its time dates it.
        entry = _body(state_text).get(AVAILABILITY_KIND)
        if not isinstance(entry, dict):
            continue
        key = f"{agent}:{device}:{entry.get('epoch', '')}:{entry.get('seq')}"
        at = _time(entry.get("time")) or now
        if effect is Effect.CLEAR:
            outcome.changes += alarms_store.clear(
                conn, kinds=("device_offline",), subject=subject, key=f"device_online:{key}", at=at
            )
            continue
        source = Source(
            key=f"device_offline:{key}",
            agent=agent,
            epoch=None if entry.get("epoch") is None else str(entry.get("epoch")),
            device=device,
            band=None,
            station=station,
            at=at,
            body={"offline_since": format_time(at)},
        )
        action = AlarmAction(Effect.RAISE, ("device_offline",), subject, device, None)
        _apply(conn, action, source, table, now, outcome)


_PRESENCE_KINDS = ("wrong_room", "person_not_heard")


@dataclass(frozen=True, slots=True)
class _PresenceStep:
    effect: Effect
    kind: str
    subject: str
    key: str
    source: Source


@dataclass(frozen=True, slots=True)
class _Moved:
    """A worn band placed in another room (or nowhere) than last told: one stream event."""

    binding: int
    booking: str
    person: str
    band: str
    station: str
    room: str | None
    heard_by: str | None


def _session_room(conn: sqlite3.Connection, booking: str, person: str, now: str) -> str | None:
    """The room of the person's session while it runs (started, not ended, not exited)."""
    running = conn.execute(
        "SELECT 1 FROM booking_persons WHERE booking = ? AND person = ? AND "
        "session_started_at IS NOT NULL AND session_ended_at IS NULL AND exited_at IS NULL",
        (booking, person),
    ).fetchone()
    if running is None:
        return None
    row = conn.execute(
        "SELECT room FROM assignments WHERE booking = ? AND person = ? AND kind = 'session' "
        "ORDER BY (start > ?), abs(julianday(start) - julianday(?)) LIMIT 1",
        (booking, person, now, now),
    ).fetchone()
    return None if row is None else str(row[0])


def _presence_steps(
    conn: sqlite3.Connection, policy: presence.PresencePolicy, now: datetime
) -> tuple[list[_PresenceStep], list[_Moved]]:
    """What the worn bands call for, read without a write lock: most passes change nothing."""
    active = {
        (str(kind), str(subject))
        for kind, subject in conn.execute(
            "SELECT kind, subject FROM alarms WHERE active = 1 AND kind IN (?, ?)",
            _PRESENCE_KINDS,
        )
    }
    worn = conn.execute(
        "SELECT id, band, booking, person, station, bound_at, room FROM band_bindings "
        "WHERE unbound_at IS NULL"
    ).fetchall()
    at_now = format_time(now)
    steps: list[_PresenceStep] = []
    moved: list[_Moved] = []
    subjects: set[str] = set()
    for binding, band, booking, person, station, bound_text, told_room in worn:
        subject = binding_subject(int(binding))
        subjects.add(subject)
        sightings, heard = [], []
        for agent, state_text in conn.execute(
            "SELECT agent, state FROM devices WHERE device = ?", (band,)
        ):
            state = _body(state_text)
            sighting = presence.sighting_of(str(agent), state)
            if sighting is not None:
                sightings.append(sighting)
            heard.append(presence.heard_at(state))
        placed = presence.place(sightings, now, policy)
        room = None if placed is None else placed.room
        if room != told_room:
            heard_by = None if placed is None else placed.agent
            moved.append(_Moved(binding, booking, person, band, station, room, heard_by))
        last = max((t for t in heard if t is not None), default=None)
        bound_at = _time(bound_text) or now
        silent = presence.not_heard(last, bound_at, now, policy)
        planned = _session_room(conn, booking, person, at_now)
        effects = presence_effects(
            placed_room=None if placed is None else placed.room,
            heard=placed is not None,
            planned_room=planned,
            not_heard=silent,
        )
        for kind, effect in effects.items():
            if (effect is Effect.RAISE) == ((kind, subject) in active):
                continue  # raised already, or nothing to clear
            if kind == "person_not_heard":
                since = max(bound_at, last) if last is not None else bound_at
                moment = since + policy.window if effect is Effect.RAISE else (last or now)
                body: dict[str, Any] = {
                    "last_heard": None if last is None else format_time(last),
                    "window_s": policy.window.total_seconds(),
                }
            else:
                moment = placed.last_seen if placed and placed.last_seen else now
                body = {
                    "planned_room": planned,
                    "heard_room": None if placed is None else placed.room,
                    "heard_by": None if placed is None else placed.agent,
                    "rssi": None if placed is None else placed.rssi,
                }
            source = Source(
                key=f"{kind}:{'raise' if effect is Effect.RAISE else 'clear'}:{binding}:"
                f"{format_time(moment)}",
                agent="" if placed is None else placed.agent,
                epoch=None,
                device=band,
                band=band,
                station=station,
                at=min(moment, now) if effect is Effect.CLEAR else moment,
                body=body,
                person=person,
                booking=booking,
            )
            steps.append(_PresenceStep(effect, kind, subject, source.key, source))
    for kind, subject in sorted(active):
        if subject not in subjects:
            # The band came off (an exit, by hand): nothing more to say about that person.
            source = Source(f"{kind}:unbound:{subject}", "", None, None, None, None, now, {})
            steps.append(_PresenceStep(Effect.CLEAR, kind, subject, source.key, source))
    return steps, moved


def _tell_moves(conn: sqlite3.Connection, moved: list[_Moved], now: datetime) -> None:
    """Store where each moved band is now and tell the stream (``person_room``), together."""
    at = format_time(now)
    for move in moved:
        changed = conn.execute(
            "UPDATE band_bindings SET room = ?, room_at = ? WHERE id = ? AND unbound_at IS NULL "
            "AND room IS NOT ?",
            (move.room, at, move.binding, move.room),
        ).rowcount
        if changed:
            feed.append(
                conn,
                "person_room",
                move.station,
                {
                    "booking": move.booking,
                    "person": move.person,
                    "band": move.band,
                    "room": move.room,
                    "heard_by": move.heard_by,
                },
                at=at,
            )


def _presence(
    conn: sqlite3.Connection,
    steps: list[_PresenceStep],
    table: Mapping[str, Severity],
    now: datetime,
    outcome: Outcome,
) -> None:
    for step in steps:
        action = AlarmAction(step.effect, (step.kind,), step.subject, step.source.device, None)
        if step.effect is Effect.RAISE:
            action = AlarmAction(
                Effect.RAISE, (step.kind,), step.subject, step.source.device, step.source.band
            )
        _apply(conn, action, step.source, table, now, outcome)


def _in_transaction(conn: sqlite3.Connection, step: Any) -> Any:
    with write_transaction(conn):
        return step()


def derive(
    db: Path,
    table: Mapping[str, Severity],
    offline_after: float,
    now: datetime | None = None,
    max_batches: int = 20,
    presence_policy: presence.PresencePolicy | None = None,
) -> Outcome:
    """Apply what was stored since the cursors, batch by batch (each its own commit)."""
    outcome = Outcome()
    conn = connect(db)
    try:
        for batch in (_events_batch, _agent_events_batch, _plan_events_batch):
            for _ in range(max_batches):
                step = partial(batch, conn, table, now or datetime.now(UTC), outcome)
                if not _in_transaction(conn, step):
                    break
        moment = now or datetime.now(UTC)
        _in_transaction(conn, partial(_availability, conn, table, offline_after, moment, outcome))
        _in_transaction(conn, partial(_devices, conn, table, moment, outcome))
        steps, moved = _presence_steps(conn, presence_policy or presence.PresencePolicy(), moment)
        if steps:
            _in_transaction(conn, partial(_presence, conn, steps, table, moment, outcome))
        if moved:
            _in_transaction(conn, partial(_tell_moves, conn, moved, moment))
        return outcome
    finally:
        conn.close()


def open_counts(db: Path) -> dict[tuple[str, str], int]:
    conn = connect(db, readonly=True)
    try:
        rows = conn.execute(
            "SELECT kind, severity, count(*) FROM alarms WHERE state = 'open' "
            "GROUP BY kind, severity"
        ).fetchall()
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}
    finally:
        conn.close()


async def run_alarms(
    settings: CentralSettings, metrics: CentralMetrics, committed: threading.Event | None = None
) -> None:
    """Runs until cancelled: derive every ``alarm_interval`` seconds, and soon after each
    ingest commit (``committed``), each run with a deadline."""
    table = settings.alarm_severities()
    policy = presence.PresencePolicy(
        timedelta(seconds=settings.presence_interval), settings.presence_missed
    )
    deadline = max(10.0, settings.alarm_interval * 10)
    seen: set[tuple[str, str]] = set()
    while True:
        if committed is None:
            await asyncio.sleep(settings.alarm_interval)
        else:
            await asyncio.to_thread(committed.wait, settings.alarm_interval)
            committed.clear()
            # A busy broker commits all the time: at most one run per _MIN_GAP.
            await asyncio.sleep(_MIN_GAP)
        try:
            outcome = await asyncio.wait_for(
                asyncio.to_thread(
                    partial(
                        derive,
                        settings.db,
                        table,
                        settings.agent_offline_alarm,
                        presence_policy=policy,
                    )
                ),
                deadline,
            )
            counts = await asyncio.wait_for(asyncio.to_thread(open_counts, settings.db), deadline)
        except (TimeoutError, sqlite3.Error) as exc:
            # Nothing committed is lost: the next run starts from the cursors on file.
            log.warning("alarm derivation did not finish: %s", exc)
            metrics.alarm_errors.inc()
            continue
        done = datetime.now(UTC)
        for raised in outcome.raised_at:
            metrics.alarm_latency.observe(max(0.0, (done - raised).total_seconds()))
        for labels in seen | set(counts):
            metrics.alarms_open.labels(*labels).set(counts.get(labels, 0))
        seen |= set(counts)
