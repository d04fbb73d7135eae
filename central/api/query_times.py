"""Times in query strings (``since``, ``from``, ``to``, ``date``): a day or an instant.

Accepted, exactly what RFC 3339 calls a ``full-date`` and a ``date-time`` (the OpenAPI's
``format: date`` and ``format: date-time``):

- a day, ``2026-12-05``: a day of the centre (setting ``timezone``). As a lower bound it is the
  day's first moment; as an upper bound (``to``, exclusive) the first moment of the next day, so
  that ``from=2026-12-05&to=2026-12-05`` is that whole day;
- an instant with its offset, ``2026-12-05T09:30:00+08:00`` or ``2026-12-05T01:30:00Z``
  (``T`` and ``Z`` in either case, a fraction of a second of any length, kept to microseconds).
  In a URL the ``+`` is written ``%2B``: a bare ``+`` is read as a space.

Refused (422, the parameter named in the answer's location): a date-time without an offset (it
names no moment: the client's zone is not known here), one whose ``+`` arrived as a space, one
without seconds or with a space for ``T``, a calendar date or time that does not exist, and
anything before 2000 or from 2100 on (:mod:`central.api.fields`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from central.api.fields import EARLIEST, LATEST

_DATE = r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
_OFFSET = r"(?P<zulu>[Zz])|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2})"
_DAY = re.compile(_DATE)
_INSTANT = re.compile(f"{_DATE}[Tt]{_TIME}(?:{_OFFSET})?")
# "…T09:30:00 08:00": a "+08:00" sent unescaped in a URL, its "+" decoded as a space.
_PLUS_AS_SPACE = re.compile(f"{_DATE}[Tt]{_TIME} [0-9]{{2}}:[0-9]{{2}}")
# A date and a time, but not in RFC 3339's shape (no seconds, a space for T, an offset
# without its colon): worth telling apart from text that is no time at all.
_LOOKS_LIKE_A_TIME = re.compile(f"{_DATE}[Tt ][0-9]{{2}}:[0-9]{{2}}")

EXAMPLE = "2026-12-05T09:30:00+08:00"
_FORMS = f"a date such as 2026-12-05 or a date-time with an offset such as {EXAMPLE}"
NO_OFFSET = (
    "a date-time needs an offset: add one such as +08:00 (written %2B08:00 in a URL, where a "
    "bare + means a space) or Z"
)
PLUS_AS_SPACE = (
    "the offset's + arrived as a space: write it %2B08:00 in a URL (a bare + means a space)"
)
NOT_RFC_3339 = f"write {_FORMS} (T between date and time, seconds included)"
NOT_A_TIME = f"must be {_FORMS}"
NO_SUCH_DAY = "no such date or time in the calendar"
OUT_OF_RANGE = "must be between 2000 and 2100"


class QueryTimeError(ValueError):
    """A query time refused; the message says what to send instead."""


def parse_query_time(text: str) -> date | datetime:
    """A ``date`` for a day, an aware ``datetime`` for an instant; :class:`QueryTimeError`
    otherwise. Pure: what a day means is decided by :func:`lower_bound` and its siblings."""
    if (day := _DAY.fullmatch(text)) is not None:
        found = _calendar_day(day)
        if not EARLIEST.year <= found.year < LATEST.year:
            raise QueryTimeError(OUT_OF_RANGE)
        return found
    instant = _INSTANT.fullmatch(text)
    if instant is None:
        if _PLUS_AS_SPACE.fullmatch(text):
            raise QueryTimeError(PLUS_AS_SPACE)
        raise QueryTimeError(NOT_RFC_3339 if _LOOKS_LIKE_A_TIME.match(text) else NOT_A_TIME)
    if instant["zulu"] is None and instant["sign"] is None:
        raise QueryTimeError(NO_OFFSET)
    # The year first: near year 1 or 9999, shifting by the offset to compare would overflow.
    if not EARLIEST.year - 1 <= int(instant["year"]) <= LATEST.year:
        raise QueryTimeError(OUT_OF_RANGE)
    moment = _moment(instant)
    if not EARLIEST <= moment < LATEST:
        raise QueryTimeError(OUT_OF_RANGE)
    return moment


def _calendar_day(found: re.Match[str]) -> date:
    try:
        return date(int(found["year"]), int(found["month"]), int(found["day"]))
    except ValueError:
        raise QueryTimeError(NO_SUCH_DAY) from None


def _moment(found: re.Match[str]) -> datetime:
    zone: tzinfo = UTC
    if found["sign"] is not None:
        hours, minutes = int(found["off_hour"]), int(found["off_minute"])
        if hours > 23 or minutes > 59:
            raise QueryTimeError(NO_SUCH_DAY)
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-offset if found["sign"] == "-" else offset)
    # Past microseconds, digits are dropped (truncated, never rounded up into the next second).
    micro = int((found["fraction"] or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(found["year"]),
            int(found["month"]),
            int(found["day"]),
            int(found["hour"]),
            int(found["minute"]),
            int(found["second"]),  # a leap second (60) is refused: datetime has none
            micro,
            tzinfo=zone,
        )
    except ValueError:
        raise QueryTimeError(NO_SUCH_DAY) from None


def lower_bound(value: date | datetime, zone: tzinfo) -> datetime:
    """``since``/``from``: an instant as it is, a day from its first moment in ``zone``."""
    if isinstance(value, datetime):
        return value
    # Midnight of a zone that skips it on a DST change resolves to the first hour that exists.
    return datetime.combine(value, time(0), zone)


def upper_bound(value: date | datetime, zone: tzinfo) -> datetime:
    """``to`` (exclusive): an instant as it is, a day up to the first moment of the next."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1), time(0), zone)


def day_of(value: date | datetime, zone: tzinfo) -> date:
    """``date``: a day as it is, an instant's day in ``zone``."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date()
    return value


def _validate(value: Any) -> date | datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("query_time", NOT_A_TIME)
    try:
        return parse_query_time(value)
    except QueryTimeError as exc:
        # A custom error: pydantic prints its message as it is, without "Value error, ".
        raise PydanticCustomError("query_time", str(exc)) from None


# The OpenAPI states what is accepted; pydantic does no parsing of its own (its datetime
# would also take seconds since 1970, and a naive time).
QueryTime = Annotated[
    date | datetime,
    PlainValidator(_validate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "examples": ["2026-12-05", EXAMPLE, "2026-12-05T01:30:00Z"],
        }
    ),
]
