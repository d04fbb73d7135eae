"""The gpsd JSON codec: real reports, hostile lines, and TPV round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.base import ProtocolError
from devices.gps.errors import MALFORMED_REASONS, GpsdError
from devices.gps.fix import Fix, NoFix, Skipped
from devices.gps.gpsd import GpsdDecoder, Report, decode_report, encode_tpv

# From the gpsd corpus (bn-9015.log.chk), as gpsd sends them to a watcher.
TPV = (
    b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03.972Z","ept":0.005,'
    b'"lat":52.014198333,"lon":4.363031667,"altHAE":53.6000,"altMSL":8.8000,"alt":8.8000,'
    b'"epx":9.170,"epy":11.104,"epv":46.000,"track":22.1000,"magtrack":23.3937,'
    b'"magvar":1.3,"speed":0.463,"climb":0.000,"eps":22.21,"epc":92.00,"geoidSep":44.800,'
    b'"eph":19.000,"sep":43.700}'
)
SKY = b'{"class":"SKY","hdop":1.00,"pdop":2.30,"uSat":8}'
NO_FIX_TPV = b'{"class":"TPV","mode":1}'
VERSION = b'{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}'


def _decode_all(data: bytes) -> list[object]:
    decoder = GpsdDecoder()
    return [*decoder.feed(data), *decoder.flush()]


def test_tpv_becomes_a_fix() -> None:
    fix = decode_report(TPV)
    assert fix == Fix(
        time=datetime(2010, 6, 12, 17, 10, 3, 972000, tzinfo=UTC),
        lat=52.014198333,
        lon=4.363031667,
        speed_mps=0.463,
        course=22.1,
        mode=3,
        eph=19.0,
    )


def test_other_classes_are_reports() -> None:
    assert decode_report(SKY) == Report("SKY")
    assert decode_report(VERSION) == Report("VERSION")


@pytest.mark.parametrize(
    "line",
    [
        NO_FIX_TPV,
        b'{"class":"TPV","mode":0,"lat":0.0,"lon":0.0}',
        b'{"class":"TPV","status":8,"mode":1,"time":"2011-10-24T12:51:06.000Z"}',
        b'{"class":"TPV"}',
    ],
)
def test_mode_below_2d_never_becomes_a_position(line: bytes) -> None:
    assert decode_report(line) == NoFix("void")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "bad_json"),
        (b'["TPV"]', "bad_json"),
        (b'{"mode":3}', "bad_json"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lat":NaN,"lon":4}', "bad_json"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lat":91,"lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lat":"52","lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lat":true,"lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":3,"time":"yesterday","lat":52,"lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03","lat":52,"lon":4}', "bad_field"),
        (b'{"class":"TPV","mode":"3"}', "bad_field"),
        (
            b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03Z","lat":52,"lon":4,"speed":-1}',
            "bad_field",
        ),
        (b"[" * 50_000, "too_long"),
        (b"[" * 20_000, "bad_json"),
        (b"\xff\xfe", "bad_json"),
    ],
)
def test_bad_lines_raise_gpsd_error_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(GpsdError) as info:
        decode_report(line)
    assert info.value.reason == reason


def test_stream_resyncs_after_bad_lines_and_splits_across_reads() -> None:
    data = VERSION + b"\r\n" + b"garbage\r\n" + SKY + b"\r\n" + TPV + b"\r\n" + NO_FIX_TPV
    decoder = GpsdDecoder()
    events = [e for i in range(0, len(data), 7) for e in decoder.feed(data[i : i + 7])]
    events += decoder.flush()
    assert [type(e).__name__ for e in events] == ["Report", "Skipped", "Report", "Fix", "NoFix"]


def test_an_overlong_line_is_skipped_once() -> None:
    data = b'{"class":"SKY","x":"' + b"a" * 100_000 + b'"}\n' + TPV + b"\n"
    events = _decode_all(data)
    assert [type(e).__name__ for e in events] == ["Skipped", "Fix"]


@given(data=st.lists(st.binary(max_size=200), max_size=10))
def test_arbitrary_bytes_never_raise(data: list[bytes]) -> None:
    decoder = GpsdDecoder()
    events = [e for chunk in data for e in decoder.feed(chunk)] + decoder.flush()
    for event in events:
        assert isinstance(event, Report | Fix | NoFix | Skipped)
        if isinstance(event, Skipped):
            assert event.reason in MALFORMED_REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tpv_like = st.fixed_dictionaries(
    {"class": st.just("TPV")},
    optional={
        "mode": json_values | st.integers(-1, 4),
        "time": json_values | st.just("2010-06-12T17:10:03.972Z"),
        "lat": json_values,
        "lon": json_values,
        "speed": json_values,
        "track": json_values,
        "eph": json_values,
    },
)


@given(report=tpv_like | json_values)
def test_arbitrary_json_raises_only_protocol_errors(report: object) -> None:
    line = json.dumps(report).encode()
    try:
        result = decode_report(line)
    except ProtocolError:
        return
    assert isinstance(result, Report | Fix | NoFix)


# hypothesis takes naive bounds and attaches the zone itself
moments = st.datetimes(
    min_value=datetime(1980, 1, 6),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(
    fix=st.builds(
        Fix,
        time=moments.map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
        lat=st.floats(-90, 90),
        lon=st.floats(-180, 180),
        speed_mps=st.none() | st.floats(0, 1000),
        course=st.none() | st.floats(0, 360),
        mode=st.sampled_from([2, 3]),
        eph=st.none() | st.floats(0, 1e6),
    )
)
def test_tpv_round_trip(fix: Fix) -> None:
    (decoded,) = _decode_all(encode_tpv(fix))
    assert decoded == fix
