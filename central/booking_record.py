"""The planning service's own record of a booking, as it keeps it in ``bookings.body``.

The HTTP models (``central/api/booking_models.py``) are converted to this record at the edge;
the service stores and reads only the record, so the API may change without touching what is
stored, and what is stored may change without touching the API.

Format, version 1 (JSON object; every key present, none other)::

    {"version": 1, "station": str|null, "case_id": str, "case_type": str, "officers": int,
     "expected_arrival": time, "session_minutes": int,
     "needs": {"recording": bool, "interpreter": bool, "guardian": bool},
     "female_staff": bool, "walk_in": bool, "waitlist": bool, "van": str|null,
     "persons": [{"id": str, "role": str, "minor": bool, "sex": str, "brought_in_at": time,
                  "legal_basis": str, "co_suspect_group": str|null,
                  "sexual_abuse_victim": bool, "intoxicated": bool,
                  "guardian_at": time|null, "session_minutes": int|null}, ...]}

Times are ISO 8601 with the offset the station sent (a booking answered back reads as sent).
``station`` is the station the request named (null when a station's own token booked); the
booking's station is its own column.

Version 0 is what the releases before this record stored: the request model's JSON, no
``version`` key, optional keys possibly missing. :func:`upgrade` brings it to version 1 when
it is read; nothing is rewritten in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from scheduling.model import Booking, LegalBasis, Person, PersonRole, Sex, to_minute

VERSION = 1
# Further back than this from arrival is past every legal limit: a mistake, not a booking.
MAX_CUSTODY_BEFORE = timedelta(hours=48)


class RecordError(ValueError):
    """A booking record that is not valid: the message names the field and what is wrong."""


@dataclass(frozen=True, slots=True)
class Needs:
    recording: bool = False
    interpreter: bool = False
    guardian: bool = False  # a guardian or appropriate adult comes with the unit


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: str
    role: PersonRole
    minor: bool
    sex: Sex
    brought_in_at: datetime  # 到案
    legal_basis: LegalBasis
    co_suspect_group: str | None = None
    sexual_abuse_victim: bool = False
    intoxicated: bool = False
    guardian_at: datetime | None = None
    session_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class BookingChange:
    """What a station may change on a booking; ``None`` leaves a field as it is."""

    officers: int | None = None
    expected_arrival: datetime | None = None
    session_minutes: int | None = None
    needs: Needs | None = None
    female_staff: bool | None = None

    def names(self) -> list[str]:
        """The fields changed (never their values: they may describe persons)."""
        return sorted(f.name for f in fields(self) if getattr(self, f.name) is not None)


@dataclass(frozen=True, slots=True)
class BookingRecord:
    """A booking as the plan and the lifecycle need it; consistent by construction (a record
    that breaks a rule of :meth:`_consistent` raises :class:`RecordError`)."""

    VERSION: ClassVar[int] = VERSION

    case_id: str
    case_type: str
    officers: int
    expected_arrival: datetime
    session_minutes: int
    persons: tuple[PersonRecord, ...]
    station: str | None = None
    needs: Needs = Needs()
    female_staff: bool = False
    walk_in: bool = False
    waitlist: bool = False  # kept, unplaced, when it cannot be placed at once
    van: str | None = None  # the escort van's GPS device id

    def __post_init__(self) -> None:
        self._consistent()

    def _consistent(self) -> None:
        if not self.persons:
            raise RecordError("persons: at least one person")
        ids = [p.id for p in self.persons]
        if len(set(ids)) != len(ids):
            raise RecordError("persons: each person id must appear once in a booking")
        moments = [("expected_arrival", self.expected_arrival)]
        for index, person in enumerate(self.persons):
            moments.append((f"persons[{index}].brought_in_at", person.brought_in_at))
            if person.guardian_at is not None:
                moments.append((f"persons[{index}].guardian_at", person.guardian_at))
        for where, moment in moments:
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise RecordError(f"{where}: a time without a time zone")
        # Persons are named by their place in the list: an error quotes nothing they sent.
        for index, person in enumerate(self.persons):
            if person.brought_in_at > self.expected_arrival:
                raise RecordError(
                    f"persons[{index}].brought_in_at: after expected_arrival; "
                    "the clock runs from 到案, which comes before arrival"
                )
            if self.expected_arrival - person.brought_in_at > MAX_CUSTODY_BEFORE:
                raise RecordError(
                    f"persons[{index}].brought_in_at: more than 48 h before "
                    "arrival, past every legal limit"
                )
            if person.co_suspect_group is not None and person.role is not PersonRole.SUSPECT:
                raise RecordError(
                    f"persons[{index}].co_suspect_group: only suspects are co-suspects"
                )

    def changed(self, change: BookingChange) -> BookingRecord:
        """This booking with ``change`` applied; refused (RecordError) if it is inconsistent."""
        given = {f.name: getattr(change, f.name) for f in fields(change)}
        return replace(self, **{name: value for name, value in given.items() if value is not None})

    def to_booking(self, booking_id: str, station: str) -> Booking:
        """The booking as the planner sees it (minutes; a minor with a guardian coming is
        ready for questioning when the unit arrives)."""
        persons = []
        for person in self.persons:
            guardian_at = person.guardian_at
            if guardian_at is None and person.minor and self.needs.guardian:
                guardian_at = self.expected_arrival
            persons.append(
                Person(
                    id=person.id,
                    role=person.role,
                    minor=person.minor,
                    sex=person.sex,
                    brought_in_at=to_minute(person.brought_in_at),
                    legal_basis=person.legal_basis,
                    co_suspect_group=person.co_suspect_group,
                    sexual_abuse_victim=person.sexual_abuse_victim,
                    intoxicated=person.intoxicated,
                    guardian_at=None if guardian_at is None else to_minute(guardian_at),
                    session_minutes=person.session_minutes,
                )
            )
        return Booking(
            id=booking_id,
            station=station,
            case_id=self.case_id,
            case_type=self.case_type,
            officers=self.officers,
            expected_arrival=to_minute(self.expected_arrival),
            session_minutes=self.session_minutes,
            persons=tuple(persons),
            recording=self.needs.recording,
            interpreter=self.needs.interpreter,
            female_staff=self.female_staff,
            walk_in=self.walk_in,
        )

    # --- the stored form ---------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "station": self.station,
                "case_id": self.case_id,
                "case_type": self.case_type,
                "officers": self.officers,
                "expected_arrival": self.expected_arrival.isoformat(),
                "session_minutes": self.session_minutes,
                "needs": {
                    "recording": self.needs.recording,
                    "interpreter": self.needs.interpreter,
                    "guardian": self.needs.guardian,
                },
                "female_staff": self.female_staff,
                "walk_in": self.walk_in,
                "waitlist": self.waitlist,
                "van": self.van,
                "persons": [_person_json(p) for p in self.persons],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> BookingRecord:
        """Read a stored record of any known version; :class:`RecordError` if it is not one."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"booking record: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RecordError("booking record: not a JSON object")
        if "version" not in data:
            data = upgrade(data)
        if data["version"] != VERSION or type(data["version"]) is not int:
            raise RecordError(
                f"booking record: version {data['version']!r} is not one this release reads "
                f"(0 or {VERSION})"
            )
        return _read(data)


