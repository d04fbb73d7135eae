"""A station's own bookings: today's and upcoming, what the centre changed, the fast-lane code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from central.auth import Role
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
StationUser = Annotated[WebSession, require_page_roles(Role.STATION)]


@router.get("/bookings/mine")
def my_bookings(request: Request, templates: TemplatesDep, session: StationUser) -> Response:
    """A station's own bookings."""
    return templates.response(request, "my_bookings.html", page_context(session))
