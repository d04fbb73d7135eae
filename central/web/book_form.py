"""The booking form as the page sends it: read into the API's request body, and every error
placed beside its field.

Pure: no I/O, no rules of the plan. The form's fields are named after the body's locations
(``case_id``, ``needs.recording``, ``persons.0.brought_in_at``), so that an error pydantic
reports at ``persons.0.brought_in_at`` is shown beside the input of that name. Times come from
``datetime-local`` inputs, which carry no zone: they are read in the centre's zone (setting
``timezone``), never the browser's.

Messages are msgids (marked with ``N_``, which pybabel extracts) with their values,
translated by the template: the page never shows pydantic's English to a Chinese reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from central.api.booking_models import MAX_OFFICERS, MAX_PERSONS
from central.web.forms import Form
from scheduling.model import LegalBasis, PersonRole, Sex


def N_(message: str) -> str:  # noqa: N802 - the name pybabel extracts by default
    """Mark ``message`` for the catalogs; the template translates it where it is shown."""
    return message


BOOLEAN_FIELDS = ("female_staff", "needs.recording", "needs.interpreter", "needs.guardian")
PERSON_TEXT = ("id", "role", "sex", "age", "legal_basis", "co_suspect_group")
PERSON_TIMES = ("brought_in_at", "guardian_at")
PERSON_FLAGS = ("intoxicated", "sexual_abuse_victim")
# What a person row shows when added (the select's first choice is the default otherwise).
PERSON_DEFAULTS = MappingProxyType(
    {"role": PersonRole.SUSPECT.value, "sex": Sex.MALE.value, "age": "adult"}
)
_MAX_TEXT = 200  # longer than any field takes: cut before it is echoed back into the page
_PERSON_FIELD = re.compile(r"^persons\.(0|[1-9][0-9]?)\.([a-z_]{1,32})$")
# What a datetime-local input sends: minutes, perhaps seconds (step) and milliseconds.
_LOCAL_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,3})?)?$"
)
_RECORD_LOCATION = re.compile(r"^([a-z_]+)(?:\[([0-9]+)\])?(?:\.([a-z_]+))?: ")
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"

MSG_REQUIRED = N_("Required.")
MSG_NAME = N_("Letters, digits and _ . : - only, starting with a letter or digit.")
MSG_TOO_LONG = N_("At most %(max)s characters.")
MSG_WHOLE_NUMBER = N_("A whole number.")
MSG_RANGE = N_("From %(min)s to %(max)s.")
MSG_TIME = N_("A date and time, such as 2026-12-05 09:30.")
MSG_TIME_RANGE = N_("A date between 2000 and 2100.")
MSG_CHOICE = N_("Choose one of the list.")
MSG_INVALID = N_("Not valid.")
MSG_PERSONS_COUNT = N_("From 1 to %(max)s persons.")
MSG_DUPLICATE_PERSON = N_("Each person once: this number is used twice.")
MSG_BROUGHT_IN_AFTER = N_(
    "Brought in after the expected arrival: the clock runs from 到案, before arrival."
)
MSG_BROUGHT_IN_EARLY = N_("More than 48 hours before arrival: past every legal limit.")
MSG_GROUP_SUSPECTS = N_("Only suspects are co-suspects.")
MSG_PAST = N_("In the past: a unit already here is booked as a walk-in.")
MSG_AHEAD = N_("More than 7 days ahead.")
MSG_STATION = N_("Choose the station the booking is for.")
MSG_OWN_STATION = N_("A station books for its own station only.")


@dataclass(frozen=True, slots=True)
class Message:
    """A msgid and its values, translated where it is shown."""

    text: str
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Reading:
    """The form read: ``values`` to show it again as sent, ``body`` for ``BookingIn``, and the
    errors found so far by field name (``""``: the form as a whole)."""

    values: dict[str, str]
    persons: list[dict[str, str]]
    body: dict[str, Any]
    errors: dict[str, Message]
    # The form's row number of each person in ``body["persons"]`` (rows may be numbered with gaps).
    rows: list[int]


def local_input(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as a ``datetime-local`` input shows it, in the centre's zone."""
    return moment.astimezone(zone).strftime(LOCAL_INPUT_FORMAT)


def _text(form: Form, name: str) -> str:
    return form.get(name).strip()[:_MAX_TEXT]


def _local_time(raw: str, zone: ZoneInfo) -> datetime | Message:
    if _LOCAL_TIME.match(raw) is None:
        return Message(MSG_TIME)
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        return Message(MSG_TIME)
    # The centre's wall clock; in a zone with summer time an hour that does not exist is
    # read as zoneinfo reads it (fold 0), which the plan then shows in the answer.
    return naive.replace(tzinfo=zone)