_BOOKING_DEFAULTS: dict[str, Any] = {
    "station": None,
    "female_staff": False,
    "walk_in": False,
    "waitlist": False,
    "van": None,
}
_NEEDS_DEFAULTS: dict[str, Any] = {"recording": False, "interpreter": False, "guardian": False}
_PERSON_DEFAULTS: dict[str, Any] = {
    "co_suspect_group": None,
    "sexual_abuse_victim": False,
    "intoxicated": False,
    "guardian_at": None,
    "session_minutes": None,
}


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """Version 0 (the request model's JSON, as stored before the record had a version) to
    version 1: the keys the request model let a client leave out get their defaults. What is
    not a version 0 body is passed on as it is, for the reader to refuse."""
    upgraded = {**_BOOKING_DEFAULTS, **data, "version": VERSION}
    needs = data.get("needs", {})
    upgraded["needs"] = {**_NEEDS_DEFAULTS, **needs} if isinstance(needs, dict) else needs
    persons = data.get("persons")
    if isinstance(persons, list):
        upgraded["persons"] = [
            {**_PERSON_DEFAULTS, **person} if isinstance(person, dict) else person
            for person in persons
        ]
    return upgraded


def _person_json(person: PersonRecord) -> dict[str, Any]:
    return {
        "id": person.id,
        "role": person.role.value,
        "minor": person.minor,
        "sex": person.sex.value,
        "brought_in_at": person.brought_in_at.isoformat(),
        "legal_basis": person.legal_basis.value,
        "co_suspect_group": person.co_suspect_group,
        "sexual_abuse_victim": person.sexual_abuse_victim,
        "intoxicated": person.intoxicated,
        "guardian_at": None if person.guardian_at is None else person.guardian_at.isoformat(),
        "session_minutes": person.session_minutes,
    }


