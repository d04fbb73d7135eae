"""The pages' languages: Simplified Chinese by default, English selectable.

Catalogs are gettext ``.po`` files under ``central/web/locale/<lang>/LC_MESSAGES/*.po`` (the
frame's ``messages.po`` and one file per page area, merged),
read with Babel and compiled in memory at start-up, so the package needs no build step and a
catalog on disk is always the one served. Strings come from the templates (``{% trans %}``,
``_()``) and from Python (``gettext_noop``); ``babel.cfg`` at the top of the repository says
where ``pybabel extract`` looks (docs/web.md has the steps).

Which language a request gets (:func:`choose`): ``?lang=en`` or ``?lang=zh`` (then kept in the
``precinct_lang`` cookie), else that cookie, else the browser's ``Accept-Language``, else
Chinese.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT = "zh_CN"
LANGUAGES = ("zh_CN", "en")
LANG_COOKIE = "precinct_lang"
# What ?lang= and the cookie say, and each language under its own name for the switch.
SHORT = MappingProxyType({"zh_CN": "zh", "en": "en"})
AUTONYMS = MappingProxyType({"zh_CN": "中文", "en": "English"})
HTML_LANG = MappingProxyType({"zh_CN": "zh-CN", "en": "en"})
# A browser sends a handful of languages; a longer header is cut, not parsed whole.
_MAX_ACCEPT_CHARS = 500
_MAX_ACCEPT_ITEMS = 20


def from_short(value: str | None) -> str | None:
    """The language named by ``?lang=`` or the cookie (``zh``, ``en``); None for anything else."""
    if value is None:
        return None
    for lang, short in SHORT.items():
        if value == short:
            return lang
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first supported language of an ``Accept-Language`` header (RFC 9110 12.5.4), by
    weight then order; None when it names none of ours."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for order, item in enumerate(header[:_MAX_ACCEPT_CHARS].split(",")[:_MAX_ACCEPT_ITEMS]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:7])
            except ValueError:
                continue
        if not 0 < weight <= 1:
            continue
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        lang = {"zh": "zh_CN", "en": "en"}.get(primary)
        if lang is not None:
            ranked.append((-weight, order, lang))
    return min(ranked)[2] if ranked else None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    return (
        from_short(query) or from_short(cookie) or from_accept_language(accept_language) or DEFAULT
    )


def load_catalogs(locale_dir: Path = LOCALE_DIR) -> Mapping[str, Translations]:
    """Every language's catalog, read from its ``.po`` files and compiled in memory. A language
    may have several files (``messages.po`` for the frame, one per page area: ``book.po``,
    ``wall.po``, …), merged into one catalog; a string belongs to exactly one of them."""
    catalogs: dict[str, Translations] = {}
    for lang in LANGUAGES:
        merged: Translations | None = None
        for path in sorted((locale_dir / lang / "LC_MESSAGES").glob("*.po")):
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=lang, domain=DOMAIN)
            compiled = io.BytesIO()
            # Fuzzy entries are drafts: served as the msgid (English), never half-translated.
            write_mo(compiled, catalog, use_fuzzy=False)
            compiled.seek(0)
            part = Translations(compiled, domain=DOMAIN)
            merged = part if merged is None else merged.merge(part)
        if merged is None:
            raise FileNotFoundError(f"no catalog for {lang} under {locale_dir}")
        catalogs[lang] = merged
    return MappingProxyType(catalogs)
