"""Which stored readings raise, repeat or clear which alarm: pure rules, no I/O.

A stored reading (a row of ``events``, or of ``agent_events``) becomes at most one
:class:`AlarmAction`. Every alarm is about a *subject* (an agent, a device, a band, a cabinet
slot); while an alarm of a kind is active for a subject, another raise of the same kind and
subject counts as a repeat of it (its ``count`` grows) instead of opening another. A clearing
reading (the strap closed again, the band heard again, the door closed) ends it.

Some conditions have no reading that says they ended (a forced door is over once someone has
seen it; a tamper latch stays set until serviced). These kinds are *latched*: the alarm stays
active until it is acknowledged, and a later raise opens a new alarm.

The last four kinds come from the plan, not from an agent: rows of ``plan_events``, by the rules
of :mod:`central.plan_alarm_rules`. They name a booking and a person, not a device, so they are
not for the ops role (:data:`PLAN_KINDS`).

==================  ==========================  ===========================================
alarm kind          raised by                   cleared by
==================  ==========================  ===========================================
door_forced         cabinet ``door_forced``     ``door_closed`` of the same slot
tamper              cabinet ``tamper``          acknowledgement (latched)
power_fail          cabinet ``power_fail``      acknowledgement (latched)
strap_opened        band ``strap_opened``       ``custody`` with ``strap_closed`` set
band_tamper         band ``tamper``             ``custody`` without ``tamper_latched``
heart_rate_alarm    band ``heart_rate_alarm``   acknowledgement (latched)
contact_lost        band ``contact_lost``       ``custody`` with ``skin_contact`` set
battery_low         band ``battery_low``        acknowledgement (latched)
band_absent         band ``band_absent``        band ``band_present``
outbox_full         agent ``outbox_full``       acknowledgement (latched)
disk_full           agent ``disk_full``         acknowledgement (latched)
agent_reset         ``agent_events`` reset      acknowledgement (latched)
agent_offline       agent offline too long      the agent online again
device_offline      device offline, agent on    the device online again
wrong_room          a bound person placed in    placed in the planned room, the session
                    another room than their     over, or the band off
                    session's
person_not_heard    no scanner heard a bound    the band heard again, or the band off
                    band for presence_missed
                    intervals
custody_red         ``custody_level`` red       a lower level, black, the person's exit, or
                                                the booking cancelled or a no-show
custody_black       ``custody_level`` black     acknowledgement (latched): a limit passed is
                                                a record for legal supervision, an exit
                                                does not undo it
plan_violation      ``plan_violation``          acknowledgement (latched)
van_late            ``van_late`` (a re-plan     the booking's ``arrived``, ``cancelled`` or
                    from the van's ETA)         ``no_show``
==================  ==========================  ===========================================

Band alarms name the person who wore the band when the reading was taken, and their booking
and station (``central/bands.py``); the last two kinds are about the person, keyed on the
binding (``binding:<id>``), and judged by :mod:`central.presence`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

AGENT_DEVICE: Final = "agent"


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlarmState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


DEFAULT_SEVERITY: Final[Mapping[str, Severity]] = MappingProxyType(
    {
        "door_forced": Severity.CRITICAL,
        "tamper": Severity.CRITICAL,
        "power_fail": Severity.WARNING,
        "strap_opened": Severity.CRITICAL,
        "band_tamper": Severity.CRITICAL,
        "heart_rate_alarm": Severity.CRITICAL,
        "contact_lost": Severity.WARNING,
        "battery_low": Severity.INFO,
        "band_absent": Severity.WARNING,
        "outbox_full": Severity.WARNING,
        "disk_full": Severity.CRITICAL,
        "agent_reset": Severity.WARNING,
        "agent_offline": Severity.WARNING,
        "device_offline": Severity.WARNING,
        "wrong_room": Severity.CRITICAL,
        "person_not_heard": Severity.CRITICAL,
        "custody_red": Severity.CRITICAL,
        "custody_black": Severity.CRITICAL,
        "plan_violation": Severity.CRITICAL,
        "van_late": Severity.WARNING,
    }
)
ALARM_KINDS: Final = tuple(DEFAULT_SEVERITY)
LATCHED: Final = frozenset(
    {
        "tamper",
        "power_fail",
        "heart_rate_alarm",
        "battery_low",
        "outbox_full",
        "disk_full",
        "agent_reset",
        "custody_black",
        "plan_violation",
    }
)
# Alarms about bookings and persons, raised from the plan: hidden from the ops role, which sees
# no bookings, custody clocks or plan events (docs/access.md).
PLAN_KINDS: Final = frozenset({"custody_red", "custody_black", "plan_violation", "van_late"})
# Alarms about where a person is (their band's presence): about persons, so not for ops either.
PRESENCE_KINDS: Final = frozenset({"wrong_room", "person_not_heard"})
PERSON_KINDS: Final = PLAN_KINDS | PRESENCE_KINDS
# Band readings whose kind alone names the alarm.
_BAND_KINDS: Final = frozenset(
    {"strap_opened", "heart_rate_alarm", "contact_lost", "battery_low", "band_absent"}
)
_AGENT_KINDS: Final = frozenset({"outbox_full", "disk_full"})
# The only telemetry the deriver reads: a band's custody flags say when a condition ended.
CUSTODY_KIND: Final = "custody"


class Effect(enum.Enum):
    RAISE = "raise"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Reading:
    """A stored reading, as the rules see it."""

    agent: str
    device: str
    cls: str
    kind: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AlarmAction:
    """Raise (or repeat) ``kind`` for ``subject``, or clear the active ones of ``kinds``."""

    effect: Effect
    kinds: tuple[str, ...]
    subject: str
    device: str | None
    band: str | None


def subject_of(agent: str, device: str | None, slot: object = None) -> str:
    """The key of what an alarm is about: the agent, a device of it, a cabinet slot."""
    key = agent if device is None else f"{agent}/{device}"
    return key if slot is None else f"{key}#{slot}"


def _raise(kind: str, subject: str, device: str | None, band: str | None) -> AlarmAction:
    return AlarmAction(Effect.RAISE, (kind,), subject, device, band)


def _clear(kinds: tuple[str, ...], subject: str, device: str, band: str | None) -> AlarmAction:
    return AlarmAction(Effect.CLEAR, kinds, subject, device, band)


def _is_cabinet(body: Mapping[str, Any]) -> bool:
    # A cabinet's event carries the board's address; a band's the custody fields.
    return "board" in body


def action_for(reading: Reading) -> AlarmAction | None:
    """What one stored reading does to the alarms; None for the readings that do nothing."""
    agent, device, kind, body = reading.agent, reading.device, reading.kind, reading.body
    if reading.cls == "telemetry":
        if kind != CUSTODY_KIND:
            return None
        flags = body.get("flags")
        if not isinstance(flags, list):
            return None
        ended: list[str] = []
        if "strap_closed" in flags:
            ended.append("strap_opened")
        if "tamper_latched" not in flags:
            ended.append("band_tamper")
        if "skin_contact" in flags:
            ended.append("contact_lost")
        if not ended:
            return None
        return _clear(tuple(ended), subject_of(agent, device), device, device)
    if reading.cls != "event":
        return None
    if device == AGENT_DEVICE and kind in _AGENT_KINDS:
        return _raise(kind, subject_of(agent, None), None, None)
    if kind in ("door_forced", "door_closed") and _is_cabinet(body):
        subject = subject_of(agent, device, body.get("slot"))
        if kind == "door_forced":
            return _raise(kind, subject, device, None)
        return _clear(("door_forced",), subject, device, None)
    if kind in ("tamper", "power_fail") and _is_cabinet(body):
        return _raise(kind, subject_of(agent, device), device, None)
    if kind == "tamper":
        return _raise("band_tamper", subject_of(agent, device), device, device)
    if kind in _BAND_KINDS:
        return _raise(kind, subject_of(agent, device), device, device)
    if kind == "band_present":
        return _clear(("band_absent",), subject_of(agent, device), device, device)
    return None


def agent_event_action(agent: str, kind: str) -> AlarmAction | None:
    """What a row of ``agent_events`` does: ``agent_reset`` raises an alarm of that kind."""
    if kind == "agent_reset":
        return _raise(kind, subject_of(agent, None), None, None)
    return None


def offline_action(online: bool, offline_for: float | None, after: float) -> Effect | None:
    """An agent's availability: offline for longer than ``after`` seconds raises
    ``agent_offline``, online clears it; in between (offline, not yet long) does nothing."""
    if online:
        return Effect.CLEAR
    if offline_for is not None and offline_for > after:
        return Effect.RAISE
    return None


def device_offline_action(agent_online: bool, device_online: bool | None) -> Effect | None:
    """A device's availability: offline while its agent is online raises ``device_offline``
    (an agent that is itself offline has its own alarm), online clears it; a device that never
    reports availability (a band of a fleet) does nothing."""
    if device_online is None:
        return None
    if device_online:
        return Effect.CLEAR
    return Effect.RAISE if agent_online else None


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """The part of a stored alarm the transition rules need."""

    kind: str
    state: AlarmState
    count: int


@dataclass(frozen=True, slots=True)
class Transition:
    """The new state, count and whether the alarm stays active (absorbs repeats)."""

    state: AlarmState
    count: int
    active: bool


def on_repeat(alarm: ActiveAlarm) -> Transition:
    """A raise of an active alarm's kind and subject: one more, in the same state."""
    return Transition(alarm.state, alarm.count + 1, True)


