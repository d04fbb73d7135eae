"""Query times: vectors for what is accepted and what each refusal says, round trips, the days of
a non-UTC centre, and a seeded fuzzer holding the parser to the OpenAPI's formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import jsonschema_rs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from central.api.query_times import (
    NO_OFFSET,
    NO_SUCH_DAY,
    NOT_A_TIME,
    NOT_RFC_3339,
    OUT_OF_RANGE,
    PLUS_AS_SPACE,
    QueryTimeError,
    day_of,
    lower_bound,
    parse_query_time,
    upper_bound,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLUS_8 = timezone(timedelta(hours=8))
# The validator schemathesis checks answers and generates refusals with: whatever the parser
# takes must be a `date` or `date-time` as the OpenAPI declares them.
DECLARED = jsonschema_rs.Draft202012Validator(
    {"anyOf": [{"format": "date"}, {"format": "date-time"}]}, validate_formats=True
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05", date(2026, 12, 5)),
        ("2026-12-05T09:30:00+08:00", datetime(2026, 12, 5, 1, 30, tzinfo=UTC)),
        ("2026-12-05T01:30:00Z", datetime(2026, 12, 5, 1, 30, tzinfo=UTC)),
        ("2026-12-05t01:30:00z", datetime(2026, 12, 5, 1, 30, tzinfo=UTC)),
        ("2026-12-04T20:30:00-05:00", datetime(2026, 12, 5, 1, 30, tzinfo=UTC)),
        # Past microseconds digits are dropped, never rounded into the next second.
        ("2026-12-05T01:30:59.9999999Z", datetime(2026, 12, 5, 1, 30, 59, 999999, tzinfo=UTC)),
        ("2026-12-05T01:30:00.5Z", datetime(2026, 12, 5, 1, 30, 0, 500000, tzinfo=UTC)),
        ("2000-01-01", date(2000, 1, 1)),
        ("2099-12-31", date(2099, 12, 31)),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),
        ("1999-12-31T23:00:00-01:00", datetime(2000, 1, 1, tzinfo=UTC)),
        ("2100-01-01T07:59:59+08:00", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_days_and_instants_with_their_offset_are_read(text: str, expected: date | datetime) -> None:
    found = parse_query_time(text)
    assert found == expected
    assert type(found) is type(expected)
    assert DECLARED.is_valid(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-05T09:30:00", NO_OFFSET),
        ("2026-12-05T09:30:00.250", NO_OFFSET),
        # "+08:00" sent unescaped in a URL: the server reads a space.
        ("2026-12-05T09:30:00 08:00", PLUS_AS_SPACE),
        ("2026-12-05T09:30+08:00", NOT_RFC_3339),
        ("2026-12-05 09:30:00+08:00", NOT_RFC_3339),
        ("2026-12-05T09:30:00+0800", NOT_RFC_3339),
        ("2026-12-05T09:30:00+08", NOT_RFC_3339),
        ("2026-12-05T09:30:00,5Z", NOT_RFC_3339),
        ("yesterday", NOT_A_TIME),
        ("1767225600", NOT_A_TIME),
        ("0.5", NOT_A_TIME),
        ("", NOT_A_TIME),
        ("20261205", NOT_A_TIME),
        ("2026-W49-6", NOT_A_TIME),
        ("2026-12-5", NOT_A_TIME),
        ("２０２６-12-05", NOT_A_TIME),  # digits of another script
        (" 2026-12-05", NOT_A_TIME),
        ("2026-12-05\n", NOT_A_TIME),
        ("2026-02-30", NO_SUCH_DAY),
        ("2026-13-01T00:00:00Z", NO_SUCH_DAY),
        ("2026-12-05T24:00:00Z", NO_SUCH_DAY),
        ("2026-12-31T23:59:60Z", NO_SUCH_DAY),  # a leap second: datetime has none
        ("2026-12-05T09:30:00+24:00", NO_SUCH_DAY),
        ("2026-12-05T09:30:00+05:60", NO_SUCH_DAY),
        ("1999-12-31", OUT_OF_RANGE),
        ("2100-01-01", OUT_OF_RANGE),
        ("0001-01-01T00:00:00+05:00", OUT_OF_RANGE),
        ("9999-12-31T23:59:59-05:00", OUT_OF_RANGE),
        ("2000-01-01T07:59:59+08:00", OUT_OF_RANGE),
        ("2100-01-01T00:00:00Z", OUT_OF_RANGE),
    ],
)
def test_refusals_say_what_to_send(text: str, message: str) -> None:
    with pytest.raises(QueryTimeError) as refused:
        parse_query_time(text)
    assert str(refused.value) == message


def test_the_messages_name_the_fix() -> None:
    assert "+08:00" in NO_OFFSET
    assert "%2B08:00" in NO_OFFSET
    assert "%2B08:00" in PLUS_AS_SPACE


def test_a_day_of_the_centre_from_its_first_moment_to_the_next_days() -> None:
    day = parse_query_time("2026-12-05")
    assert lower_bound(day, SHANGHAI) == datetime(2026, 12, 4, 16, tzinfo=UTC)
    assert upper_bound(day, SHANGHAI) == datetime(2026, 12, 5, 16, tzinfo=UTC)
    # The same day as both ends of a range is that whole day.
    assert upper_bound(day, SHANGHAI) - lower_bound(day, SHANGHAI) == timedelta(days=1)
    instant = parse_query_time("2026-12-05T01:30:00Z")
    assert lower_bound(instant, SHANGHAI) == upper_bound(instant, SHANGHAI) == instant
    # 23:30 on the 4th in UTC is already the 5th in Shanghai.
    assert day_of(parse_query_time("2026-12-04T23:30:00Z"), SHANGHAI) == date(2026, 12, 5)
    assert day_of(day, SHANGHAI) == day


instants = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001 - made aware by `timezones`
    max_value=datetime(2099, 12, 30),  # noqa: DTZ001
    timezones=st.builds(
        timezone, st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
    ),
)


@settings(max_examples=300, derandomize=True)
@given(instants)
def test_an_instant_written_with_any_offset_reads_back(moment: datetime) -> None:
    text = moment.isoformat(timespec="microseconds")
    assert parse_query_time(text) == moment
    zulu = moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert parse_query_time(zulu) == moment.replace(microsecond=0)
    # Without its offset the same time is refused, with the hint.
    with pytest.raises(QueryTimeError, match="add one such as"):
        parse_query_time(moment.replace(tzinfo=None).isoformat())


@settings(max_examples=300, derandomize=True)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), instants)
def test_a_day_reads_back_and_its_bounds_hold_its_instants(day: date, moment: datetime) -> None:
    assert parse_query_time(day.isoformat()) == day
    assert upper_bound(day, SHANGHAI) == lower_bound(day + timedelta(days=1), SHANGHAI)
    own = day_of(moment, SHANGHAI)
    assert lower_bound(own, SHANGHAI) <= moment < upper_bound(own, SHANGHAI)


# Text near the accepted forms: the grammar loosened (any digits, a space for T, optional
# seconds, offsets without a colon), and its characters in any order.
near_misses = st.one_of(
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,10})?)?"
        r"([Zz]|[+ -][0-9]{2}:?[0-9]{2})?)?",
        fullmatch=True,
    ),
    st.text(alphabet="0123456789-:T tZz+.,W", max_size=32),
)


@settings(max_examples=2000, derandomize=True)
@given(st.one_of(near_misses, st.text(max_size=40)))
@example("2026-12-05T09:30:00+08:00")
@example("2026-12-05")
def test_anything_is_read_or_refused_and_only_the_declared_formats_are_read(text: str) -> None:
    try:
        found = parse_query_time(text)
    except QueryTimeError:
        return
    assert DECLARED.is_valid(text), text
    if isinstance(found, datetime):
        assert found.tzinfo is not None
        assert datetime(2000, 1, 1, tzinfo=UTC) <= found < datetime(2100, 1, 1, tzinfo=UTC)
    else:
        assert 2000 <= found.year < 2100
