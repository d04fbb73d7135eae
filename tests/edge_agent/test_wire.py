"""The wire contract: round trips, and hostile bytes raise only WireError."""

from __future__ import annotations

import json
import uuid
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
    ReplayArgs,
    Status,
    WireError,
    decode_ack,
    decode_command,
    decode_envelope,
    decode_replay_args,
    decode_status,
    encode_envelope,
    format_time,
    is_valid_name,
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


# An outbox's epoch is uuid4 hex; any wire name is accepted. None: an agent from before epochs.
epochs = st.none() | st.uuids().map(lambda u: u.hex) | names


@given(
    agent=names,
    epoch=epochs,
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
    epoch: str | None,
    session: int,
    seq: int,
    time: datetime,
    device: str,
    kind: str,
    cls: MessageClass,
    body: dict[str, object],
) -> None:
    envelope = Envelope(agent, epoch, session, seq, time, device, kind, cls, body)
    payload = envelope.encode()
    assert decode_envelope(payload, agent, cls) == envelope
    assert ("epoch" in json.loads(payload)) is (epoch is not None)


def test_outbox_epochs_are_wire_names() -> None:
    assert is_valid_name(uuid.uuid4().hex)


@given(
    agent=names,
    online=st.booleans(),
    session=st.integers(0, 2**40),
    connection=st.integers(0, 2**40),
    time=moments,
    station=st.none() | names,
    epoch=epochs,
    first_seq=st.none() | st.integers(1, 2**62),
)
def test_status_round_trip(
    agent: str,
    online: bool,
    session: int,
    connection: int,
    time: datetime,
    station: str | None,
    epoch: str | None,
    first_seq: int | None,
) -> None:
    status = Status(
        agent,
        online,
        session,
        connection,
        time,
        station,
        None if online else "lost",
        epoch=epoch,
        first_seq=first_seq,
    )
    assert decode_status(status.encode(), agent) == status


def test_a_status_of_the_previous_release_has_no_epoch() -> None:
    payload = b'{"v":1,"agent":"a1","state":"online","session":3,"connection":1,"time":"%s"}' % (
        format_time(datetime(2026, 11, 24, tzinfo=UTC)).encode()
    )
    status = decode_status(payload, "a1")
    assert (status.epoch, status.first_seq, status.session) == (None, None, 3)


hostile_epochs = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@given(epoch=hostile_epochs)
def test_a_hostile_epoch_is_refused_or_is_a_name(epoch: object) -> None:
    decoders: list[Callable[[], str | None]] = [
        lambda: decode_envelope(_valid(epoch=epoch), "a1", MessageClass.TELEMETRY).epoch,
        lambda: decode_status(_status(epoch=epoch), "a1").epoch,
        lambda: decode_replay_args({"first": 1, "last": 2, "epoch": epoch}).epoch,
    ]
    for decode in decoders:
        if isinstance(epoch, str) and is_valid_name(epoch):
            assert decode() == epoch
        else:
            with pytest.raises(WireError) as caught:
                decode()
            assert caught.value.reason == "bad_field"


@given(first_seq=st.none() | st.booleans() | st.integers() | st.text(max_size=5))
def test_a_hostile_first_seq_is_refused(first_seq: object) -> None:
    payload = _status(first_seq=first_seq)
    if isinstance(first_seq, int) and not isinstance(first_seq, bool) and 1 <= first_seq < 2**63:
        assert decode_status(payload, "a1").first_seq == first_seq
    else:
        with pytest.raises(WireError) as caught:
            decode_status(payload, "a1")
        assert caught.value.reason == "bad_field"


def test_an_empty_epoch_cannot_be_claimed() -> None:
    # The centre files readings of agents from before epochs under "": no agent may send it.
    with pytest.raises(WireError):
        decode_envelope(_valid(epoch=""), "a1", MessageClass.TELEMETRY)
    with pytest.raises(WireError):
        decode_status(_status(epoch=""), "a1")


@given(epoch=epochs, first=st.integers(1, 2**62), length=st.integers(0, 2**20))
def test_replay_args_round_trip(epoch: str | None, first: int, length: int) -> None:
    replay = ReplayArgs(epoch, first, first + length)
    args = json.loads(json.dumps(replay.to_args()))
    assert decode_replay_args(args) == replay


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"first": 2, "last": 1},
        {"first": 0, "last": 1},
        {"first": True, "last": 1},
        {"first": "1", "last": 2},
        {"first": 1, "last": 2**63},
        {"first": 1, "last": 2, "epoch": "a/b"},
    ],
)
def test_bad_replay_args_are_refused(args: dict[str, object]) -> None:
    with pytest.raises(WireError):
        decode_replay_args(args)


def test_encode_envelope_matches_the_dataclass() -> None:
    moment = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    envelope = Envelope("a1", "e1", 2, 7, moment, "d1", "k", MessageClass.EVENT, {"x": [1]})
    assert envelope.encode() == encode_envelope(
        "a1", "e1", 2, 7, format_time(moment), "d1", "k", MessageClass.EVENT, '{"x":[1]}'
    )


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


def _status(**changes: object) -> bytes:
    value: dict[str, object] = {
        "v": 1,
        "agent": "a1",
        "state": "online",
        "session": 1,
        "connection": 1,
        "time": "2026-11-24T08:00:00+08:00",
        "epoch": "e1",
        "first_seq": 1,
    }
    value.update(changes)
    return json.dumps(value).encode()


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
