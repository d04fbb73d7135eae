"""Form bodies of the pages (``application/x-www-form-urlencoded``, what browsers and htmx
send), read with bounds: a hostile body is a 4xx with a reason, never a 500.

Parsed here rather than through Starlette's ``request.form()``, which needs python-multipart
and accepts multipart bodies (files) that no page takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
# The largest real form (a booking of 20 persons) is a few KiB.
MAX_FORM_BYTES = 64 * 1024
# That booking sends up to 10 fields a person and a dozen of its own: 212.
MAX_FIELDS = 300


class FormError(Exception):
    """A body that is not a readable form: ``status`` (400, 413, 415) and why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Form:
    """The fields of a form; a field sent twice keeps every value (:meth:`all`)."""

    fields: Mapping[str, tuple[str, ...]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> tuple[str, ...]:
        return self.fields.get(name, ())


async def read_form(request: Request) -> Form:
    """The request's form; an empty body is an empty form, whatever its declared type."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(413, f"a form is at most {MAX_FORM_BYTES} bytes")
    if not body:
        return Form(MappingProxyType({}))
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise FormError(415, f"a form is sent as {FORM_TYPE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(400, "the form is not UTF-8") from None
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (ValueError, UnicodeDecodeError):
        raise FormError(400, f"the form is not readable (at most {MAX_FIELDS} fields)") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return Form(MappingProxyType({name: tuple(values) for name, values in fields.items()}))
