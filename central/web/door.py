"""The fast-lane door: a code typed or scanned, the booking's card, verify, bands, entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from central.auth import Role
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession

router = APIRouter(include_in_schema=False)
DeskUser = Annotated[WebSession, require_page_roles(Role.CENTRE, Role.ADMIN)]


@router.get("/door")
def door_page(request: Request, templates: TemplatesDep, session: DeskUser) -> Response:
    """The fast-lane door."""
    return templates.response(request, "door.html", page_context(session))
