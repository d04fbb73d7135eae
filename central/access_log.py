"""The access log: one line per HTTP request, naming who made it and never their secret.

A line reads ``GET /api/v1/agents/a1 200 2.4 ms token:ops-dashboard``: method, path, status,
duration, and who, that is ``token:NAME`` for an API token (its name as ``token create`` gave
it), ``user:NAME`` for a person signed in to the pages, or ``-``. With ``--log-format json`` the
same values are also fields of their own (``method``, ``path``, ``status``, ``duration_ms``,
``who``).

What is never written: the Authorization header, cookies, form bodies (passwords, CSRF tokens)
and the query string, whose values may hold a one-time code; the path alone is logged. Paths
and names are made printable and cut short, so that a hostile path cannot forge log lines.

Pure ASGI and the outermost layer, so that a request refused before the routes (413, 401, 429)
is logged too. Who made the request is read after it is answered, from what the gate
(:mod:`central.api.gate`) or the pages' session dependency left in the request's state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.api.gate import PRINCIPAL_STATE, SESSION_STATE
from central.auth import Principal

log = logging.getLogger("central.access")

# Set by the pages' session dependency (central.web.deps): the signed-in user's name.
SIGNED_IN_USER_STATE = "signed_in_user"
NOBODY = "-"
_PATH_MAX = 200
_NAME_MAX = 80


def printable(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, control and other unprintable characters
    escaped (so a bounded number of bytes), with ``…`` when it was cut."""
    escaped = "".join(
        ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode("ascii")
        for ch in text[:limit]
    )
    return escaped + "…" if len(text) > limit else escaped


def who(state: MutableMapping[str, Any]) -> str:
    """``token:NAME``, ``user:NAME`` or ``-``, from a request's state after it was answered."""
    principal = state.get(PRINCIPAL_STATE)
    if isinstance(principal, Principal):
        kind = "user" if SESSION_STATE in state else "token"
        return f"{kind}:{printable(principal.name, _NAME_MAX)}"
    user = state.get(SIGNED_IN_USER_STATE)
    if isinstance(user, str):
        return f"user:{printable(user, _NAME_MAX)}"
    return NOBODY


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The same dict the gate and the dependencies write into (Request.state wraps it).
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        status = 500  # an exception before the answer began is answered 500 by the server

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            method = printable(str(scope.get("method", "")), 16)
            path = printable(str(scope.get("path", "")), _PATH_MAX)
            caller = who(state)
            log.info(
                "%s %s %d %.1f ms %s",
                method,
                path,
                status,
                duration_ms,
                caller,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(duration_ms, 1),
                    "who": caller,
                },
            )
