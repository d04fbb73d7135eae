"""The fast-lane door: a code typed or scanned, the booking's card, verify, bands, entry.

Every action is a page route that calls what the API route of the same step calls (the
planning service for verify and entry, :mod:`central.bands` for bands) and answers the card
again: an htmx fragment (``templates/door/card.html``) when htmx asks, the whole page when a
plain form was sent. A refusal answers the card with the reason beside the field, with the
API's status (404, 409, 422, 429): ``static/door.js`` lets htmx show those.

A code look-up that finds nothing costs a token of the user's bucket (:class:`MissLimit`):
codes are 8 of 32 letters, and a desk types a handful an hour, so a run of misses is someone
guessing, answered 429 until the bucket refills.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import ValidationError
from starlette.responses import Response

from central import bands
from central.api.deps import DbDep, SettingsDep, WriteDbDep, actor_of
from central.api.rate_limit import TokenBuckets, retry_after
from central.api.routes.bands import BandIn
from central.api.routes.bookings import BookingId, PersonId
from central.auth import Role
from central.planning import ErrorKind, PlanningError, PlanningService
from central.store import write_transaction
from central.web import door_reads
from central.web.deps import CsrfFormDep, TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
DeskUser = Annotated[WebSession, require_page_roles(Role.CENTRE, Role.ADMIN)]
CodeQuery = Annotated[str, Query(max_length=64)]

# Misses of the code look-up per user: 10 at once, then one every 10 s.
MISS_BURST = 10
MISS_RATE = 0.1


class MissLimit:
    """Token buckets of code look-ups that found nothing, one per user name; thread-safe (page
    routes run in worker threads)."""

    def __init__(self, rate: float = MISS_RATE, burst: int = MISS_BURST) -> None:
        self._buckets = TokenBuckets(rate, burst)
        self._lock = threading.Lock()

    def wait(self, user: str) -> float:
        with self._lock:
            return self._buckets.wait(user, time.monotonic())

    def missed(self, user: str) -> None:
        with self._lock:
            self._buckets.take(user, time.monotonic())


def _miss_limit(request: Request) -> MissLimit:
    # One per application, made at its first look-up (the app's state outlives requests).
    limit = getattr(request.app.state, "door_misses", None)
    if not isinstance(limit, MissLimit):
        limit = MissLimit()
        request.app.state.door_misses = limit
    return limit


@dataclass(frozen=True, slots=True)
class DoorError:
    """A refusal shown beside its field: ``where`` (``code``, ``verify``, ``enter``, or
    ``band`` with ``person``), ``what`` (the template's key for the sentence) and values."""

    where: str
    what: str
    person: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


def _planning(request: Request) -> PlanningService:
    service: PlanningService = request.app.state.planning
    return service


def _answer(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: WebSession,
    *,
    card: door_reads.BookingCard | None = None,
    code: str = "",
    error: DoorError | None = None,
    status_code: int = 200,
    entry_seconds: float | None = None,
) -> Response:
    """The card fragment for htmx, else the whole page (a plain form or a typed URL)."""
    context = page_context(session, card=card, code=code, error=error, entry_seconds=entry_seconds)
    if request.headers.get("hx-request") == "true":
        return templates.response(request, "door/card.html", context, status_code=status_code)
    arrivals = door_reads.arrivals(db, _planning(request), settings, datetime.now(UTC))
    return templates.response(
        request, "door.html", context | {"arrivals": arrivals}, status_code=status_code
    )


def _card(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: WebSession,
    booking_id: str,
) -> door_reads.BookingCard:
    return door_reads.booking_card(
        db, _planning(request), settings, session.principal, booking_id, datetime.now(UTC)
    )


def _lookup(
    request: Request, db: DbDep, settings: SettingsDep, session: WebSession, typed: str
) -> tuple[door_reads.BookingCard | None, str, DoorError | None, int]:
    code = door_reads.normalise_code(typed)
    if not code:
        return None, code, None, 200
    user = session.principal.name
    limit = _miss_limit(request)
    wait = limit.wait(user)
    if wait > 0:
        seconds = int(retry_after(wait))
        return None, code, DoorError("code", "rate_limited", values={"seconds": seconds}), 429
    if not door_reads.code_is_well_formed(code):
        limit.missed(user)
        return None, code, DoorError("code", "malformed"), 422
    booking_id = door_reads.booking_of_code(db, code)
    if booking_id is None:
        limit.missed(user)
        return None, code, DoorError("code", "unknown"), 404
    return _card(request, db, settings, session, booking_id), code, None, 200


@router.get("/door")
def door_page(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
    code: CodeQuery = "",
) -> Response:
    """The fast-lane door; ``?code=`` shows that booking's card (the form without htmx)."""
    card, normal, error, status_code = _lookup(request, db, settings, session, code)
    arrivals = door_reads.arrivals(db, _planning(request), settings, datetime.now(UTC))
    return templates.response(
        request,
        "door.html",
        page_context(
            session,
            card=card,
            code=normal,
            error=error,
            entry_seconds=None,
            arrivals=arrivals,
        ),
        status_code=status_code,
    )


@router.get("/door/card")
def door_card(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
    code: CodeQuery = "",
) -> Response:
    """The card of the booking whose code was typed or scanned (404 for none)."""
    card, normal, error, status_code = _lookup(request, db, settings, session, code)
    headers = None
    if error is not None and error.what == "rate_limited":
        headers = {"Retry-After": str(error.values["seconds"])}
    return templates.response(
        request,
        "door/card.html",
        page_context(session, card=card, code=normal, error=error, entry_seconds=None),
        status_code=status_code,
        headers=headers,
    )


@router.get("/door/bookings/{booking_id}/persons")
def door_persons(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
    booking_id: BookingId,
) -> Response:
    """Each person's clock, band and alarms, as out-of-band fragments: the live refresh of a
    card that keeps what is typed in its fields."""
    card = _card(request, db, settings, session, booking_id)
    return templates.response(request, "door/states.html", page_context(session, card=card))


@router.get("/door/arrivals")
def door_arrivals(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
) -> Response:
    """Today's expected arrivals with their vans (the list's live refresh)."""
    arrivals = door_reads.arrivals(db, _planning(request), settings, datetime.now(UTC))
    return templates.response(
        request, "door/arrivals.html", page_context(session, arrivals=arrivals)
    )


def _refused(exc: PlanningError, where: str) -> tuple[DoorError, int]:
    if exc.kind is ErrorKind.NOT_FOUND:
        return DoorError(where, "not_found"), status.HTTP_404_NOT_FOUND
    if exc.state is not None:
        return (
            DoorError(where, "state", values={"state": exc.state}),
            status.HTTP_409_CONFLICT,
        )
    if where == "verify" and exc.kind is ErrorKind.CONFLICT:
        return DoorError(where, "code_mismatch"), status.HTTP_409_CONFLICT
    return DoorError(where, "refused"), status.HTTP_409_CONFLICT


@router.post("/door/bookings/{booking_id}/verify")
def door_verify(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
    form: CsrfFormDep,
    booking_id: BookingId,
) -> Response:
    """Verify the booking with its code (``POST …/verified``); arrives the unit if need be."""
    _card(request, db, settings, session, booking_id)  # 404/403 before any change
    code = door_reads.normalise_code(form.get("code"))[: door_reads.MAX_CODE_CHARS]
    error, status_code = None, 200
    try:
        _planning(request).verified(
            booking_id, code, datetime.now(UTC), actor=actor_of(request, session.principal)
        )
    except PlanningError as exc:
        error, status_code = _refused(exc, "verify")
    card = _card(request, db, settings, session, booking_id)
    return _answer(
        request, templates, db, settings, session, card=card, error=error, status_code=status_code
    )


@router.post("/door/bookings/{booking_id}/entered")
def door_entered(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    settings: SettingsDep,
    session: DeskUser,
    _form: CsrfFormDep,
    booking_id: BookingId,
) -> Response:
    """The unit enters the handling area (``POST …/entered``); shows arrival to entry."""
    _card(request, db, settings, session, booking_id)
    error, status_code, seconds = None, 200, None
    try:
        seconds = _planning(request).entered(
            booking_id, datetime.now(UTC), actor=actor_of(request, session.principal)
        )
    except PlanningError as exc:
        error, status_code = _refused(exc, "enter")
    card = _card(request, db, settings, session, booking_id)
    return _answer(
        request,
        templates,
        db,
        settings,
        session,
        card=card,
        error=error,
        status_code=status_code,
        entry_seconds=seconds,
    )


@router.post("/door/bookings/{booking_id}/persons/{person}/band")
def door_bind(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    write_db: WriteDbDep,
    settings: SettingsDep,
    session: DeskUser,
    form: CsrfFormDep,
    booking_id: BookingId,
    person: PersonId,
) -> Response:
    """Put a band on a person (``POST …/persons/{person}/band``); a band worn by someone else
    is refused with who wears it."""
    _card(request, db, settings, session, booking_id)
    typed = form.get("band").strip()
    error, status_code = None, 200
    try:
        band = BandIn.model_validate({"band": typed}).band
    except ValidationError:
        error = DoorError("band", "empty" if not typed else "malformed", person)
        status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    else:
        try:
            with write_transaction(write_db):
                bands.bind(
                    write_db,
                    booking_id,
                    person,
                    band,
                    actor_of(request, session.principal),
                    datetime.now(UTC),
                )
        except bands.BookingNotFoundError:
            error, status_code = DoorError("band", "no_person", person), 404
        except bands.BindingConflictError as exc:
            status_code = status.HTTP_409_CONFLICT
            if exc.holder is None:
                error = DoorError("band", "not_now", person)
            elif exc.holder["person"] == person and exc.holder["booking"] == booking_id:
                error = DoorError("band", "wears_another", person, dict(exc.holder))
            else:
                error = DoorError("band", "holder", person, dict(exc.holder))
    card = _card(request, db, settings, session, booking_id)
    return _answer(
        request, templates, db, settings, session, card=card, error=error, status_code=status_code
    )


@router.post("/door/bookings/{booking_id}/persons/{person}/unbind")
def door_unbind(
    request: Request,
    templates: TemplatesDep,
    db: DbDep,
    write_db: WriteDbDep,
    settings: SettingsDep,
    session: DeskUser,
    _form: CsrfFormDep,
    booking_id: BookingId,
    person: PersonId,
) -> Response:
    """Take a person's band off (``DELETE …/persons/{person}/band``)."""
    _card(request, db, settings, session, booking_id)
    error, status_code = None, 200
    try:
        with write_transaction(write_db):
            bands.unbind(
                write_db,
                booking_id,
                person,
                actor_of(request, session.principal),
                datetime.now(UTC),
            )
    except bands.BookingNotFoundError:
        error, status_code = DoorError("band", "no_band", person), 404
    card = _card(request, db, settings, session, booking_id)
    return _answer(
        request, templates, db, settings, session, card=card, error=error, status_code=status_code
    )
