"""Jinja2 for the pages: autoescaped templates, one environment per language with its gettext
catalog installed (``{% trans %}`` and ``_()``), and the centre's time zone for times.

One environment per language rather than one whose translations change per request: installed
translations are global to an environment, and requests of both languages run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from central.web import i18n
from central.web.cookies import cookie_secure

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TIME_FORMAT = "%Y-%m-%d %H:%M"
# The ``precinct_lang`` cookie: a preference, not a secret; a year.
_LANG_COOKIE_SECONDS = 365 * 24 * 3600


def local_time(value: datetime | str | None, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD HH:MM`` in the centre's zone, from an aware datetime or a stored ISO time
    (the store's ``…Z`` strings); empty for None or for text that is no time."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return ""
    if value.tzinfo is None:
        # Naive times are the store's UTC (every time stored is UTC).
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(TIME_FORMAT)


def _plain_static_url(relative: str) -> str:
    return f"/static/{relative}"


class Templates:
    """The pages' templates in every language; :meth:`response` renders one for a request."""

    def __init__(
        self,
        timezone: str,
        *,
        secure_cookies: bool = False,
        static_url: Callable[[str], str] | None = None,
        template_dir: Path = TEMPLATE_DIR,
        catalogs: Mapping[str, Any] | None = None,
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self.secure_cookies = secure_cookies
        catalogs = catalogs if catalogs is not None else i18n.load_catalogs()
        environments = {}
        for lang in i18n.LANGUAGES:
            env = Environment(
                loader=FileSystemLoader(template_dir),
                autoescape=True,
                undefined=StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            # newstyle: translations are marked safe and their %(name)s values escaped. The
            # method is added by jinja2.ext.i18n at run time, unknown to the type stubs.
            install = env.install_gettext_translations  # type: ignore[attr-defined]
            install(catalogs[lang], newstyle=True)
            env.filters["localtime"] = self._local_time
            # static_url("vendor/htmx/htmx.min.js"): the file's URL with its version, so that
            # browsers cache it until it changes (central/static_files.py).
            env.globals["static_url"] = static_url or _plain_static_url
            env.globals["languages"] = [
                (i18n.SHORT[code], i18n.AUTONYMS[code]) for code in i18n.LANGUAGES
            ]
            environments[lang] = env
        self.environments = MappingProxyType(environments)

    def _local_time(self, value: datetime | str | None) -> str:
        return local_time(value, self.zone)

    def render(self, name: str, lang: str, context: Mapping[str, Any]) -> str:
        env = self.environments[lang]
        return env.get_template(name).render(
            {"lang": lang, "lang_short": i18n.SHORT[lang], "html_lang": i18n.HTML_LANG[lang]}
            | dict(context)
        )

    def response(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Render ``name`` in the request's language; a ``?lang=`` choice is kept in a cookie."""
        lang = request_language(request)
        answer = HTMLResponse(
            self.render(name, lang, context), status_code=status_code, headers=headers
        )
        # A page shows one person's data: never cached, never framed by another site
        # (clickjacking), and its type never guessed.
        answer.headers["Cache-Control"] = "no-store"
        answer.headers["X-Frame-Options"] = "DENY"
        answer.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        answer.headers["X-Content-Type-Options"] = "nosniff"
        answer.headers["Referrer-Policy"] = "same-origin"
        answer.headers["Content-Language"] = i18n.HTML_LANG[lang]
        chosen = i18n.from_short(request.query_params.get("lang"))
        if chosen is not None:
            answer.set_cookie(
                i18n.LANG_COOKIE,
                i18n.SHORT[chosen],
                max_age=_LANG_COOKIE_SECONDS,
                path="/",
                samesite="strict",
                httponly=True,
                secure=cookie_secure(request, always=self.secure_cookies),
            )
        return answer


def request_language(request: Request) -> str:
    return i18n.choose(
        request.query_params.get("lang"),
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get("accept-language"),
    )
