"""The session expiry rule (pure): a session lives while used, never past its idle time after
the last use nor past its absolute limit; the CSRF comparison; reading forms."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from central.web import csrf
from central.web.forms import MAX_FIELDS, MAX_FORM_BYTES, FormError, read_form
from central.web.sessions import SessionRules

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 5, 8, 30, tzinfo=SHANGHAI)


def test_a_fresh_session_ends_at_the_first_of_its_bounds() -> None:
    rules = SessionRules(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    idle_until, until = rules.bounds(START)
    assert idle_until == START + timedelta(minutes=30)
    assert until == START + timedelta(hours=12)
    assert rules.live(idle_until, until, START + timedelta(minutes=29, seconds=59))
    assert not rules.live(idle_until, until, START + timedelta(minutes=30))
    # An idle time longer than the absolute limit is cut to it.
    short = SessionRules(idle=timedelta(hours=2), absolute=timedelta(hours=1))
    assert short.bounds(START) == (START + timedelta(hours=1), START + timedelta(hours=1))
    # A use moves the idle bound only once a tenth of the idle time (at most a minute) passed.
    assert rules.moved_idle(idle_until, until, START + timedelta(seconds=59)) is None
    assert rules.moved_idle(idle_until, until, START + timedelta(minutes=1)) == (
        START + timedelta(minutes=31)
    )
    with pytest.raises(ValueError, match="positive"):
        SessionRules(idle=timedelta(0), absolute=timedelta(hours=1))


@given(
    idle_s=st.integers(min_value=1, max_value=3 * 3600),
    absolute_s=st.integers(min_value=1, max_value=24 * 3600),
    gaps=st.lists(st.integers(min_value=0, max_value=4 * 3600), max_size=40),
)
def test_a_session_lives_while_used_and_never_past_either_bound(
    idle_s: int, absolute_s: int, gaps: list[int]
) -> None:
    rules = SessionRules(idle=timedelta(seconds=idle_s), absolute=timedelta(seconds=absolute_s))
    step = min(rules.idle / 10, timedelta(minutes=1))
    idle_until, until = rules.bounds(START)
    last_use = START
    now = START
    ended = False
    for gap in gaps:
        now += timedelta(seconds=gap)
        live = rules.live(idle_until, until, now)
        # Never past the absolute limit, nor an idle time after the last use.
        if live:
            assert now < START + rules.absolute
            assert now < last_use + rules.idle
        # Always alive while before both, with the slack of the skipped writes.
        if now < START + rules.absolute and now < last_use + rules.idle - step:
            assert live
        # Once ended, a session never comes back.
        if ended:
            assert not live
        if not live:
            ended = True
            continue
        moved = rules.moved_idle(idle_until, until, now)
        if moved is not None:
            assert idle_until < moved <= until
            idle_until = moved
        last_use = now


def test_csrf_tokens_compare_only_equal_bounded_values() -> None:
    token = csrf.new_token()
    assert len(token) == 43
    assert csrf.matches(token, token)
    assert not csrf.matches(token, token[:-1])
    assert not csrf.matches(token, None)
    assert not csrf.matches(None, token)
    assert not csrf.matches("", "")
    assert not csrf.matches(token, token + "x" * 100)
    assert not csrf.matches(token, "令牌")


def _request(body: bytes, content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


def test_forms_are_read_with_bounds() -> None:
    form_type = "application/x-www-form-urlencoded"
    form = asyncio.run(read_form(_request(b"name=%E5%BC%A0&a=1&a=2&empty=", form_type)))
    assert form.get("name") == "张"
    assert form.all("a") == ("1", "2")
    assert form.get("empty") == ""
    assert form.get("missing", "none") == "none"
    assert asyncio.run(read_form(_request(b"", None))).fields == {}
    refusals = [
        (b"a=1", "multipart/form-data; boundary=x", 415),
        (b"a=1", None, 415),
        (b"a=" + b"x" * MAX_FORM_BYTES, form_type, 413),
        (b"a=\xff", form_type, 400),
        (b"a=%FF", form_type, 400),
        (b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS + 1)), form_type, 400),
    ]
    for body, content_type, status in refusals:
        with pytest.raises(FormError) as caught:
            asyncio.run(read_form(_request(body, content_type)))
        assert caught.value.status == status, (body[:20], content_type)
