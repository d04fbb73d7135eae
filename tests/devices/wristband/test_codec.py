"""Codecs: every vector of docs/devices.md, rejects included; seeded fuzzers and round trips."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from devices.base import ProtocolError
from devices.wristband import profile
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
    decode_advert_mirror,
    decode_battery_level,
    decode_control,
    decode_custody_status,
    decode_heart_rate,
    encode_advert_mirror,
    encode_battery_level,
    encode_control,
    encode_custody_status,
    encode_heart_rate,
    mirror_from_manufacturer_data,
)
from devices.wristband.errors import (
    EncodeError,
    FieldValueError,
    FrameLengthError,
    UnknownCompanyError,
    WristbandProtocolError,
)
from devices.wristband.gap import build_advertising_data, parse_advertising_data, uuid_from_le

FUZZ_SEED = 20261124

# docs/devices.md, "BLE wristbands": Heart Rate Measurement vectors.
HEART_RATE_VECTORS = [
    ("00 48", HeartRateMeasurement(72, contact=None)),
    ("04 48", HeartRateMeasurement(72, contact=False)),
    ("06 48", HeartRateMeasurement(72, contact=True)),
    ("01 2C 01", HeartRateMeasurement(300, uint16_format=True)),
    ("0E 48 D2 04", HeartRateMeasurement(72, contact=True, energy_kj=1234)),
    ("16 4B 33 03 48 03", HeartRateMeasurement(75, contact=True, rr_intervals=(819, 840))),
    (
        "1F 82 00 05 00 00 04",
        HeartRateMeasurement(
            130, contact=True, energy_kj=5, rr_intervals=(1024,), uint16_format=True
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), HEART_RATE_VECTORS)
def test_heart_rate_vectors_decode_and_encode_back(
    text: str, expected: HeartRateMeasurement
) -> None:
    data = bytes.fromhex(text)
    assert decode_heart_rate(data) == expected
    assert encode_heart_rate(expected) == data


def test_heart_rate_details() -> None:
    assert decode_heart_rate(bytes.fromhex("16 4B 33 03 48 03")).rr_seconds == (
        819 / 1024,
        840 / 1024,
    )
    assert decode_heart_rate(bytes.fromhex("1F 82 00 05 00 00 04")).rr_seconds == (1.0,)
    # "contact not supported" is None, never False: the strap is not reported off the skin.
    assert decode_heart_rate(bytes.fromhex("00 48")).contact is None
    # Bit 1 without bit 2 means nothing (Heart Rate Service 3.1.1.2).
    assert decode_heart_rate(bytes.fromhex("02 48")).contact is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", FrameLengthError),
        ("01 48", FrameLengthError),
        ("10 48 33", FrameLengthError),
        ("08 48 01", FrameLengthError),
        ("00 48 00", FrameLengthError),
    ],
)
def test_heart_rate_rejects(text: str, error: type[WristbandProtocolError]) -> None:
    with pytest.raises(error) as caught:
        decode_heart_rate(bytes.fromhex(text))
    assert isinstance(caught.value, ProtocolError)
    assert caught.value.what == "heart rate measurement"
    assert caught.value.data == bytes.fromhex(text)


def test_battery_level() -> None:
    assert decode_battery_level(b"\x57") == 87
    assert encode_battery_level(87) == b"\x57"
    for bad in (b"", b"\x57\x00"):
        with pytest.raises(FrameLengthError):
            decode_battery_level(bad)
    with pytest.raises(FieldValueError):
        decode_battery_level(b"\x65")
    with pytest.raises(EncodeError):
        encode_battery_level(101)


def test_custody_status_vector() -> None:
    data = bytes.fromhex("06 01 00 00 F1 53 65")
    status = decode_custody_status(data)
    assert status == CustodyStatus(
        CustodyFlags.SKIN_CONTACT | CustodyFlags.TAMPER_LATCHED, 1, 1_700_000_000
    )
    assert not status.strap_closed
    assert status.skin_contact
    assert status.tamper_latched
    assert not status.low_battery
    assert status.band_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert encode_custody_status(status) == data


@pytest.mark.parametrize("text", ["", "06 01 00 00 F1 53", "06 01 00 00 F1 53 65 00"])
def test_custody_status_rejects(text: str) -> None:
    with pytest.raises(FrameLengthError):
        decode_custody_status(bytes.fromhex(text))


def test_reserved_flag_bits_survive_a_round_trip() -> None:
    data = bytes.fromhex("C1 02 00 00 00 00 00")
    assert encode_custody_status(decode_custody_status(data)) == data


def test_advertisement_mirror_vector() -> None:
    data = bytes.fromhex("FF FF 57 03 01 00")
    mirror = decode_advert_mirror(data)
    assert mirror == AdvertMirror(87, CustodyFlags.STRAP_CLOSED | CustodyFlags.SKIN_CONTACT, 1)
    assert mirror.strap_closed
    assert not mirror.tamper_latched
    assert encode_advert_mirror(mirror) == data
    # bleak reports manufacturer data keyed by company id, the id itself stripped.
    assert mirror_from_manufacturer_data({0xFFFF: bytes.fromhex("57 03 01 00")}) == mirror
    assert mirror_from_manufacturer_data({0x004C: b"\x02\x15"}) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", FrameLengthError),
        ("FF FF 57 03 01", FrameLengthError),
        ("FF FF 57 03 01 00 00", FrameLengthError),
        ("4C 00 57 03 01 00", UnknownCompanyError),
        ("FF FF 65 03 01 00", FieldValueError),
    ],
)
def test_advertisement_mirror_rejects(text: str, error: type[WristbandProtocolError]) -> None:
    with pytest.raises(error):
        decode_advert_mirror(bytes.fromhex(text))


def test_control_point() -> None:
    assert decode_control(b"\x01") is profile.ControlOpcode.CLEAR_TAMPER
    assert encode_control(profile.ControlOpcode.CLEAR_TAMPER) == b"\x01"
    with pytest.raises(FieldValueError):
        decode_control(b"\x02")
    with pytest.raises(FrameLengthError):
        decode_control(b"")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (HeartRateMeasurement(256), "outside 0..255"),
        (HeartRateMeasurement(70, energy_kj=70_000), "energy"),
        (HeartRateMeasurement(70, rr_intervals=(-1,)), "RR interval"),
    ],
)
def test_encoders_refuse_what_the_format_cannot_carry(
    value: HeartRateMeasurement, message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        encode_heart_rate(value)


def test_custom_uuids_share_the_documented_base() -> None:
    assert profile.CUSTODY_SERVICE == "a9450001-ab53-4924-8eb0-fd408b35a94a"
    assert profile.CUSTODY_STATUS == "a9450002-ab53-4924-8eb0-fd408b35a94a"
    assert profile.CUSTODY_CONTROL_POINT == "a9450003-ab53-4924-8eb0-fd408b35a94a"


# --- seeded fuzzers: hostile bytes raise ProtocolError or nothing ------------------------------

DECODERS: list[Callable[[bytes], Any]] = [
    decode_heart_rate,
    decode_battery_level,
    decode_custody_status,
    decode_advert_mirror,
    decode_control,
]


@pytest.mark.parametrize("decode", DECODERS, ids=lambda decode: decode.__name__)
def test_arbitrary_bytes_raise_only_protocol_errors(decode: Callable[[bytes], Any]) -> None:
    @seed(FUZZ_SEED)
    @settings(max_examples=400, database=None, deadline=None)
    @given(st.binary(max_size=24))
    def check(data: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            decode(data)

    check()


@seed(FUZZ_SEED)
@settings(max_examples=400, database=None, deadline=None)
@given(st.binary(max_size=64))
def test_advertising_data_parser_never_raises(data: bytes) -> None:
    fields = parse_advertising_data(data)
    assert fields.malformed >= 0


# --- round trips ----------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
flags = st.integers(0, 0xFF).map(CustodyFlags)


@st.composite
def heart_rates(draw: st.DrawFn) -> HeartRateMeasurement:
    wide = draw(st.booleans())
    return HeartRateMeasurement(
        bpm=draw(u16 if wide else st.integers(0, 0xFF)),
        contact=draw(st.none() | st.booleans()),
        energy_kj=draw(st.none() | u16),
        rr_intervals=tuple(draw(st.lists(u16, max_size=8))),
        uint16_format=wide,
    )


@seed(FUZZ_SEED)
@settings(max_examples=300, database=None, deadline=None)
@given(heart_rates())
def test_heart_rate_round_trip(measurement: HeartRateMeasurement) -> None:
    assert decode_heart_rate(encode_heart_rate(measurement)) == measurement


@seed(FUZZ_SEED)
@settings(max_examples=300, database=None, deadline=None)
@given(st.builds(CustodyStatus, flags, u16, st.integers(0, 0xFFFF_FFFF)))
def test_custody_status_round_trip(status: CustodyStatus) -> None:
    assert decode_custody_status(encode_custody_status(status)) == status


@seed(FUZZ_SEED)
@settings(max_examples=300, database=None, deadline=None)
@given(st.builds(AdvertMirror, st.integers(0, 100), flags, u16))
def test_advertisement_mirror_round_trip(mirror: AdvertMirror) -> None:
    assert decode_advert_mirror(encode_advert_mirror(mirror)) == mirror


@seed(FUZZ_SEED)
@settings(max_examples=100, database=None, deadline=None)
@given(st.integers(0, 100))
def test_battery_round_trip(percent: int) -> None:
    assert decode_battery_level(encode_battery_level(percent)) == percent


# --- advertising data -------------------------------------------------------------------------


def test_advertising_data_of_a_band() -> None:
    data = build_advertising_data(
        [
            (0x01, b"\x06"),
            (0x09, b"PB-0417"),
            (0x03, b"\x0d\x18"),
            (0xFF, bytes.fromhex("FF FF 57 03 01 00")),
        ]
    )
    fields = parse_advertising_data(data)
    assert fields.local_name == "PB-0417"
    assert fields.service_uuids == [profile.HEART_RATE_SERVICE]
    assert fields.manufacturer_data == {0xFFFF: bytes.fromhex("57 03 01 00")}
    assert fields.malformed == 0


def test_advertising_data_skips_and_counts_malformed_structures() -> None:
    # A truncated TX power, a 16-bit UUID list of odd length, then a structure running past
    # the end: the good name in between is kept.
    data = (
        bytes.fromhex("01 0A")
        + bytes.fromhex("02 03 0D")
        + bytes.fromhex("03 09 41 42")
        + bytes.fromhex("09 FF FF FF")
    )
    fields = parse_advertising_data(data)
    assert fields.local_name == "AB"
    assert fields.tx_power is None
    assert fields.service_uuids == []
    assert fields.malformed == 3


def test_uuid_from_little_endian() -> None:
    assert uuid_from_le(b"\x0d\x18") == "0000180d-0000-1000-8000-00805f9b34fb"
    raw = bytes(reversed(bytes.fromhex("a9450002ab5349248eb0fd408b35a94a")))
    assert uuid_from_le(raw) == profile.CUSTODY_STATUS
