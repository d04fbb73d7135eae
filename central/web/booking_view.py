"""A booking as the station's pages show it: each person's room and times in the centre's
zone, the status and the plan's rules in words, the fast-lane code as a QR code.

The words are msgids marked with ``N_``; the templates translate them. Nothing here decides
anything about the plan: it only shows what the API answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import segno

from central.api.booking_models import BookingOut
from central.web.book_form import N_, local_input

RULES = MappingProxyType(
    {
        "H1": N_("One session per room at a time, with the room's cleaning time after it."),
        "H2": N_(
            "Co-suspects of one case, men and women, and adults and minors are kept apart, "
            "in the rooms and in the waiting rooms."
        ),
        "H3": N_(
            "The room must be of the person's type: suspects in an interrogation room, "
            "witnesses and victims in an inquiry room, minors in the minors' room, minor "
            "victims of sexual abuse in the one-stop room."
        ),
        "H4": N_(
            "The room must have the equipment the booking needs (audio-video recording, "
            "interpreter link), in working order."
        ),
        "H5": N_("The session and the exit must end before the person's legal time limit."),
        "H6": N_("Two officers per session: more sessions at once need more officers."),
        "H7": N_(
            "A minor is questioned only with the guardian or an appropriate adult; a female "
            "minor suspect needs a female staff member present."
        ),
        "H8": N_("Entry steps come before questioning; an intoxicated person sobers up first."),
        "H9": N_("A room out of order is not used."),
        "H10": N_("A session that has started is not moved."),
    }
)
RULE_UNKNOWN = N_("A rule of the plan.")

STATUSES = MappingProxyType(
    {
        "confirmed": (N_("Confirmed"), "✔"),
        "waitlisted": (N_("Waiting list"), "⧗"),
        "arrived": (N_("Arrived"), "⇥"),
        "verified": (N_("Verified at the door"), "✔"),
        "in_area": (N_("In the handling area"), "▣"),
        "exited": (N_("Left the centre"), "⇤"),
        "cancelled": (N_("Cancelled"), "✖"),
        "no_show": (N_("Did not come"), "✖"),
    }
)
STATUS_UNKNOWN = (N_("Unknown"), "?")

# QR modules are 4 px at the least a phone camera reads from a screen at arm's length; a
# version 1 code of an 8-character code is 21 modules, plus the 4-module quiet zone each side.
_QR_SCALE = 6
_QR_BORDER = 4


@dataclass(frozen=True, slots=True)
class PersonLine:
    """One person of a booking: session room and times, the waiting room, or why unplaced."""

    person: str
    room: str
    when: str  # start and end in the centre's zone, see span()
    waiting_room: str
    waiting_when: str
    rule: str  # "" when placed
    rule_text: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookingCard:
    id: str
    code: str
    case_id: str
    station: str
    status: str
    status_text: str
    status_icon: str
    closed: bool
    expected_arrival: str
    eta: str
    persons: tuple[PersonLine, ...]
    qr_svg: str


@dataclass(frozen=True, slots=True)
class RefusedLine:
    person: str
    rule: str
    rule_text: str
    reason: str


@dataclass(frozen=True, slots=True)
class FitsNowLine:
    """A person of a refused booking whom the rooms take now: as a booking of its own would."""

    person: str
    room: str
    when: str
    waiting_room: str
    waiting_when: str


@dataclass(frozen=True, slots=True)
class FitsLaterLine:
    person: str
    arrival: str  # "14:30", or "12-06 14:30" on another day; "" when no arrival soon fits


@dataclass(frozen=True, slots=True)
class Refusal:
    persons: tuple[RefusedLine, ...]
    suggested_input: str  # the datetime-local value that books at the suggested time
    suggested_label: str  # "14:30", or "12-06 14:30" on another day
    fits_now: tuple[FitsNowLine, ...] = ()  # the partial plan
    fits_later: tuple[FitsLaterLine, ...] = ()


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local(value: str | None, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD HH:MM`` in the centre's zone; empty for none."""
    if not value:
        return ""
    return _moment(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def span(start: str, end: str, zone: ZoneInfo) -> str:
    """``2026-12-05 10:00`` to ``11:00`` joined by an en dash (the end's date too when it
    is another day)."""
    first, last = _moment(start).astimezone(zone), _moment(end).astimezone(zone)
    tail = last.strftime("%H:%M") if last.date() == first.date() else local(end, zone)
    return f"{first:%Y-%m-%d %H:%M}–{tail}"


def qr_svg(code: str) -> str:
    """The fast-lane code as an inline SVG, drawn here: no script, no outside request. Only
    the code's letters and digits go in, and segno writes only paths of them."""
    symbol = segno.make_qr(code, error="m")
    return symbol.svg_inline(scale=_QR_SCALE, border=_QR_BORDER, svgclass="qr", lineclass=None)


def card(booking: BookingOut, zone: ZoneInfo) -> BookingCard:
    sessions: dict[str, tuple[str, str]] = {}
    waiting: dict[str, tuple[str, str]] = {}
    for assignment in booking.assignments:
        shown = (assignment.room, span(assignment.start, assignment.end, zone))
        target = sessions if assignment.kind == "session" else waiting
        target.setdefault(assignment.person, shown)
    unplaced = {u.person: u for u in booking.unassigned}
    names = sorted({p.id for p in booking.persons} | set(sessions) | set(waiting) | set(unplaced))
    lines = []
    for person in names:
        refused = unplaced.get(person)
        room, when = sessions.get(person, ("", ""))
        waiting_room, waiting_when = waiting.get(person, ("", ""))
        lines.append(
            PersonLine(
                person=person,
                room=room,
                when=when,
                waiting_room=waiting_room,
                waiting_when=waiting_when,
                rule=refused.rule if refused else "",
                rule_text=RULES.get(refused.rule, RULE_UNKNOWN) if refused else "",
                reason=refused.reason if refused else "",
            )
        )
    status_text, icon = STATUSES.get(booking.status, STATUS_UNKNOWN)
    return BookingCard(
        id=booking.id,
        code=booking.code,
        case_id=booking.case_id,
        station=booking.station,
        status=booking.status,
        status_text=status_text,
        status_icon=icon,
        closed=booking.status in ("cancelled", "no_show", "exited"),
        expected_arrival=local(booking.expected_arrival, zone),
        eta=local(booking.eta, zone),
        persons=tuple(lines),
        qr_svg=qr_svg(booking.code),
    )


def refusal(
    persons: object, suggested: object, zone: ZoneInfo, partial_plan: object = None
) -> Refusal:
    """The 409's ``persons``, ``suggested_arrival`` and ``partial_plan``, as the page shows
    them; whatever is not of the documented shape is left out."""
    lines = []
    for item in persons if isinstance(persons, list) else []:
        if not isinstance(item, dict):
            continue
        rule = str(item.get("rule", ""))
        lines.append(
            RefusedLine(
                person=str(item.get("person", "")),
                rule=rule,
                rule_text=RULES.get(rule, RULE_UNKNOWN),
                reason=str(item.get("reason", "")),
            )
        )
    suggested_input = suggested_label = ""
    if isinstance(suggested, str) and suggested:
        moment = _moment(suggested).astimezone(zone)
        suggested_input = local_input(moment, zone)
        suggested_label = _label(moment, zone)
    plan = partial_plan if isinstance(partial_plan, dict) else {}
    return Refusal(
        tuple(lines),
        suggested_input,
        suggested_label,
        tuple(_fits_now(plan.get("fits_now"), zone)),
        tuple(_fits_later(plan.get("fits_later"), zone)),
    )


def _label(moment: datetime, zone: ZoneInfo) -> str:
    """The time alone today, with the date on another day."""
    today = datetime.now(zone).date()
    return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%m-%d %H:%M")


def _fits_now(items: object, zone: ZoneInfo) -> list[FitsNowLine]:
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("assignments"), list):
            continue
        stays = {
            str(a.get("kind")): (str(a.get("room", "")), span(a["start"], a["end"], zone))
            for a in item["assignments"]
            if isinstance(a, dict)
            and isinstance(a.get("start"), str)
            and isinstance(a.get("end"), str)
        }
        room, when = stays.get("session", ("", ""))
        waiting_room, waiting_when = stays.get("waiting", ("", ""))
        found.append(
            FitsNowLine(str(item.get("person", "")), room, when, waiting_room, waiting_when)
        )
    return found


def _fits_later(items: object, zone: ZoneInfo) -> list[FitsLaterLine]:
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        arrival = item.get("arrival")
        label = (
            _label(_moment(arrival).astimezone(zone), zone)
            if isinstance(arrival, str) and arrival
            else ""
        )
        found.append(FitsLaterLine(str(item.get("person", "")), label))
    return found
