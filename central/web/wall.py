"""The duty room's wall: rooms, custody clocks, alarms, vans and health, live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from central.api.deps import SettingsDep
from central.auth import Role
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession
from central.web.wall_map import map_context

router = APIRouter(include_in_schema=False)
WallUser = Annotated[WebSession, require_page_roles(Role.ADMIN, Role.CENTRE, Role.OPS)]


@router.get("/wall")
def wall_page(
    request: Request, templates: TemplatesDep, session: WallUser, settings: SettingsDep
) -> Response:
    """The duty room's wall."""
    return templates.response(
        request, "wall.html", page_context(session, wall_map=map_context(settings))
    )
