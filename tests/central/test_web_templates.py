"""The pages' templates and catalogs: no text outside ``{% trans %}``/``_()``, every string in
both catalogs, the language choice, times in the centre's zone, and escaping."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import nodes

from central.web import i18n
from central.web.templating import TEMPLATE_DIR, Templates, local_time
from tests.support import ROOT

# Attributes a person reads (or hears, with a screen reader): translated like text.
_READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "label", "aria-description"}
_EXPRESSION = "\x00"  # stands for whatever an expression prints: no letters in it
TEMPLATES = sorted(p.name for p in TEMPLATE_DIR.glob("*.html"))


def _literal_html(node: nodes.Node) -> Iterator[str]:
    """The template's literal text in order, each printed expression as one placeholder."""
    if isinstance(node, nodes.TemplateData):
        yield node.data
        return
    if isinstance(node, nodes.Output):
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                yield child.data
            else:
                yield _EXPRESSION
        return
    for inner in node.iter_child_nodes():
        yield from _literal_html(inner)


class _BareText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._raw += 1
        for name, value in attrs:
            if name in _READ_ATTRIBUTES and value and _has_words(value):
                self.found.append(f'{tag} {name}="{value}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._raw = max(0, self._raw - 1)

    def handle_data(self, data: str) -> None:
        if not self._raw and _has_words(data):
            self.found.append(data.strip())


def _has_words(text: str) -> bool:
    return any(c.isalpha() for c in text.replace(_EXPRESSION, ""))


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates("Asia/Shanghai")


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_has_text_outside_trans(templates: Templates, name: str) -> None:
    env = templates.environments["en"]
    source = (TEMPLATE_DIR / name).read_text()
    tree = env.parse(source, name)
    checker = _BareText()
    checker.feed("".join(_literal_html(tree)))
    checker.close()
    assert checker.found == [], f"{name}: text to put in {{% trans %}}: {checker.found}"


def test_the_checker_finds_bare_text(templates: Templates) -> None:
    env = templates.environments["en"]
    for bad in ("<p>Hello</p>", '<input placeholder="Name">', "<p>{{ x }} items</p>"):
        checker = _BareText()
        checker.feed("".join(_literal_html(env.parse(bad))))
        assert checker.found, bad
    for good in ("<p>{% trans %}Hello{% endtrans %}</p>", "<p title=\"{{ _('Hi') }}\">·</p>"):
        checker = _BareText()
        checker.feed("".join(_literal_html(env.parse(good))))
        assert checker.found == [], good


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]  # Babel ships no annotations here
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_each_catalog_translates_every_string_and_no_other(lang: str) -> None:
    wanted = _extracted()
    assert "Sign in" in wanted
    present = {}
    errors = []
    for path in sorted((i18n.LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        for message in catalog:
            if not message.id:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            assert key not in present, f"{lang}: {key!r} is in two files ({path.name})"
            present[key] = message
        errors += [(path.name, m.id, e) for m, e in catalog.check()]
    assert sorted(wanted - set(present)) == [], f"{lang}: missing; run pybabel update"
    assert sorted(set(present) - wanted) == [], f"{lang}: obsolete entries"
    for key, message in present.items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{lang}: {key!r} is not translated"
        assert not message.fuzzy, f"{lang}: {key!r} is fuzzy"
    assert errors == []


def test_language_choice() -> None:
    assert i18n.choose(None, None, None) == "zh_CN"
    assert i18n.choose("en", "zh", "zh-CN") == "en"
    assert i18n.choose("zh", "en", "en") == "zh_CN"
    assert i18n.choose("klingon", "en", None) == "en"
    assert i18n.choose(None, None, "en-US,en;q=0.9") == "en"
    assert i18n.choose(None, None, "de, zh-TW;q=0.2, en;q=0.1") == "zh_CN"
    assert i18n.choose(None, None, "en;q=0.3, zh_CN;q=0.9") == "zh_CN"
    assert i18n.choose(None, None, "en;q=0, fr") == "zh_CN"
    for hostile in ("en;q=abc", ";;;,,,", "x" * 10_000, "en;q=" + "9" * 400, "\x00"):
        assert i18n.choose(None, None, hostile) in i18n.LANGUAGES


def test_times_show_in_the_centres_zone() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert local_time(datetime(2026, 12, 5, 1, 30, tzinfo=UTC), zone) == "2026-12-05 09:30"
    assert local_time("2026-12-05T17:45:10.123456Z", zone) == "2026-12-06 01:45"
    assert local_time(datetime(2026, 12, 5, 1, 30), zone) == "2026-12-05 09:30"  # noqa: DTZ001
    assert local_time(None, zone) == ""
    assert local_time("not a time", zone) == ""


def test_base_page_escapes_and_translates(templates: Templates) -> None:
    user = {"name": "<b>x</b>", "role": "station", "station": "s1\"'"}
    context = {"user": user, "csrf_token": "tok'en\"<"}
    html = templates.render("wall.html", "zh_CN", context)
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert '<html lang="zh-CN">' in html
    assert "值班大屏" in html
    assert "派出所" in html
    # The htmx header attribute stays one attribute whatever the token holds.
    attribute = re.search(r"hx-headers='([^']*)'", html)
    assert attribute is not None
    assert "X-CSRF-Token" in attribute[1]
    english = templates.render("wall.html", "en", context)
    assert '<html lang="en">' in english
    assert "Sign out" in english
    assert "Station" in english
    signin = templates.render(
        "signin.html",
        "en",
        {"user": None, "csrf_token": "t", "error": "rate_limited", "name": "", "retry_seconds": 1},
    )
    assert "Try again in 1 second." in signin
    assert "<nav" in signin
    assert "/static/vendor/htmx/htmx.min.js" in signin
    assert "/static/app.css" in signin


def test_every_template_and_catalog_ships_with_the_package() -> None:
    """The package runs without a build step: what the pages read at run time is package
    data (pyproject's globs match every such file)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        globs = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["central"]
    package = TEMPLATE_DIR.parent.parent
    shipped = [
        path.relative_to(package).as_posix()
        for folder in ("templates", "locale")
        for path in (package / "web" / folder).rglob("*")
        if path.is_file()
    ]
    assert "web/locale/zh_CN/LC_MESSAGES/messages.po" in shipped
    unmatched = [f for f in shipped if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert unmatched == []