def _whole(raw: str) -> int | Message:
    if re.fullmatch(r"-?[0-9]{1,6}", raw) is None:
        return Message(MSG_WHOLE_NUMBER)
    return int(raw)


def read(form: Form, zone: ZoneInfo, *, choose_station: bool) -> Reading:
    """Read the booking form; conversion errors (a time or number that is none) are kept
    beside their fields and the field left out of the body, for pydantic to report the rest."""
    values = {
        name: _text(form, name)
        for name in (
            "station",
            "case_id",
            "case_type",
            "officers",
            "expected_arrival",
            "session_minutes",
            "van",
        )
    }
    for name in BOOLEAN_FIELDS:
        values[name] = "on" if form.get(name) else ""
    rebook = _text(form, "rebook_at")
    if rebook:
        # "Book at HH:MM" on a refusal: the same form, arriving at the suggested time.
        values["expected_arrival"] = rebook
    errors: dict[str, Message] = {}
    body: dict[str, Any] = {
        "case_id": values["case_id"],
        "case_type": values["case_type"],
        "needs": {
            "recording": bool(values["needs.recording"]),
            "interpreter": bool(values["needs.interpreter"]),
            "guardian": bool(values["needs.guardian"]),
        },
        "female_staff": bool(values["female_staff"]),
    }
    if choose_station and values["station"]:
        body["station"] = values["station"]
    if values["van"]:
        body["van"] = values["van"]
    for name in ("officers", "session_minutes"):
        number = _whole(values[name]) if values[name] else Message(MSG_REQUIRED)
        if isinstance(number, Message):
            errors[name] = number
        else:
            body[name] = number
    arrival = (
        _local_time(values["expected_arrival"], zone)
        if values["expected_arrival"]
        else Message(MSG_REQUIRED)
    )
    if isinstance(arrival, Message):
        errors["expected_arrival"] = arrival
    else:
        body["expected_arrival"] = arrival

    rows = _rows(form.fields)
    persons: list[dict[str, str]] = []
    body_persons: list[dict[str, Any]] = []
    for row in rows:
        shown, person = _person(form, row, zone, errors)
        persons.append(shown)
        body_persons.append(person)
    if not rows or len(rows) > MAX_PERSONS:
        errors["persons"] = Message(MSG_PERSONS_COUNT, {"max": MAX_PERSONS})
    body["persons"] = body_persons
    return Reading(values, persons, body, errors, rows)


def _rows(fields: Mapping[str, Sequence[str]]) -> list[int]:
    """The person rows the form sent, in order (at most one more than a booking takes, so
    that too many rows is an error to show, not a list to build without end)."""
    found = set()
    for name in fields:
        matched = _PERSON_FIELD.match(name)
        if matched is not None:
            found.add(int(matched[1]))
    return sorted(found)[: MAX_PERSONS + 1]


def _person(
    form: Form, row: int, zone: ZoneInfo, errors: dict[str, Message]
) -> tuple[dict[str, str], dict[str, Any]]:
    prefix = f"persons.{row}."
    shown = {name: _text(form, prefix + name) for name in (*PERSON_TEXT, *PERSON_TIMES)}
    for name in PERSON_FLAGS:
        shown[name] = "on" if form.get(prefix + name) else ""
    person: dict[str, Any] = {
        "id": shown["id"],
        "role": shown["role"],
        "sex": shown["sex"],
        "legal_basis": shown["legal_basis"],
        "intoxicated": bool(shown["intoxicated"]),
        "sexual_abuse_victim": bool(shown["sexual_abuse_victim"]),
    }
    if shown["age"] in ("adult", "minor"):
        person["minor"] = shown["age"] == "minor"
    else:
        errors[prefix + "age"] = Message(MSG_CHOICE)
    if shown["co_suspect_group"]:
        person["co_suspect_group"] = shown["co_suspect_group"]
    for name in PERSON_TIMES:
        if not shown[name]:
            if name == "brought_in_at":
                errors[prefix + name] = Message(MSG_REQUIRED)
            continue
        moment = _local_time(shown[name], zone)
        if isinstance(moment, Message):
            errors[prefix + name] = moment
        else:
            person[name] = moment
    return shown, person


def place_errors(reading: Reading, raw: Iterable[Mapping[str, Any]]) -> None:
    """Put pydantic's errors of ``BookingIn`` beside the fields they are about. A field that
    already has an error (it could not be read) keeps that one."""
    for error in raw:
        name, message = _placed(reading, error)
        reading.errors.setdefault(name, message)


def _field_name(reading: Reading, location: Sequence[object]) -> str:
    parts = [str(part) for part in location]
    if len(parts) >= 2 and parts[0] == "persons" and parts[1].isdigit():
        position = int(parts[1])
        if position < len(reading.rows):
            parts[1] = str(reading.rows[position])
        if len(parts) > 2 and parts[2] == "minor":
            parts[2] = "age"  # one select, adult or minor
    name = ".".join(parts)
    return name if name in _known_names(reading) else (parts[0] if parts else "")


