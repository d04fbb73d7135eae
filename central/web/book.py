"""The booking form: a station books rooms before it sets off, with the plan's answer at once.

``GET /book`` shows the form; ``POST /book`` (htmx, or a plain form post without scripts)
reads it (``central/web/book_form.py``), checks it with the API's own ``BookingIn`` and books
through the API's own route function (``central/api/routes/bookings.py``), so the page holds
no rule of the plan and gives the answer the API gives. The answer is the form again, with:

- 201: each person's room and times, and the fast-lane code;
- 409: each person's rule in plain words, the plan's reason, the partial plan (who fits now,
  with room and times, and from when each of the others would), and a button that sends the
  same form with the suggested arrival;
- 422: each error beside its field.

htmx swaps 409 and 422 answers too (the page's ``htmx-config``). A station books for itself;
the centre and administrators choose the station.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError
from starlette.responses import Response

from central.api.booking_models import MAX_PERSONS, BookingIn, BookingOut
from central.api.deps import DbDep, ZoneDep
from central.api.problems import ProblemError
from central.api.routes.bookings import create_booking
from central.auth import Role
from central.web import book_form, booking_view
from central.web.book_form import Message, Reading
from central.web.deps import CsrfFormDep, TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
Booker = Annotated[WebSession, require_page_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]

MSG_NOT_BOOKED = book_form.N_("Not booked: the centre could not take the booking now.")
_MAX_STATIONS = 200


def _blank(zone: ZoneInfo) -> Reading:
    """A new form: arriving in an hour (on a quarter), one adult male suspect brought in now."""
    now = datetime.now(zone).replace(second=0, microsecond=0)
    arrival = now + timedelta(minutes=60 + (-now.minute) % 15)
    values = {
        "station": "",
        "case_id": "",
        "case_type": "",
        "officers": "2",
        "expected_arrival": book_form.local_input(arrival, zone),
        "session_minutes": "60",
        "van": "",
        "female_staff": "",
        "needs.recording": "on",
        "needs.interpreter": "",
        "needs.guardian": "",
    }
    return Reading(values, [_new_person(now, zone)], {}, {}, [0])


def _new_person(now: datetime, zone: ZoneInfo) -> dict[str, str]:
    person = dict.fromkeys((*book_form.PERSON_TEXT, *book_form.PERSON_TIMES), "")
    person.update(dict.fromkeys(book_form.PERSON_FLAGS, ""))
    person.update(book_form.PERSON_DEFAULTS)
    person["legal_basis"] = "criminal_summons"
    person["brought_in_at"] = book_form.local_input(now, zone)
    return person


def _stations(db: sqlite3.Connection) -> list[str]:
    """Stations the centre has users for or bookings of: suggestions for the station field."""
    rows = db.execute(
        "SELECT station FROM users WHERE station IS NOT NULL "
        "UNION SELECT station FROM bookings ORDER BY 1 LIMIT ?",
        (_MAX_STATIONS,),
    )
    return [str(row[0]) for row in rows]


def _context(
    session: WebSession,
    reading: Reading,
    zone: ZoneInfo,
    db: sqlite3.Connection,
    *,
    booked: booking_view.BookingCard | None = None,
    refused: booking_view.Refusal | None = None,
) -> dict[str, Any]:
    choose_station = session.principal.role is not Role.STATION
    now = datetime.now(zone).replace(second=0, microsecond=0)
    return page_context(
        session,
        form=reading,
        errors=reading.errors,
        rows=list(zip(reading.rows, reading.persons, strict=True)),
        new_person=_new_person(now, zone),
        choose_station=choose_station,
        stations=_stations(db) if choose_station else [],
        max_persons=MAX_PERSONS,
        booked=booked,
        refused=refused,
        roles=book_form.ROLES,
        sexes=book_form.SEXES,
        ages=book_form.AGES,
        legal_bases=book_form.LEGAL_BASES,
        timezone=zone.key,
    )


def _answer(
    request: Request, templates: TemplatesDep, context: dict[str, Any], status: int
) -> Response:
    # htmx swaps the form in place; a plain post (no scripts) gets the whole page.
    name = "_book_form.html" if request.headers.get("hx-request") == "true" else "book.html"
    return templates.response(request, name, context, status_code=status)


@router.get("/book")
def book_page(
    request: Request, templates: TemplatesDep, session: Booker, db: DbDep, zone: ZoneDep
) -> Response:
    """The booking form."""
    return templates.response(request, "book.html", _context(session, _blank(zone), zone, db))


@router.post("/book")
def book_submit(
    request: Request,
    templates: TemplatesDep,
    session: Booker,
    form: CsrfFormDep,
    db: DbDep,
    zone: ZoneDep,
) -> Response:
    """Book: the form again with the plan's answer (201), the refusal (409) or the field
    errors (422)."""
    principal = session.principal
    reading = book_form.read(form, zone, choose_station=principal.role is not Role.STATION)
    body: BookingIn | None = None
    try:
        body = BookingIn.model_validate(reading.body)
    except ValidationError as exc:
        book_form.place_errors(reading, exc.errors(include_url=False, include_input=False))
    if body is None or reading.errors:
        return _answer(request, templates, _context(session, reading, zone, db), 422)
    try:
        booked: BookingOut = create_booking(request, db, principal, body)
    except ProblemError as exc:
        if exc.status_code == 409 and exc.extensions.get("persons"):
            refused = booking_view.refusal(
                exc.extensions.get("persons"),
                exc.extensions.get("suggested_arrival"),
                zone,
                exc.extensions.get("partial_plan"),
            )
            context = _context(session, reading, zone, db, refused=refused)
            return _answer(request, templates, context, 409)
        return _refused(request, templates, session, reading, zone, db, exc)
    except HTTPException as exc:
        return _refused(request, templates, session, reading, zone, db, exc)
    context = _context(session, reading, zone, db, booked=booking_view.card(booked, zone))
    return _answer(request, templates, context, 201)


def _refused(
    request: Request,
    templates: TemplatesDep,
    session: WebSession,
    reading: Reading,
    zone: ZoneInfo,
    db: sqlite3.Connection,
    exc: HTTPException,
) -> Response:
    """A refusal about one field (arrival in the past, no station chosen) beside that field;
    anything else above the form."""
    detail = exc.detail if isinstance(exc.detail, str) else ""
    name, message = book_form.refused_field(detail)
    if not name:
        message = Message(MSG_NOT_BOOKED)
    reading.errors[name] = message
    # The page's htmx-config swaps 409, 422 and 503 answers; a refusal about a field is a 422.
    status = exc.status_code if exc.status_code in (409, 503) and not name else 422
    return _answer(request, templates, _context(session, reading, zone, db), status)
