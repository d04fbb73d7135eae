"""The wire contract: round trips, and hostile bytes raise only WireError."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire import (
    Ack,
    Channel,
    Command,
    Envelope,
    MessageClass,
    Status,
    WireError,
    decode_ack,
    decode_command,
    decode_envelope,
    decode_status,
    parse_topic,
    subscription,
    topic,
)

REASONS = {
    "decoded",
    "oversized",
    "bad_json",
    "bad_version",
    "missing_field",
    "bad_field",
    "agent_mismatch",
    "class_mismatch",
}

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
# hypothesis takes naive bounds and attaches the zone itself
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
bodies = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@given(
    agent=names,
    session=st.integers(0, 2**40),
    seq=st.integers(1, 2**62),
    time=moments,
    device=names,
    kind=names,
    cls=st.sampled_from(MessageClass),
    body=bodies,
)
def test_envelope_round_trip(
    agent: str,
    session: int,
    seq: int,
    time: datetime,
    device: str,
    kind: str,
    cls: MessageClass,
    body: dict[str, object],
) -> None:
    envelope = Envelope(agent, session, seq, time, device, kind, cls, body)
    assert decode_envelope(envelope.encode(), agent, cls) == envelope


@given(
    agent=names,
    online=st.booleans(),
    session=st.integers(0, 2**40),
    connection=st.integers(0, 2**40),
    time=moments,
    station=st.none() | names,
)
def test_status_round_trip(
    agent: str, online: bool, session: int, connection: int, time: datetime, station: str | None
) -> None:
    status = Status(agent, online, session, connection, time, station, None if online else "lost")
    assert decode_status(status.encode(), agent) == status


@given(command_id=names, name=names, expires=moments, args=bodies)
def test_command_round_trip(
    command_id: str, name: str, expires: datetime, args: dict[str, object]
) -> None:
    command = Command(command_id, name, expires, args)
    assert decode_command(command.encode()) == command


@given(
    command_id=names,
    ok=st.booleans(),
    time=moments,
    result=st.none() | bodies,
    error=st.none() | st.text(max_size=50),
)
def test_ack_round_trip(
    command_id: str, ok: bool, time: datetime, result: dict[str, object] | None, error: str | None
) -> None:
    ack = Ack(command_id, ok, time, result, error)
    assert decode_ack(ack.encode()) == ack


@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_wire_error(payload: bytes) -> None:
    decoders: list[Callable[[bytes], object]] = [
        lambda p: decode_envelope(p, "a1", MessageClass.EVENT),
        lambda p: decode_status(p, "a1"),
        decode_command,
        decode_ack,
    ]
    for decode in decoders:
        reason = "decoded"
        try:
            decode(payload)
        except WireError as exc:
            reason = exc.reason
        assert reason in REASONS


@given(value=json_values | bodies)
def test_arbitrary_json_raises_only_wire_error(value: object) -> None:
    payload = json.dumps(value).encode()
    with pytest.raises(WireError):
        decode_envelope(payload, "a1", MessageClass.TELEMETRY)


def _valid(**changes: object) -> bytes:
    value: dict[str, object] = {
        "v": 1,
        "agent": "a1",
        "session": 1,
        "seq": 5,
        "time": "2026-11-24T08:00:00+08:00",
        "device": "d1",
        "kind": "reading",
        "class": "telemetry",
        "body": {"x": 1},
    }
    value.update(changes)
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe garbage", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"v": 1, "seq": NaN}', "bad_json"),
        (_valid(v=2), "bad_version"),
        (_valid(v=True), "bad_version"),
        (_valid(agent="a2"), "agent_mismatch"),
        (_valid(seq=...), "missing_field"),
        (_valid(seq=0), "bad_field"),
        (_valid(seq=True), "bad_field"),
        (_valid(seq=2**63), "bad_field"),
        (_valid(time="yesterday"), "bad_field"),
        (_valid(time="2026-11-24T08:00:00"), "bad_field"),
        (_valid(device="a/b"), "bad_field"),
        (_valid(device="+"), "bad_field"),
        (_valid(body=[1]), "bad_field"),
        (_valid(**{"class": "event"}), "class_mismatch"),
        (b"{" + b" " * (64 * 1024) + b"}", "oversized"),
    ],
)
def test_envelope_rejects_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        decode_envelope(payload, "a1", MessageClass.TELEMETRY)
    assert caught.value.reason == reason


def test_reading_time_is_normalised_to_utc() -> None:
    envelope = decode_envelope(_valid(), "a1", MessageClass.TELEMETRY)
    assert envelope.time == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert envelope.time.utcoffset() == timedelta(0)


def test_topics_keep_the_agent_as_its_own_level() -> None:
    assert topic("van-07", Channel.TELEMETRY) == "precinct/v1/van-07/telemetry"
    assert parse_topic("precinct/v1/van-07/cmd") == ("van-07", Channel.COMMAND)
    assert subscription(Channel.EVENT, "g") == "$share/g/precinct/v1/+/event"
    for bad in (
        "precinct/v2/a/event",
        "precinct/v1/a/b/event",
        "precinct/v1/a/nope",
        "precinct/v1/+/event",
    ):
        with pytest.raises(WireError):
            parse_topic(bad)
    with pytest.raises(WireError):
        topic("a/b", Channel.EVENT)
