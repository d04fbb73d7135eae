"""Field types shared by the request models: bounded so that no value can make a conversion,
a sum or the store fail later."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _plausible(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("must be between 2000 and 2100")
    return moment


_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _written_out(value: object) -> object:
    # pydantic also reads a number (or a numeric string in a query) as seconds since 1970,
    # which the OpenAPI's date-time does not allow and no client means.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _ISO_DATE_TIME.match(value) is None:
        raise ValueError("must be an ISO 8601 date-time such as 2026-12-01T09:30:00+08:00")
    return value


# An aware time a centre can mean (year 0001 or 9999 overflow the moment they are shifted).
Instant = Annotated[AwareDatetime, BeforeValidator(_written_out), AfterValidator(_plausible)]


def _encodable(text: str) -> str:
    # JSON may escape a lone surrogate (\ud800); Python reads it, and SQLite's UTF-8 binding
    # then fails deep inside a handler.
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    return text


# Free text from a body: valid Unicode (lengths are bounded where it is used).
Text = Annotated[str, AfterValidator(_encodable)]
