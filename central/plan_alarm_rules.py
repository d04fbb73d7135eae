"""Which plan events raise, repeat or clear which alarm: pure rules, no I/O.

The planning service and its jobs record what the plan has to tell someone as rows of
``plan_events``. Four of those facts are alarms (the table in :mod:`central.alarm_rules`): a
custody clock turning red or black, a violation found by the independent checker, and a booked
van running late. Other plan events end them: a lower clock level, a person's exit, a booking's
arrival, cancellation or no-show.

One plan event gives at most one raise and any number of clears, each on its own subject: a
clock gone black raises ``custody_black`` and ends the person's ``custody_red``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from central.alarm_rules import AlarmAction, Effect
from scheduling.custody import Level

# The plan event kinds the rules read; the deriver skips every other row unread.
PLAN_EVENT_KINDS: Final = (
    "custody_level",
    "person_exited",
    "plan_violation",
    "van_late",
    "arrived",
    "cancelled",
    "no_show",
)
# A violation's message can be long; its digest keeps the subject short and the same for the
# same finding.
_DIGEST_CHARS = 16


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """A stored plan event, as the rules see it. ``persons``: the booking's persons, given for
    the events that close a booking (their clocks stop with it)."""

    kind: str
    booking: str | None
    person: str | None
    body: Mapping[str, Any]
    persons: tuple[str, ...] = ()


def custody_subject(booking: str, person: str) -> str:
    """One person's clock: both custody kinds share it, so black can end red."""
    return f"{booking}/{person}"


def violation_subject(rule: str, message: str) -> str:
    """The same finding (rule and message) is the same subject: found again, it is a repeat."""
    digest = hashlib.sha256(f"{rule}\n{message}".encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{rule}:{digest}"


def _raise(kind: str, subject: str) -> AlarmAction:
    return AlarmAction(Effect.RAISE, (kind,), subject, None, None)


def _clear(kind: str, subject: str) -> AlarmAction:
    return AlarmAction(Effect.CLEAR, (kind,), subject, None, None)


def _level(value: object) -> Level | None:
    try:
        return Level(value) if isinstance(value, str) else None
    except ValueError:
        return None


def plan_event_actions(event: PlanEvent) -> tuple[AlarmAction, ...]:
    """What one stored plan event does to the alarms; empty for the events that do nothing
    (and for a row missing what its kind needs: the rows are the store's, but old releases
    and hand edits write them too)."""
    booking, person, body = event.booking, event.person, event.body
    if event.kind == "plan_violation":
        rule, message = body.get("rule"), body.get("message")
        if not isinstance(rule, str) or not isinstance(message, str):
            return ()
        return (_raise("plan_violation", violation_subject(rule, message)),)
    if booking is None:
        return ()
    if event.kind == "custody_level":
        level = _level(body.get("level"))
        if person is None or level is None:
            return ()
        subject = custody_subject(booking, person)
        if level is Level.RED:
            return (_raise("custody_red", subject),)
        if level is Level.BLACK:
            return (_raise("custody_black", subject), _clear("custody_red", subject))
        # Back below red: a re-plan brought the projected end inside the limit again.
        return (_clear("custody_red", subject),)
    if event.kind == "person_exited":
        # The clock stops at the exit; a black alarm stays for legal supervision (latched).
        return () if person is None else (_clear("custody_red", custody_subject(booking, person)),)
    if event.kind == "van_late":
        return (_raise("van_late", booking),)
    if event.kind == "arrived":
        return (_clear("van_late", booking),)
    if event.kind in ("cancelled", "no_show"):
        # The centre no longer keeps these persons' clocks: nothing would ever end a red one.
        clocks = tuple(_clear("custody_red", custody_subject(booking, p)) for p in event.persons)
        return (_clear("van_late", booking), *clocks)
    return ()
