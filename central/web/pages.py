"""The pages' router: the sign-in page, sign-out, and each role's home.

``GET /`` sends a browser without a session to ``/signin`` and a signed-in one to their role's
home: ``/bookings/mine`` for a station, ``/wall`` for centre, admin and operations. None of
these routes is in the OpenAPI (they answer HTML, not the API's JSON).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from central.api.deps import SettingsDep
from central.api.rate_limit import retry_after
from central.auth import Role
from central.users import MAX_PASSWORD_CHARS
from central.web import cookies, csrf, signin
from central.web.deps import (
    CsrfFormDep,
    OptionalSessionDep,
    SignedInDep,
    TemplatesDep,
)
from central.web.forms import FormError, read_form
from central.web.sessions import WebSession
from central.web.signin import Attempt, SignInGuard

router = APIRouter(include_in_schema=False)

MAX_NAME_CHARS = 64


def home_of(role: Role) -> str:
    return "/bookings/mine" if role is Role.STATION else "/wall"


def page_context(session: WebSession | None, **extra: Any) -> dict[str, Any]:
    """What base.html needs: the user (or None) and the CSRF token for forms and htmx."""
    user = None
    if session is not None:
        principal = session.principal
        user = {"name": principal.name, "role": principal.role.value, "station": principal.station}
    token = session.csrf_token if session is not None else None
    return {"user": user, "csrf_token": token} | extra


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@router.get("/")
def root(session: OptionalSessionDep) -> RedirectResponse:
    if session is None:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse(home_of(session.principal.role), status_code=303)


def _signin_page(
    request: Request,
    templates: TemplatesDep,
    settings: SettingsDep,
    *,
    status_code: int = 200,
    error: str | None = None,
    name: str = "",
    retry_seconds: int = 0,
) -> Response:
    token = csrf.new_token()
    headers = {"Retry-After": str(retry_seconds)} if retry_seconds else None
    answer = templates.response(
        request,
        "signin.html",
        page_context(None, error=error, name=name, retry_seconds=retry_seconds)
        | {"csrf_token": token},
        status_code=status_code,
        headers=headers,
    )
    cookies.set_signin_token(answer, request, token, always_secure=settings.web_secure_cookies)
    return answer


@router.get("/signin")
def signin_form(
    request: Request,
    templates: TemplatesDep,
    settings: SettingsDep,
    session: OptionalSessionDep,
) -> Response:
    if session is not None:
        return RedirectResponse(home_of(session.principal.role), status_code=303)
    return _signin_page(request, templates, settings)


@router.post("/signin")
async def signin_submit(
    request: Request, templates: TemplatesDep, settings: SettingsDep
) -> Response:
    try:
        form = await read_form(request)
    except FormError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    name = form.get("name").strip()[:MAX_NAME_CHARS]
    password = form.get("password")
    if not csrf.matches(request.cookies.get(csrf.SIGNIN_COOKIE), form.get(csrf.FIELD)):
        # A form left open past its cookie, or one posted from elsewhere: a fresh form.
        return _signin_page(
            request, templates, settings, status_code=403, error="expired", name=name
        )
    guard: SignInGuard = request.app.state.signin_guard
    attempt = Attempt(name=name, source=_client(request))
    wait = guard.wait(attempt.source, name)
    if wait > 0:
        seconds = int(retry_after(wait))
        return _signin_page(
            request,
            templates,
            settings,
            status_code=429,
            error="rate_limited",
            name=name,
            retry_seconds=seconds,
        )
    if len(password) > MAX_PASSWORD_CHARS:
        password = ""  # refused below without hashing a hostile length
    async with guard.checks:
        found = await asyncio.to_thread(signin.check, settings.db, name, password)
    if found.user is None:
        guard.failed(attempt.source, name)
        await asyncio.to_thread(
            signin.record_failure, settings.db, attempt, found.reason or "refused"
        )
        return _signin_page(
            request, templates, settings, status_code=401, error="refused", name=name
        )
    secret = await asyncio.to_thread(
        signin.begin,
        settings.db,
        found.user,
        found.rehash,
        settings.session_rules(),
        attempt.source,
    )
    answer = RedirectResponse(home_of(found.user.principal().role), status_code=303)
    cookies.set_session(answer, request, secret, always_secure=settings.web_secure_cookies)
    cookies.clear_signin_token(answer, request, always_secure=settings.web_secure_cookies)
    return answer


@router.post("/signout")
async def signout(
    request: Request, settings: SettingsDep, session: SignedInDep, _form: CsrfFormDep
) -> Response:
    await asyncio.to_thread(signin.end, settings.db, session, _client(request))
    answer = RedirectResponse("/signin", status_code=303)
    cookies.clear_session(answer, request, always_secure=settings.web_secure_cookies)
    return answer
