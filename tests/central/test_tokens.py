"""Tokens: expiry durations, expired and revoked tokens refused, listing without secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.auth import (
    Role,
    authenticate,
    create_token,
    list_tokens,
    parse_duration,
    revoke_tokens,
)
from central.store import connect, migrate

# The centre runs on Asia/Shanghai: aware times in a non-UTC zone.
NOW = datetime(2026, 12, 1, 21, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0d", "-1h", "1.5h", "1w", "h", "12", "3651d", "99999999d", "1 d", "1D"]
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expires-in"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=3650 * 24), st.sampled_from(["h", "m", "s"]))
def test_any_whole_number_of_a_unit(count: int, unit: str) -> None:
    seconds = {"h": 3600, "m": 60, "s": 1}[unit]
    assert parse_duration(f"{count}{unit}") == timedelta(seconds=count * seconds)


def test_an_expired_or_revoked_token_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = connect(db)
    try:
        lasting = create_token(conn, role=Role.ADMIN, name="lead", station=None, now=NOW)
        brief = create_token(
            conn,
            role=Role.STATION,
            name="van 7",
            station="s1",
            expires_at=NOW + timedelta(hours=12),
            now=NOW,
        )
        with pytest.raises(ValueError, match="future"):
            create_token(conn, role=Role.OPS, name="late", station=None, expires_at=NOW, now=NOW)
        assert authenticate(conn, brief, NOW + timedelta(hours=11, minutes=59)) is not None
        assert authenticate(conn, brief, NOW + timedelta(hours=12)) is None
        assert authenticate(conn, lasting, NOW + timedelta(days=9000)) is not None

        assert [t.name for t in revoke_tokens(conn, "lead", NOW)] == ["lead"]
        assert authenticate(conn, lasting, NOW) is None
        assert revoke_tokens(conn, "lead", NOW) == []
        listed = {t.name: t for t in list_tokens(conn)}
        assert listed["lead"].revoked_at is not None
        assert listed["van 7"].expires_at == "2026-12-02T01:00:00.000000Z"
        assert listed["van 7"].station == "s1"
        shown = repr(list_tokens(conn))
        assert brief not in shown
        assert lasting not in shown
    finally:
        conn.close()


def test_expiry_is_compared_as_a_time_not_as_text(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    conn = connect(db)
    try:
        token = create_token(
            conn,
            role=Role.OPS,
            name="watch",
            station=None,
            expires_at=NOW + timedelta(minutes=1),
            now=NOW,
        )
        assert authenticate(conn, token, NOW.astimezone(UTC)) is not None
        assert authenticate(conn, token, (NOW + timedelta(minutes=2)).astimezone(UTC)) is None
    finally:
        conn.close()
