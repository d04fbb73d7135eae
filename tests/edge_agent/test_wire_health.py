"""The agent's health on the wire: round trips, in a birth and alone, and hostile payloads
raise only WireError, never a value outside the contract's bounds."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire import (
    MAX_HEALTH_AGE_SECONDS,
    MAX_PAYLOAD_BYTES,
    Channel,
    Health,
    HealthReport,
    Status,
    WireError,
    decode_health,
    decode_status,
    parse_topic,
    topic,
)
from tests.edge_agent.test_wire import REASONS, epochs, moments, names

healths = st.builds(
    Health,
    report=st.integers(1, 2**62),
    time=moments,
    outbox_depth=st.integers(0, 2**62),
    outbox_oldest_age_seconds=st.floats(0, MAX_HEALTH_AGE_SECONDS, allow_nan=False)
    | st.integers(0, 10**9).map(float),
    disk_full=st.booleans(),
    certificate_expires=st.none() | moments,
)


@given(agent=names, epoch=epochs, session=st.integers(0, 2**40), health=healths)
def test_health_report_round_trip(
    agent: str, epoch: str | None, session: int, health: Health
) -> None:
    report = HealthReport(agent, epoch, session, health)
    assert decode_health(report.encode(), agent) == report


@given(agent=names, epoch=epochs, session=st.integers(0, 2**40), health=healths)
def test_a_birth_carries_the_health_and_a_will_none(
    agent: str, epoch: str | None, session: int, health: Health
) -> None:
    now = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    birth = Status(agent, True, session, 1, now, epoch=epoch, first_seq=1, health=health)
    decoded = decode_status(birth.encode(), agent)
    assert decoded == birth
    assert decoded.health_report() == HealthReport(agent, epoch, session, health)
    will = Status(agent, False, session, 1, now, reason="lost", epoch=epoch)
    assert decode_status(will.encode(), agent).health_report() is None


def test_the_health_topic_is_the_agents_own() -> None:
    assert topic("van-07", Channel.HEALTH) == "precinct/v1/van-07/health"
    assert parse_topic("precinct/v1/van-07/health") == ("van-07", Channel.HEALTH)


def _valid() -> dict[str, Any]:
    return {
        "v": 1,
        "agent": "van-07",
        "epoch": "9f2c4e0b7d1a4f3e8c6b5a4d3e2f1a0b",
        "session": 3,
        "report": 12,
        "time": "2026-12-05T01:00:00.000000Z",
        "outbox_depth": 1234,
        "outbox_oldest_age_seconds": 61.5,
        "disk_full": False,
        "certificate_expires": "2027-03-01T00:00:00.000000Z",
    }


def test_the_documented_message_decodes() -> None:
    report = decode_health(json.dumps(_valid()).encode(), "van-07")
    assert report.session == 3
    assert report.health.report == 12
    assert report.health.outbox_depth == 1234
    assert report.health.outbox_oldest_age_seconds == 61.5
    assert report.health.certificate_expires == datetime(2027, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("agent", "van-08", "agent_mismatch"),
        ("outbox_depth", -1, "bad_field"),
        ("outbox_depth", True, "bad_field"),
        ("outbox_depth", 2**63, "bad_field"),
        ("outbox_depth", 1.5, "bad_field"),
        ("outbox_oldest_age_seconds", -0.1, "bad_field"),
        ("outbox_oldest_age_seconds", MAX_HEALTH_AGE_SECONDS * 2, "bad_field"),
        ("outbox_oldest_age_seconds", "61", "bad_field"),
        ("outbox_oldest_age_seconds", False, "bad_field"),
        ("disk_full", 0, "bad_field"),
        ("disk_full", "false", "bad_field"),
        ("certificate_expires", "next spring", "bad_field"),
        ("certificate_expires", "2027-03-01T00:00:00", "bad_field"),
        ("report", 0, "bad_field"),
        ("time", None, "bad_field"),
        ("session", -1, "bad_field"),
        ("epoch", "", "bad_field"),
        ("v", 2, "bad_version"),
    ],
)
def test_a_wrong_field_is_refused_with_its_reason(field: str, value: object, reason: str) -> None:
    message = _valid() | {field: value}
    with pytest.raises(WireError) as caught:
        decode_health(json.dumps(message).encode(), "van-07")
    assert caught.value.reason == reason


def test_non_finite_numbers_and_oversized_payloads_are_refused() -> None:
    text = json.dumps(_valid()).replace("61.5", "NaN")
    with pytest.raises(WireError) as caught:
        decode_health(text.encode(), "van-07")
    assert caught.value.reason == "bad_json"
    with pytest.raises(WireError) as caught:
        decode_health(b" " * (MAX_PAYLOAD_BYTES + 1), "van-07")
    assert caught.value.reason == "oversized"


def test_a_birth_with_a_malformed_health_is_refused_whole() -> None:
    now = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    birth = json.loads(Status("van-07", True, 1, 1, now).encode())
    for health in ("fine", [1], {"report": 1}):
        with pytest.raises(WireError) as caught:
            decode_status(json.dumps(birth | {"health": health}).encode(), "van-07")
        assert caught.value.reason == "bad_field"


hostile_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(_valid())) | st.text(max_size=8), hostile_values, max_size=4
    ),
    removed=st.sets(st.sampled_from(sorted(_valid())), max_size=3),
)
def test_hostile_fields_raise_only_wire_error_or_decode_within_bounds(
    changes: dict[str, object], removed: set[str]
) -> None:
    message = {k: v for k, v in (_valid() | changes).items() if k not in removed}
    try:
        report = decode_health(json.dumps(message).encode(), "van-07")
    except WireError as exc:
        reason = exc.reason
        report = None
    if report is None:
        assert reason in REASONS
        return
    health = report.health
    assert 0 <= health.outbox_depth < 2**63
    assert 0 <= health.outbox_oldest_age_seconds <= MAX_HEALTH_AGE_SECONDS
    assert math.isfinite(health.outbox_oldest_age_seconds)
    assert isinstance(health.disk_full, bool)
    assert health.time.tzinfo is not None


@given(payload=st.binary(max_size=300))
def test_random_bytes_raise_only_wire_error(payload: bytes) -> None:
    with pytest.raises(WireError) as caught:
        decode_health(payload, "van-07")
    assert caught.value.reason in REASONS
