"""The broker's $SYS values: real vectors from Mosquitto 2.0.11, round trips of every number, and
hostile payloads that raise only SysValueError (counted by ingest), never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.broker_sys import (
    SYS_TOPICS,
    BrokerSysState,
    SysValueError,
    parse_sys,
)
from central.fleet_health import broker_families

# Captured from Mosquitto 2.0.11 (Debian) with sys_interval 1.
MOSQUITTO_2_0_11 = [
    ("$SYS/broker/clients/connected", b"1", "precinct_broker_clients_connected", 1),
    ("$SYS/broker/messages/stored", b"53", "precinct_broker_messages_stored", 53),
    ("$SYS/broker/publish/messages/dropped", b"0", "precinct_broker_publish_dropped", 0),
    ("$SYS/broker/heap/current", b"46792", "precinct_broker_heap_bytes", 46792),
    ("$SYS/broker/uptime", b"4417 seconds", "precinct_broker_uptime_seconds", 4417),
]
NOT_EXPORTED = [
    ("$SYS/broker/load/bytes/sent/1min", b"2182.42"),
    ("$SYS/broker/version", b"mosquitto version 2.0.11"),
    ("$SYS/broker/retained messages/count", b"52"),
    ("$SYS/broker/clients/connected/extra", b"x"),
]


@pytest.mark.parametrize(("topic", "payload", "metric", "value"), MOSQUITTO_2_0_11)
def test_mosquitto_values_are_read(topic: str, payload: bytes, metric: str, value: int) -> None:
    reading = parse_sys(topic, payload)
    assert reading is not None
    assert (reading.metric.name, reading.value) == (metric, value)


@pytest.mark.parametrize(("topic", "payload"), NOT_EXPORTED)
def test_topics_not_exported_are_ignored(topic: str, payload: bytes) -> None:
    assert parse_sys(topic, payload) is None


def test_older_and_other_brokers_spellings_are_read() -> None:
    # Mosquitto 1.x wrote the heap with its unit; amqtt's $SYS plugin writes a bare uptime.
    heap = parse_sys("$SYS/broker/heap/current", b"46792 bytes")
    uptime = parse_sys("$SYS/broker/uptime", b"12")
    assert heap is not None
    assert heap.value == 46792
    assert uptime is not None
    assert uptime.value == 12


@given(topic=st.sampled_from(sorted(SYS_TOPICS)), value=st.integers(0, 2**63 - 1))
def test_every_count_round_trips_with_and_without_its_unit(topic: str, value: int) -> None:
    _, unit = SYS_TOPICS[topic]
    spellings = [str(value)] + ([f"{value} {unit}"] if unit else [])
    for text in spellings:
        reading = parse_sys(topic, text.encode())
        assert reading is not None
        assert reading.value == value


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"-1",
        b"1.5",
        b"12 minutes",
        b"1 seconds",
        b"9" * 20,
        b"\xff",
        b"0x10",
        b"1e3",
        b"nan",
        b"12  seconds",
        b" " * 100,
    ],
)
def test_malformed_values_raise_sys_value_error(payload: bytes) -> None:
    topic = "$SYS/broker/clients/connected" if payload != b"12  seconds" else "$SYS/broker/uptime"
    with pytest.raises(SysValueError):
        parse_sys(topic, payload)


@given(topic=st.sampled_from(sorted(SYS_TOPICS)), payload=st.binary(max_size=80))
def test_hostile_bytes_give_a_bounded_count_or_sys_value_error(topic: str, payload: bytes) -> None:
    try:
        reading = parse_sys(topic, payload)
    except SysValueError:
        return
    assert reading is not None
    assert 0 <= reading.value < 2**63


def test_a_malformed_value_keeps_the_last_good_one_and_still_shows_the_broker_alive() -> None:
    state = BrokerSysState()
    state.observe("$SYS/broker/clients/connected", b"3", 100.0)
    with pytest.raises(SysValueError):
        state.observe("$SYS/broker/clients/connected", b"three", 101.0)
    state.observe("$SYS/broker/load/bytes/sent/1min", b"1.0", 102.0)
    values, last = state.snapshot()
    assert values == {"precinct_broker_clients_connected": 3}
    assert last == 102.0
    families = {f.name: f for f in broker_families(values, last)}
    assert [s.value for s in families["precinct_broker_clients_connected"].samples] == [3]
    assert families["precinct_broker_heap_bytes"].samples == []  # never sent: absent, not 0
    assert [
        s.value for s in families["precinct_broker_sys_last_update_timestamp_seconds"].samples
    ] == [102.0]
