"""The booking form: a station books rooms before it sets off, with the plan's answer at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from central.auth import Role
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
Booker = Annotated[WebSession, require_page_roles(Role.STATION, Role.CENTRE, Role.ADMIN)]


@router.get("/book")
def book_page(request: Request, templates: TemplatesDep, session: Booker) -> Response:
    """The booking form."""
    return templates.response(request, "book.html", page_context(session))
