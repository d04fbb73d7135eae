"""A station's own bookings: today's and upcoming, what the centre changed, the fast-lane code.

``GET /bookings/mine`` lists the station's bookings expected from the start of today (in the
centre's zone) and any still in progress, each as a card (``_booking_card.html``): the status
in words, each person's room and times, the van's ETA when it runs late, and the fast-lane
code large and as a QR code drawn on the server. ``static/my_bookings.js`` keeps them live:
on a stream event about a shown booking it reloads that card from
``GET /bookings/mine/{id}/card`` and shows what moved; on the stream's (re)start it reloads the
list from ``GET /bookings/mine/list``. Bookings are read through the API's own
``load_booking``, with the user's station scope.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from central.api.deps import DbDep, ZoneDep
from central.api.routes.bookings import load_booking
from central.auth import Role
from central.web import booking_view
from central.web.book_form import N_
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession
from edge_agent.wire import format_time

router = APIRouter(include_in_schema=False)
StationUser = Annotated[WebSession, require_page_roles(Role.STATION)]
BookingId = Annotated[str, Path(max_length=64, pattern=r"^bk-[0-9a-f]{12}$")]

# A station has a handful of bookings a day; a week ahead stays well under this.
MAX_SHOWN = 100
_IN_PROGRESS = ("arrived", "verified", "in_area")
# What the page's script needs in words: the causes of a re-plan, the labels of a change.
CAUSES = {
    "room_changed": N_("a room changed state"),
    "late_van": N_("the van runs late"),
    "arrival": N_("the unit arrived at another time"),
    "session_started": N_("a session started at another time"),
    "session_ended": N_("a session ended early"),
    "overrun": N_("a session ran over"),
    "custody_red": N_("a custody clock turned red"),
    "released": N_("rooms were freed"),
    "improver": N_("the plan was improved"),
    "booking_changed": N_("the booking was changed"),
    "cancelled": N_("the booking was cancelled"),
    "no_show": N_("the unit was marked as not come"),
    "arrived": N_("the unit arrived"),
}


def _shown_ids(db: sqlite3.Connection, station: str, zone: ZoneInfo) -> list[str]:
    """Today's and later bookings of ``station`` (centre's day), and any still in progress."""
    today = datetime.combine(datetime.now(zone).date(), time(), tzinfo=zone)
    placeholders = ", ".join("?" for _ in _IN_PROGRESS)
    rows = db.execute(
        "SELECT id FROM bookings WHERE station = ? AND "  # noqa: S608 - placeholders only
        f"(expected_arrival >= ? OR status IN ({placeholders})) "
        "ORDER BY expected_arrival, id LIMIT ?",
        (station, format_time(today.astimezone(UTC)), *_IN_PROGRESS, MAX_SHOWN),
    )
    return [str(row[0]) for row in rows]


def _cards(
    db: sqlite3.Connection, session: WebSession, zone: ZoneInfo
) -> list[booking_view.BookingCard]:
    principal = session.principal
    station = principal.station or ""
    return [
        booking_view.card(load_booking(db, booking_id, principal, with_request=False), zone)
        for booking_id in _shown_ids(db, station, zone)
    ]


def _context(session: WebSession, zone: ZoneInfo, **extra: Any) -> dict[str, Any]:
    return page_context(session, timezone=zone.key, causes=CAUSES, **extra)


@router.get("/bookings/mine")
def my_bookings(
    request: Request, templates: TemplatesDep, session: StationUser, db: DbDep, zone: ZoneDep
) -> Response:
    """A station's own bookings."""
    context = _context(session, zone, cards=_cards(db, session, zone))
    return templates.response(request, "my_bookings.html", context)


@router.get("/bookings/mine/list")
def my_bookings_list(
    request: Request, templates: TemplatesDep, session: StationUser, db: DbDep, zone: ZoneDep
) -> Response:
    """The list alone, for the page's script to reload when its stream (re)starts."""
    context = _context(session, zone, cards=_cards(db, session, zone))
    return templates.response(request, "_my_bookings_list.html", context)


@router.get("/bookings/mine/{booking_id}/card")
def my_booking_card(
    request: Request,
    templates: TemplatesDep,
    session: StationUser,
    db: DbDep,
    zone: ZoneDep,
    booking_id: BookingId,
) -> Response:
    """One booking's card (404 for none, 403 for another station's, as the API answers)."""
    booking = load_booking(db, booking_id, session.principal, with_request=False)
    context = _context(session, zone, card=booking_view.card(booking, zone))
    return templates.response(request, "_booking_card.html", context)
