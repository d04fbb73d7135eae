"""Every error answer in one shape: RFC 9457 problem details, ``application/problem+json``.

A problem carries ``type`` (``about:blank``: the status says it all), ``title`` (the status
phrase), ``status``, ``detail`` (one sentence for a person) and, for field errors, ``errors``
(location and message of each). A booking the plan cannot take adds the rule each person broke,
the ``suggested_arrival`` and the ``partial_plan`` as extension members.

Nothing of the request comes back: pydantic's validation errors carry the offending ``input``
and a ``ctx`` that can quote it; both are dropped, and a location part that is not a plain
field name (a key the client made up may be a name or an id number) is masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException as FastAPIHTTPException
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A client that sends a hundred wrong fields learns about the first ones; the rest add nothing.
MAX_FIELD_ERRORS = 20
_MAX_MESSAGE = 300
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class FieldError(BaseModel):
    location: str = Field(description="Where: `body.persons.0.sex`, `query.limit`, …")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    # Extension members (RFC 9457 section 3.2) are allowed beside the standard ones.
    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="Field errors of a 422, first ones only"
    )


class RefusedPerson(BaseModel):
    person: str
    rule: str
    reason: str


class PlannedStay(BaseModel):
    kind: str = Field(description="`session` or `waiting`")
    room: str
    start: str
    end: str


class FitsNow(BaseModel):
    person: str
    assignments: list[PlannedStay]


class FitsLater(BaseModel):
    person: str
    arrival: str | None = Field(
        description="The earliest arrival from which the person fits beside those who fit now "
        "(15-minute steps, up to 4 hours later); null: not within that"
    )


class PartialPlan(BaseModel):
    """What the plan can take of a booking it cannot take whole; nothing of it is booked."""

    fits_now: list[FitsNow]
    fits_later: list[FitsLater]


class BookingRefusal(Problem):
    """A booking the plan cannot take: which rule (H1-H10) kept each person out."""

    persons: list[RefusedPerson] | None = None
    suggested_arrival: str | None = Field(
        default=None, description="When coming later would let every person in"
    )
    partial_plan: PartialPlan | None = Field(
        default=None,
        description="A new booking refused whole: who fits now (rooms and times), and from "
        "when each of the others would fit",
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ProblemError(FastAPIHTTPException):
    """An HTTP error with extension members for its problem answer."""

    def __init__(self, status_code: int, detail: str, **extensions: Any) -> None:
        super().__init__(status_code, detail)
        self.extensions = extensions


def problem(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [error.model_dump() for error in errors]
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _location(parts: tuple[Any, ...] | list[Any]) -> str:
    shown = [
        str(part)
        if isinstance(part, int) or (isinstance(part, str) and _FIELD_NAME.match(part))
        else "*"
        for part in parts
    ]
    return ".".join(shown)


def field_errors(raw: Sequence[Any]) -> list[FieldError]:
    """Location and message of each error, and nothing the client sent."""
    errors = []
    for item in list(raw)[:MAX_FIELD_ERRORS]:
        if not isinstance(item, dict):
            continue
        errors.append(
            FieldError(
                location=_location(item.get("loc", ())),
                message=str(item.get("msg", "invalid"))[:_MAX_MESSAGE],
            )
        )
    return errors


def allowed_methods(request: Request) -> str:
    """The methods the OpenAPI declares at this path. Starlette's 405 names only the methods of
    the first route that matched, and GET and POST of one resource are two routes. Where a
    fixed path and a template both match (``/bookings/verify``, ``/bookings/{booking_id}``),
    the one with fewer parameters is the resource."""
    found: dict[int, set[str]] = {}
    path = request.url.path
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern, parameters = re.subn(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.setdefault(parameters, set()).update(method.upper() for method in operations)
    if not found:
        return ", ".join(sorted(_page_methods(request)))
    methods = found[min(found)]
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return ", ".join(sorted(methods))


def _page_methods(request: Request) -> set[str]:
    """The methods the routes left out of the OpenAPI (the pages, ``/docs``) answer at this
    path: those for which a route matches fully. Starlette's own 405 names only the first
    route's (``GET /signin`` hides ``POST /signin``). A mount (``/static``) takes every method
    to its app, which answers its own 405: it is left to that answer."""
    routes = [route for route in request.app.routes if not isinstance(route, Mount)]
    methods: set[str] = set()
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            methods.add(method)
    return methods


async def on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    extensions = dict(getattr(exc, "extensions", {}))
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Outside the OpenAPI (/static, /docs) the Allow of the 405 itself stands.
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
    return problem(exc.status_code, detail, headers=headers, **extensions)


async def on_invalid_request(_request: Request, exc: Exception) -> ProblemResponse:
    raw = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = field_errors(raw)
    if not errors:
        return problem(422, "the request is not valid")
    first = errors[0]
    detail = f"{first.location}: {first.message}"
    if len(raw) > 1:
        detail += f" (and {len(raw) - 1} more)"
    return problem(422, detail, errors=errors)


async def on_unexpected(_request: Request, _exc: Exception) -> ProblemResponse:
    # The server logs the traceback; the client learns nothing about the internals.
    return problem(500, "internal error; the service logged it")


def _problem_content(
    model: type[Problem], description: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    declared: dict[str, Any] = {"description": description, "model": model}
    if headers:
        declared["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return declared


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_content(Problem, "The body could not be read"),
    401: _problem_content(
        Problem, "No valid bearer token", {"WWW-Authenticate": "The scheme to use: Bearer"}
    ),
    403: _problem_content(Problem, "Outside the role's or the station's scope"),
    404: _problem_content(Problem, "No such resource"),
    405: _problem_content(
        Problem, "Method not allowed", {"Allow": "Every method the resource serves"}
    ),
    409: _problem_content(Problem, "Conflicts with the current state"),
    413: _problem_content(Problem, "The body is larger than max_body_bytes"),
    422: _problem_content(Problem, "Invalid fields (see errors)"),
    429: _problem_content(
        Problem,
        "Rate limited",
        {"Retry-After": "Whole seconds until the next request may pass"},
    ),
    500: _problem_content(Problem, "Internal error"),
    503: _problem_content(Problem, "Not available now"),
    504: _problem_content(Problem, "A device's agent did not answer in time"),
}
"""Declared for every route (answers a route cannot give are declared too: they cost nothing
and one declaration keeps every route's OpenAPI the same)."""


def problems_in_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare problem answers under their real media type.

    FastAPI places a response model under ``application/json``; a problem is
    ``application/problem+json`` (RFC 9457 section 3)."""
    # Every problem model: the plain one and those with members of their own (a route's module
    # defines them, and is imported before the schema is built).
    models: list[type[Problem]] = [Problem, *Problem.__subclasses__()]
    refs = {f"#/components/schemas/{model.__name__}" for model in models}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for answer in operation.get("responses", {}).values():
                content = answer.get("content", {})
                json_content = content.get("application/json")
                if json_content and json_content.get("schema", {}).get("$ref") in refs:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema
