"""The NMEA codec: real sentences, hostile bytes, chunking, and RMC round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.base import ProtocolError
from devices.gps.errors import MALFORMED_REASONS, ChecksumError, NmeaError
from devices.gps.fix import KNOT_MPS, Fix, NoFix, Skipped
from devices.gps.nmea import (
    MAX_SENTENCE_LENGTH,
    NmeaDecoder,
    Sentence,
    SentenceFramer,
    checksum,
    decode_gga,
    decode_gsa,
    decode_rmc,
    encode_rmc,
    encode_sentence,
    parse_sentence,
)

# From the gpsd corpus (bn-9015, a SiRF III receiver): RMC, VTG, GGA, GSA of one second.
RMC = b"$GPRMC,171003.972,A,5200.8519,N,00421.7819,E,000.9,022.1,120610,,,A*68"
VTG = b"$GPVTG,022.1,T,,M,000.9,N,001.8,K,A*0C"
GGA = b"$GPGGA,171003.972,5200.8519,N,00421.7819,E,1,08,1.0,8.8,M,44.8,M,,0000*57"
GSA = b"$GPGSA,A,3,14,30,09,29,02,27,04,31,,,,,2.3,1.0,2.0*35"
# NMEA 4.10 (furuno_gl_ga): status A, mode D, navigational status V, which is not the fix status.
RMC_41 = b"$GNRMC,120213.000,A,5957.0062,N,01100.6429,E,0.00,0.00,310722,,,D,V*0A"
VOID_RMC = b"$GPRMC,125106,V,3854.5087,N,07726.4523,W,0.0,0.0,241011,10.5,W,S*28"
EMPTY_RMC = b"$GPRMC,,V,,,,,,,,,,N*53"


def _sentence(body: str) -> bytes:
    return b"$%s*%02X" % (body.encode(), checksum(body.encode()))


def _decode_all(data: bytes) -> list[object]:
    decoder = NmeaDecoder()
    return [*decoder.feed(data), *decoder.flush()]


def _fixes(data: bytes) -> list[Fix]:
    return [event for event in _decode_all(data) if isinstance(event, Fix)]


def _skips(data: bytes) -> list[str]:
    return [event.reason for event in _decode_all(data) if isinstance(event, Skipped)]


def test_checksum_is_the_xor_between_dollar_and_star() -> None:
    sentence = parse_sentence(RMC)
    assert sentence.talker == "GP"
    assert sentence.kind == "RMC"
    assert sentence.fields[0] == "171003.972"
    assert checksum(RMC[1:-3]) == 0x68


def test_rmc_becomes_a_fix() -> None:
    fix = decode_rmc(parse_sentence(RMC))
    assert isinstance(fix, Fix)
    assert fix.time == datetime(2010, 6, 12, 17, 10, 3, 972000, tzinfo=UTC)
    assert fix.lat == pytest.approx(52 + 0.8519 / 60, abs=1e-9)
    assert fix.lon == pytest.approx(4 + 21.7819 / 60, abs=1e-9)
    assert fix.speed_mps == pytest.approx(0.9 * 1852 / 3600)
    assert fix.course == pytest.approx(22.1)


def test_southern_and_western_hemispheres_are_negative() -> None:
    fix = decode_rmc(
        parse_sentence(
            _sentence("GPRMC,095304.802,A,2712.6520,S,07726.4523,W,0.00,133.96,080407,,,A")
        )
    )
    assert isinstance(fix, Fix)
    assert fix.lat == pytest.approx(-(27 + 12.652 / 60))
    assert fix.lon == pytest.approx(-(77 + 26.4523 / 60))


def test_nmea_41_navigational_status_is_not_the_fix_status() -> None:
    fix = decode_rmc(parse_sentence(RMC_41))
    assert isinstance(fix, Fix)
    assert fix.lat == pytest.approx(59 + 57.0062 / 60)
    assert fix.time == datetime(2022, 7, 31, 12, 2, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        VOID_RMC,
        EMPTY_RMC,
        _sentence("GPRMC,235948.00,V,0000.0000,N,00000.0000,E,,,161206,,,N"),
        # status A but mode indicator N (not valid), S (simulator) or M (manual input)
        _sentence("GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,N"),
        _sentence("GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,S"),
        _sentence("GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,M"),
    ],
)
def test_a_void_rmc_never_becomes_a_position(raw: bytes) -> None:
    assert decode_rmc(parse_sentence(raw)) == NoFix("void")
    assert _fixes(raw + b"\r\n") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("GPRMC,,A,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,A", "no_time"),
        ("GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,,,,A", "no_date"),
    ],
)
def test_a_fix_without_time_or_date_is_not_a_position(body: str, reason: str) -> None:
    assert decode_rmc(parse_sentence(_sentence(body))) == NoFix(reason)


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,171003.972,A,5200.8519,,00421.7819,E,0.9,22.1,120610,,,A",  # no hemisphere
        "GPRMC,171003.972,A,5200.8519,X,00421.7819,E,0.9,22.1,120610,,,A",
        "GPRMC,171003.972,A,5260.0000,N,00421.7819,E,0.9,22.1,120610,,,A",  # 60 minutes
        "GPRMC,171003.972,A,9100.0000,N,00421.7819,E,0.9,22.1,120610,,,A",  # beyond the pole
        "GPRMC,171003.972,A,5200.8519,N,18100.0000,E,0.9,22.1,120610,,,A",
        "GPRMC,171003.972,A,,N,00421.7819,E,0.9,22.1,120610,,,A",
        "GPRMC,171003.972,A,5200.8519,N,00421.7819,E,nan,22.1,120610,,,A",
        "GPRMC,171003.972,A,5200.8519,N,00421.7819,E,1_0,22.1,120610,,,A",
        "GPRMC,171003.972,A,5200.8519,N,00421.7819,E,-1.0,22.1,120610,,,A",
        "GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,361.0,120610,,,A",
        "GPRMC,171003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,310299,,,A",  # 31 February
        "GPRMC,251003.972,A,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,A",  # hour 25
        "GPRMC,171003.972,Q,5200.8519,N,00421.7819,E,0.9,22.1,120610,,,A",
    ],
)
def test_malformed_rmc_fields_are_rejected(body: str) -> None:
    with pytest.raises(NmeaError) as info:
        decode_rmc(parse_sentence(_sentence(body)))
    assert info.value.reason == "bad_field"


def test_mode_and_hdop_come_from_gsa_and_the_same_epoch_gga() -> None:
    (fix,) = _fixes(b"\r\n".join([GGA, GSA, RMC, VTG]) + b"\r\n")
    assert fix.mode == 3
    assert fix.hdop == pytest.approx(1.0)
    assert decode_gga(parse_sentence(GGA)).quality == 1
    assert decode_gsa(parse_sentence(GSA)).mode == 3


def test_without_gsa_or_gga_a_valid_rmc_is_2d() -> None:
    (fix,) = _fixes(RMC + b"\r\n")
    assert fix.mode == 2
    assert fix.hdop is None


def test_a_gga_of_another_epoch_says_nothing_about_the_fix() -> None:
    other = _sentence("GPGGA,120000.000,5200.8519,N,00421.7819,E,1,08,9.0,8.8,M,44.8,M,,0000")
    (fix,) = _fixes(other + b"\r\n" + RMC + b"\r\n")
    assert fix.mode == 2
    assert fix.hdop is None


def test_a_gsa_saying_no_fix_does_not_void_a_valid_rmc() -> None:
    no_fix = _sentence("GPGSA,A,1,,,,,,,,,,,,,,,")
    (fix,) = _fixes(no_fix + b"\r\n" + RMC + b"\r\n")
    assert fix.mode == 2


def test_checksum_errors_are_skipped_and_counted() -> None:
    bad = RMC[:-2] + b"00"
    with pytest.raises(ChecksumError):
        parse_sentence(bad)
    assert _skips(bad + b"\r\n") == ["checksum"]
    assert _fixes(bad + b"\r\n") == []


def test_a_sentence_without_checksum_is_skipped() -> None:
    assert _skips(RMC[:-3] + b"\r\n") == ["no_checksum"]


def test_resync_after_garbage_and_binary_junk() -> None:
    data = (
        b"\x00\xff\xfe junk\r\n"
        + b"\xb5\x62\x01\x07"
        + RMC
        + b"\r\n"
        + b"$GP\xffRMC*00\r\n"
        + RMC.replace(b"171003", b"171004")[:-2]
        + b"6F\r\n"
    )
    events = _decode_all(data)
    assert [e.reason for e in events if isinstance(e, Skipped)] == [
        "garbage",
        "garbage",
        "bad_char",
    ]
    assert len([e for e in events if isinstance(e, Fix)]) == 2


def test_two_sentences_on_one_line_are_both_read() -> None:
    # gp-320fw-2019-04-07-coldboot: a receiver lost its line end after an overrun.
    (sentence_a, sentence_b) = [
        e for e in _decode_all(GSA + RMC + b"\r\n") if isinstance(e, Sentence)
    ]
    assert (sentence_a.kind, sentence_b.kind) == ("GSA", "RMC")


def test_an_overlong_line_is_dropped_once_then_decoding_resumes() -> None:
    data = b"$GPGSV," + b"1" * (MAX_SENTENCE_LENGTH * 4) + b"\r\n" + RMC + b"\r\n"
    assert _skips(data) == ["too_long"]
    assert len(_fixes(data)) == 1


def test_a_sentence_split_across_reads_is_decoded() -> None:
    decoder = NmeaDecoder()
    data = GGA + b"\r\n" + RMC + b"\r\n"
    events = [event for byte in range(len(data)) for event in decoder.feed(data[byte : byte + 1])]
    assert [type(e).__name__ for e in events] == ["Sentence", "Sentence", "Fix"]


def test_proprietary_sentences_are_framed_and_ignored() -> None:
    pglor = _sentence("PGLOR,1,FIX,1.0,1.0")
    (sentence,) = _decode_all(pglor + b"\r\n")
    assert isinstance(sentence, Sentence)
    assert (sentence.talker, sentence.kind) == ("P", "GLOR")


def test_framer_rejects_absurd_bounds() -> None:
    with pytest.raises(ValueError, match="max_length"):
        SentenceFramer(4)


# --- properties -----------------------------------------------------------------------------

chunks = st.lists(st.binary(max_size=120), max_size=12)
nmea_like = st.lists(
    st.sampled_from(
        [
            b"$",
            b"*",
            b",",
            b"\r",
            b"\n",
            b"GPRMC",
            b"GPGGA",
            b"GPGSA",
            b"A",
            b"V",
            b"N",
            b"S",
            b"E",
            b"W",
            b"0",
            b"5",
            b".",
            b"12",
            b"68",
            b"\xff",
            b" ",
        ]
    )
    | st.binary(max_size=4),
    max_size=80,
).map(b"".join)
known_events = (Sentence, Fix, NoFix, Skipped)


@given(data=chunks)
def test_arbitrary_bytes_never_raise_and_skip_with_known_reasons(data: list[bytes]) -> None:
    decoder = NmeaDecoder()
    events = [event for chunk in data for event in decoder.feed(chunk)] + decoder.flush()
    for event in events:
        assert isinstance(event, known_events)
        if isinstance(event, Skipped):
            assert event.reason in MALFORMED_REASONS


@given(raw=nmea_like | st.binary(max_size=300))
def test_parse_sentence_raises_only_protocol_errors(raw: bytes) -> None:
    try:
        sentence = parse_sentence(raw)
    except ProtocolError:
        return
    for decode in (decode_rmc, decode_gga, decode_gsa):
        try:
            decode(sentence)
        except ProtocolError:
            continue


@given(
    body=st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="$*"), max_size=90
    ),
    kind=st.sampled_from(["GPRMC", "GNRMC", "GPGGA", "GPGSA"]),
)
def test_checksummed_nonsense_raises_only_protocol_errors(body: str, kind: str) -> None:
    sentence = parse_sentence(_sentence(f"{kind},{body}"))
    decoders: dict[str, Callable[[Sentence], object]] = {
        "RMC": decode_rmc,
        "GGA": decode_gga,
        "GSA": decode_gsa,
    }
    decode = decoders[sentence.kind]
    try:
        result = decode(sentence)
    except ProtocolError:
        return
    if isinstance(result, Fix):
        assert -90 <= result.lat <= 90
        assert -180 <= result.lon <= 180


@given(stream=nmea_like, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_chunking_does_not_change_the_result(stream: bytes, cuts: list[int]) -> None:
    whole = _decode_all(stream)
    decoder = NmeaDecoder()
    events: list[object] = []
    start = 0
    for cut in sorted(min(c, len(stream)) for c in cuts):
        events += decoder.feed(stream[start:cut])
        start = cut
    events += decoder.feed(stream[start:]) + decoder.flush()
    assert events == whole


# hypothesis takes naive bounds and attaches the zone itself
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2099, 12, 31, 23, 59, 59),  # noqa: DTZ001
    timezones=st.just(UTC),
)
fixes = st.builds(
    Fix,
    time=moments,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed_mps=st.none() | st.floats(0, 400),
    course=st.none() | st.floats(0, 359.99),
)


@given(fix=fixes, talker=st.sampled_from(["GP", "GN", "GL"]))
def test_rmc_round_trip(fix: Fix, talker: str) -> None:
    data = encode_rmc(fix, talker)
    assert data.endswith(b"\r\n")
    (decoded,) = _fixes(data)
    assert decoded.time == fix.time.replace(microsecond=fix.time.microsecond // 1000 * 1000)
    assert decoded.lat == pytest.approx(fix.lat, abs=1e-7)
    assert decoded.lon == pytest.approx(fix.lon, abs=1e-7)
    if fix.speed_mps is None:
        assert decoded.speed_mps is None
    else:
        assert decoded.speed_mps == pytest.approx(fix.speed_mps, abs=0.0005 * KNOT_MPS * 1.01)
    if fix.course is None:
        assert decoded.course is None
    else:
        assert decoded.course == pytest.approx(fix.course, abs=0.005 + 1e-9)


def test_encode_rmc_refuses_a_year_two_digits_cannot_carry() -> None:
    fix = Fix(time=datetime(1999, 12, 31, tzinfo=UTC), lat=1.0, lon=1.0)
    with pytest.raises(ValueError, match="two-digit"):
        encode_rmc(fix)


def test_encode_rmc_carries_minutes_into_degrees() -> None:
    fix = Fix(time=datetime(2024, 1, 1, tzinfo=UTC), lat=47.99999999999, lon=-0.0000000001)
    assert b",4800.000000,N,00000.000000,E," in encode_rmc(fix)


def test_encode_sentence_refuses_framing_characters() -> None:
    with pytest.raises(ValueError, match="printable"):
        encode_sentence("GPTXT", ["a*b"])
    assert (
        encode_sentence("GPTXT", ["01", "01", "02", "hello"])
        == _sentence("GPTXT,01,01,02,hello") + b"\r\n"
    )


def test_encoded_time_carries_across_midnight() -> None:
    fix = Fix(time=datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC), lat=1.0, lon=1.0)
    (decoded,) = _fixes(encode_rmc(fix))
    assert decoded.time == datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    assert decoded.time + timedelta(milliseconds=1) == datetime(2024, 3, 1, tzinfo=UTC)
