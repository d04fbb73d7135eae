"""The duty room's wall: rooms, custody clocks, alarms, vans and health, live.

The page is rendered once; its panels' scripts (``static/wall/``) load their data from the API
with the session cookie and follow the live stream. What the scripts cannot learn from the API
comes from here: the centre's time zone (every time on the wall is shown in it), how often to
reload without an event, what the user may change, and the words for every kind the panels show
(scripts hold no text of their own).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from central.alarm_rules import ALARM_KINDS
from central.api.deps import SettingsDep
from central.auth import Role
from central.web.deps import TemplatesDep, require_page_roles
from central.web.pages import page_context
from central.web.sessions import WebSession
from central.web.wall_map import map_context

router = APIRouter(include_in_schema=False)
WallUser = Annotated[WebSession, require_page_roles(Role.ADMIN, Role.CENTRE, Role.OPS)]


def N_(message: str) -> str:  # noqa: N802 - N_ is the name pybabel extracts by default
    """Mark ``message`` for the catalogs; the template translates it with ``_()``."""
    return message


# Every alarm kind in words (docs/alarms.md); the template translates them with _().
ALARM_KIND_WORDS: Final = {
    "door_forced": N_("Cabinet door forced"),
    "tamper": N_("Cabinet tampered with"),
    "power_fail": N_("Cabinet power failed"),
    "strap_opened": N_("Band strap opened"),
    "band_tamper": N_("Band tampered with"),
    "heart_rate_alarm": N_("Heart rate alarm"),
    "contact_lost": N_("Band lost skin contact"),
    "battery_low": N_("Band battery low"),
    "band_absent": N_("Band not heard"),
    "outbox_full": N_("Agent outbox full"),
    "disk_full": N_("Agent disk full"),
    "agent_reset": N_("Agent lost its outbox"),
    "agent_offline": N_("Agent offline"),
    "device_offline": N_("Device offline"),
    "wrong_room": N_("Person in the wrong room"),
    "person_not_heard": N_("Person not heard by any scanner"),
    "custody_red": N_("Custody limit near"),
    "custody_black": N_("Custody limit passed"),
    "plan_violation": N_("Plan breaks a rule"),
    "van_late": N_("Escort van late"),
}
assert set(ALARM_KIND_WORDS) == set(ALARM_KINDS), "every alarm kind needs its words"

# Room types in words, for the timeline's row labels.
ROOM_TYPE_WORDS: Final = {
    "interrogation": N_("Interrogation"),
    "inquiry": N_("Inquiry"),
    "waiting": N_("Waiting"),
    "minors": N_("Minors"),
    "one_stop": N_("One-stop"),
    "sobering": N_("Sobering"),
    "identification": N_("Identification"),
    "medical": N_("Medical"),
}


def wall_context(role: Role, timezone: str, refresh_seconds: float) -> dict[str, Any]:
    """What the panels' templates need beside base.html's context."""
    return {
        "wall": {
            "timezone": timezone,
            "refresh_seconds": refresh_seconds,
            # Rooms change state by centre and admin only (PATCH /api/v1/rooms); the schedule
            # and the persons name people, which operations never see.
            "can_edit_rooms": role in (Role.CENTRE, Role.ADMIN),
            "sees_persons": role is not Role.OPS,
            "alarm_kinds": ALARM_KIND_WORDS,
            "room_types": ROOM_TYPE_WORDS,
        }
    }


@router.get("/wall")
def wall_page(
    request: Request, templates: TemplatesDep, settings: SettingsDep, session: WallUser
) -> Response:
    """The duty room's wall."""
    more = wall_context(session.principal.role, settings.timezone, settings.wall_refresh_seconds)
    return templates.response(
        request, "wall.html", page_context(session, wall_map=map_context(settings), **more)
    )
