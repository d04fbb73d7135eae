"""CSRF tokens: one random token per session, carried by every state-changing request.

A page puts it in every form as the hidden field :data:`FIELD` and in
``<meta name="csrf-token">`` for htmx, which sends it as the header :data:`HEADER`
(``hx-headers`` on ``<body>``). Every non-GET page request and every cookie-authenticated
non-GET ``/api/`` request must carry it; a bearer token needs none (a browser never sends one
by itself). The cookie is ``SameSite=Strict`` as well: the token is the second lock, for old
browsers and for same-site attackers (another application on a sibling host).

Before sign-in there is no session: the sign-in form carries a token that must match the
short-lived cookie :data:`SIGNIN_COOKIE` set with the form (a double-submitted token), so that
no other site can sign a browser in under someone else's name.
"""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
META = "csrf-token"
SIGNIN_COOKIE = "precinct_signin"
# token_urlsafe(32): 43 characters. A longer value is not one of ours.
MAX_CHARS = 64


def new_token() -> str:
    return secrets.token_urlsafe(32)


def matches(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time; never for empty or
    over-long values."""
    if not expected or not given or len(given) > MAX_CHARS or not given.isascii():
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