# --- reading version 1, key by key ----------------------------------------------------------

_T = TypeVar("_T")


class _Reader:
    """Takes the keys of one JSON object, checking each; unknown keys are refused at the end."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise RecordError(f"{where or 'booking record'}: not a JSON object")
        self.data: dict[str, Any] = data
        self.where = where
        self.taken: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def maybe(self, key: str, kind: type[_T]) -> _T | None:
        if key not in self.data:
            raise RecordError(f"{self.at(key)}: missing")
        self.taken.add(key)
        value = self.data[key]
        # type() and not isinstance(): True is an int to Python, not to the record.
        if value is not None and type(value) is not kind:
            raise RecordError(f"{self.at(key)}: {kind.__name__} expected, got {value!r}")
        return value  # its type is checked just above

    def typed(self, key: str, kind: type[_T]) -> _T:
        value = self.maybe(key, kind)
        if value is None:
            raise RecordError(f"{self.at(key)}: {kind.__name__} expected, got null")
        return value

    def name(self, key: str) -> str | None:
        value = self.maybe(key, str)
        if value == "":
            raise RecordError(f"{self.at(key)}: empty")
        return value

    def text(self, key: str) -> str:
        value = self.typed(key, str)
        if not value:
            raise RecordError(f"{self.at(key)}: empty")
        return value

    def count(self, key: str) -> int | None:
        value = self.maybe(key, int)
        if value is not None and value < 1:
            raise RecordError(f"{self.at(key)}: {value} is not a positive number")
        return value

    def moment(self, key: str) -> datetime | None:
        value = self.maybe(key, str)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise RecordError(f"{self.at(key)}: not an ISO 8601 time: {value!r}") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise RecordError(f"{self.at(key)}: a time without a time zone")
        return moment

    def choice(self, key: str, kind: Callable[[str], _T]) -> _T:
        value = self.typed(key, str)
        try:
            return kind(value)
        except ValueError:
            raise RecordError(f"{self.at(key)}: {value!r} is not a known value") from None

    def done(self) -> None:
        extra = sorted(set(self.data) - self.taken)
        if extra:
            raise RecordError(f"{self.where or 'booking record'}: unknown keys {extra}")


def _required(reader: _Reader, key: str, value: _T | None) -> _T:
    if value is None:
        raise RecordError(f"{reader.at(key)}: null where a value is required")
    return value


def _read(data: dict[str, Any]) -> BookingRecord:
    top = _Reader(data, "")
    top.typed("version", int)
    needs = _Reader(top.typed("needs", dict), "needs")
    read_needs = Needs(
        needs.typed("recording", bool),
        needs.typed("interpreter", bool),
        needs.typed("guardian", bool),
    )
    needs.done()
    persons = []
    for index, item in enumerate(top.typed("persons", list)):
        person = _Reader(item, f"persons[{index}]")
        persons.append(
            PersonRecord(
                id=person.text("id"),
                role=person.choice("role", PersonRole),
                minor=person.typed("minor", bool),
                sex=person.choice("sex", Sex),
                brought_in_at=_required(person, "brought_in_at", person.moment("brought_in_at")),
                legal_basis=person.choice("legal_basis", LegalBasis),
                co_suspect_group=person.name("co_suspect_group"),
                sexual_abuse_victim=person.typed("sexual_abuse_victim", bool),
                intoxicated=person.typed("intoxicated", bool),
                guardian_at=person.moment("guardian_at"),
                session_minutes=person.count("session_minutes"),
            )
        )
        person.done()
    record = BookingRecord(
        station=top.name("station"),
        case_id=top.text("case_id"),
        case_type=top.text("case_type"),
        officers=_required(top, "officers", top.count("officers")),
        expected_arrival=_required(top, "expected_arrival", top.moment("expected_arrival")),
        session_minutes=_required(top, "session_minutes", top.count("session_minutes")),
        needs=read_needs,
        female_staff=top.typed("female_staff", bool),
        walk_in=top.typed("walk_in", bool),
        waitlist=top.typed("waitlist", bool),
        van=top.name("van"),
        persons=tuple(persons),
    )
    top.done()
    return record