def on_clear(alarm: ActiveAlarm) -> Transition:
    return Transition(AlarmState.CLEARED, alarm.count, False)


def on_ack(alarm: ActiveAlarm) -> Transition:
    """Acknowledged: an open alarm is acknowledged; a latched kind is over (a later raise opens
    a new one), any other stays active until its condition ends."""
    if alarm.state is AlarmState.CLEARED:
        return Transition(AlarmState.CLEARED, alarm.count, False)
    return Transition(AlarmState.ACKNOWLEDGED, alarm.count, alarm.kind not in LATCHED)


def binding_subject(binding: int) -> str:
    """The subject of an alarm about the person wearing a band: the binding, not the band (the
    band goes to the next person at exit)."""
    return f"binding:{binding}"


def presence_effects(
    *, placed_room: str | None, heard: bool, planned_room: str | None, not_heard: bool
) -> dict[str, Effect]:
    """What one look at a worn band does: ``person_not_heard`` raised when no scanner heard it
    for the whole window and cleared once one does; ``wrong_room`` raised when, during the
    person's session (``planned_room`` set), the band is placed in a room other than the
    session's, and cleared when placed there or when no session is running. A band heard by a
    scanner that covers no room says nothing about the room."""
    effects: dict[str, Effect] = {}
    if not_heard:
        effects["person_not_heard"] = Effect.RAISE
    elif heard:
        effects["person_not_heard"] = Effect.CLEAR
    if planned_room is None:
        effects["wrong_room"] = Effect.CLEAR
    elif heard and placed_room is not None:
        effects["wrong_room"] = Effect.RAISE if placed_room != planned_room else Effect.CLEAR
    return effects


def severity(kind: str, table: Mapping[str, Severity]) -> Severity:
    return table.get(kind, DEFAULT_SEVERITY.get(kind, Severity.WARNING))
