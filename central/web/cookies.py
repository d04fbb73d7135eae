"""The pages' cookies: the session's and the sign-in form's, set and cleared one way."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from central.web import csrf, sessions

# The sign-in form's token lives as long as someone may leave the form open.
SIGNIN_COOKIE_SECONDS = 3600


def cookie_secure(request: Request, *, always: bool) -> bool:
    """``Secure`` on a request that came over https (uvicorn takes a trusted proxy's
    ``X-Forwarded-Proto``), and on every request when the setting ``web_secure_cookies`` says
    the centre is only reached over TLS."""
    return always or request.url.scheme == "https"


def set_session(response: Response, request: Request, secret: str, *, always_secure: bool) -> None:
    # No Max-Age: the browser forgets it when closed; the store ends it by its own rule.
    response.set_cookie(
        sessions.COOKIE,
        secret,
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, always=always_secure),
    )


def clear_session(response: Response, request: Request, *, always_secure: bool) -> None:
    response.delete_cookie(
        sessions.COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, always=always_secure),
    )


def set_signin_token(
    response: Response, request: Request, token: str, *, always_secure: bool
) -> None:
    response.set_cookie(
        csrf.SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_COOKIE_SECONDS,
        path="/signin",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, always=always_secure),
    )


def clear_signin_token(response: Response, request: Request, *, always_secure: bool) -> None:
    response.delete_cookie(
        csrf.SIGNIN_COOKIE,
        path="/signin",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, always=always_secure),
    )
