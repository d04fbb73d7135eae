"""Dependencies of the pages: who is signed in, their language, and a form that carries the
session's CSRF token.

A page route takes the signed-in user with :data:`SignedInDep` (a :class:`WebSession`; its
``principal`` has the same roles and station scope as an API token), or limits the roles with
``Depends(require_page_roles(Role.CENTRE, …))``. Without a live session the request is sent to
``/signin`` (:class:`SignInRequired`). A state-changing route reads its body with
:data:`CsrfFormDep`, which refuses a form without the session's token (403).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from starlette.responses import RedirectResponse, Response

from central.access_log import SIGNED_IN_USER_STATE
from central.api.deps import SettingsDep
from central.auth import Role
from central.settings import CentralSettings
from central.store import connect
from central.web import csrf, sessions
from central.web.forms import Form, FormError, read_form
from central.web.sessions import WebSession
from central.web.templating import Templates, request_language

SIGNIN_PATH = "/signin"


class SignInRequired(Exception):  # noqa: N818 - a condition the handler answers, not a fault
    """No live session: the answer sends the browser to the sign-in page."""


async def on_sign_in_required(request: Request, _exc: Exception) -> Response:
    """303 to ``/signin``; htmx follows a redirect by itself inside the page, so it gets 401
    and ``HX-Redirect`` (a full navigation) instead."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": SIGNIN_PATH})
    return RedirectResponse(SIGNIN_PATH, status_code=303)


def get_templates(request: Request) -> Templates:
    templates: Templates = request.app.state.templates
    return templates


TemplatesDep = Annotated[Templates, Depends(get_templates)]


def get_language(request: Request) -> str:
    return request_language(request)


LanguageDep = Annotated[str, Depends(get_language)]


def _touch(settings: CentralSettings, session: WebSession, now: datetime) -> None:
    idle_until = settings.session_rules().moved_idle(
        session.idle_expires_at, session.expires_at, now
    )
    if idle_until is None:
        return
    conn = connect(settings.db)
    try:
        sessions.touch(conn, session.id, idle_until, now)
    except sqlite3.Error:
        pass  # a busy or full store costs the user an earlier end, not this page
    finally:
        conn.close()


def get_web_session(request: Request, settings: SettingsDep) -> WebSession | None:
    """The live session of the request's cookie, kept alive by this use; None without one.

    Synchronous on purpose: FastAPI runs it in a worker thread, off the event loop."""
    secret = request.cookies.get(sessions.COOKIE)
    if not secret:
        return None
    now = datetime.now(UTC)
    conn = connect(settings.db, readonly=True)
    try:
        session = sessions.find(conn, secret, now)
    finally:
        conn.close()
    if session is not None:
        _touch(settings, session, now)
        setattr(request.state, SIGNED_IN_USER_STATE, session.principal.name)  # for the access log
    return session


OptionalSessionDep = Annotated[WebSession | None, Depends(get_web_session)]


def get_signed_in(session: OptionalSessionDep) -> WebSession:
    if session is None:
        raise SignInRequired
    return session


SignedInDep = Annotated[WebSession, Depends(get_signed_in)]


def require_page_roles(*roles: Role) -> Any:
    """A dependency: the signed-in user, when their role is one of ``roles`` (else 403)."""

    def check(session: SignedInDep) -> WebSession:
        if session.principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {session.principal.role} may not use this page"
            )
        return session

    return Depends(check)


async def get_csrf_form(request: Request, session: SignedInDep) -> Form:
    """The request's form, once its CSRF token (the hidden field ``csrf_token``, or the
    ``X-CSRF-Token`` header that htmx sends) is the session's; 403 otherwise."""
    try:
        form = await read_form(request)
    except FormError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    given = form.get(csrf.FIELD) or request.headers.get(csrf.HEADER)
    if not csrf.matches(session.csrf_token, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or stale")
    return form


CsrfFormDep = Annotated[Form, Depends(get_csrf_form)]