def _known_names(reading: Reading) -> set[str]:
    names = set(reading.values) | {"persons"}
    for row in reading.rows:
        names.update(f"persons.{row}.{name}" for name in (*PERSON_TEXT, *PERSON_TIMES))
        names.update(f"persons.{row}.{name}" for name in PERSON_FLAGS)
    return names


def _placed(reading: Reading, error: Mapping[str, Any]) -> tuple[str, Message]:
    location = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind == "value_error" and not location:
        # BookingIn's own check (the record's RecordError): the message starts with where.
        return _record_error(reading, str(error.get("msg", "")))
    name = _field_name(reading, location)
    if kind == "missing":
        return name, Message(MSG_REQUIRED)
    if kind == "string_pattern_mismatch":
        return name, Message(MSG_NAME)
    if kind == "string_too_long":
        return name, Message(MSG_TOO_LONG, {"max": context.get("max_length", "")})
    if kind == "string_too_short":
        return name, Message(MSG_REQUIRED)
    if kind in ("greater_than_equal", "less_than_equal"):
        return name, Message(MSG_RANGE, _range_of(name))
    if kind in ("too_short", "too_long") and name == "persons":
        return name, Message(MSG_PERSONS_COUNT, {"max": MAX_PERSONS})
    if kind == "enum":
        return name, Message(MSG_CHOICE)
    if kind == "value_error" and "between 2000 and 2100" in str(error.get("msg", "")):
        return name, Message(MSG_TIME_RANGE)
    return name, Message(MSG_INVALID)


def _range_of(name: str) -> dict[str, int]:
    if name == "officers":
        return {"min": 1, "max": MAX_OFFICERS}
    return {"min": 10, "max": 8 * 60}  # session minutes, the API's bounds


def _record_error(reading: Reading, text: str) -> tuple[str, Message]:
    text = text.removeprefix("Value error, ")
    matched = _RECORD_LOCATION.match(text)
    if matched is None:
        return "", Message(MSG_INVALID)
    top, index, inner = matched[1], matched[2], matched[3]
    if top == "persons" and index is not None and inner is not None:
        position = int(index)
        row = reading.rows[position] if position < len(reading.rows) else position
        name = f"persons.{row}.{inner}"
    else:
        name = top
    if "after expected_arrival" in text:
        return name, Message(MSG_BROUGHT_IN_AFTER)
    if "more than 48 h" in text:
        return name, Message(MSG_BROUGHT_IN_EARLY)
    if "only suspects" in text:
        return name, Message(MSG_GROUP_SUSPECTS)
    if "appear once" in text:
        return "persons", Message(MSG_DUPLICATE_PERSON)
    return name, Message(MSG_INVALID)


def refused_field(detail: str) -> tuple[str, Message]:
    """Where a refusal of the booking route that is about one field goes (its detail starts
    with the field's name), or ``("", …)`` for the form as a whole."""
    if detail.startswith("expected_arrival:"):
        return "expected_arrival", Message(MSG_AHEAD if "days ahead" in detail else MSG_PAST)
    if detail.startswith("station:"):
        return "station", Message(MSG_STATION)
    if "own station" in detail:
        return "station", Message(MSG_OWN_STATION)
    return "", Message(MSG_INVALID)


LEGAL_BASES = (
    (LegalBasis.CRIMINAL_SUMMONS, N_("Criminal summons (12 h)")),
    (LegalBasis.CRIMINAL_SUMMONS_SERIOUS, N_("Criminal summons, serious (24 h)")),
    (LegalBasis.ADMINISTRATIVE, N_("Administrative questioning (8 h)")),
    (
        LegalBasis.ADMINISTRATIVE_DETENTION_LIKELY,
        N_("Administrative, detention likely (24 h)"),
    ),
    (LegalBasis.CONTINUED_QUESTIONING, N_("Continued questioning (24 h)")),
    (
        LegalBasis.CONTINUED_QUESTIONING_APPROVED,
        N_("Continued questioning, approved (48 h)"),
    ),
    (LegalBasis.CRIMINAL_DETENTION, N_("Criminal detention (24 h)")),
    (LegalBasis.VOLUNTARY, N_("Came voluntarily (no limit)")),
)
ROLES = (
    (PersonRole.SUSPECT, N_("Suspect")),
    (PersonRole.WITNESS, N_("Witness")),
    (PersonRole.VICTIM, N_("Victim")),
)
SEXES = ((Sex.MALE, N_("Male")), (Sex.FEMALE, N_("Female")))
AGES = (("adult", N_("Adult")), ("minor", N_("Minor")))
