"""The simulator: planning a replay (pure) and writing it to a real pty on schedule."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devices.gps.fix import Fix
from devices.gps.nmea import NmeaDecoder, Sentence, encode_rmc, encode_sentence, parse_sentence
from devices.gps.simulator import (
    DEFAULT_PERIOD_SECONDS,
    Pty,
    open_pty,
    plan,
    replay,
    restamp,
    strip_comments,
    write_available,
)

T0 = datetime(2010, 6, 12, 17, 10, 3, 972000, tzinfo=UTC)


def _epoch(moment: datetime, lat: float = 52.0) -> bytes:
    day_time = moment.strftime("%H%M%S") + f".{moment.microsecond // 1000:03d}"
    gga = encode_sentence(
        "GPGGA",
        [
            day_time,
            "5200.8519",
            "N",
            "00421.7819",
            "E",
            "1",
            "08",
            "1.0",
            "8.8",
            "M",
            "44.8",
            "M",
            "",
            "0000",
        ],
    )
    gsv = encode_sentence("GPGSV", ["1", "1", "01", "12", "73", "067", "40"])
    return encode_rmc(Fix(time=moment, lat=lat, lon=4.36, speed_mps=1.0, course=22.0)) + gga + gsv


def _fixes(data: bytes) -> list[Fix]:
    decoder = NmeaDecoder()
    return [e for e in decoder.feed(data) + decoder.flush() if isinstance(e, Fix)]


def test_plan_paces_steps_by_rmc_time() -> None:
    data = b"# a recorded log\n" + b"".join(_epoch(T0 + timedelta(seconds=s)) for s in (0, 1, 3))
    track = plan(data)
    assert [step.at for step in track.steps] == [0.0, 1.0, 3.0]
    assert track.duration == 3.0
    assert track.fixes == 3
    assert all(step.data.count(b"$GPRMC") == 1 for step in track.steps)
    assert b"#" not in b"".join(step.data for step in track.steps)


def test_a_gap_or_a_jump_back_is_one_ordinary_cycle() -> None:
    data = b"".join(_epoch(T0 + timedelta(seconds=s)) for s in (0, 600, 1, 2))
    assert [step.at for step in plan(data).steps] == [0.0, 1.0, 2.0, 3.0]


def test_lines_before_the_first_rmc_go_with_it() -> None:
    gsv = encode_sentence("GPGSV", ["1", "1", "00"])
    track = plan(gsv + _epoch(T0) + _epoch(T0 + timedelta(seconds=1)))
    assert track.steps[0].data.startswith(gsv)
    assert [step.at for step in track.steps] == [0.0, 1.0]


def test_a_track_without_rmc_sends_a_line_a_period() -> None:
    gsv = encode_sentence("GPGSV", ["1", "1", "00"])
    track = plan(gsv * 3)
    assert [step.at for step in track.steps] == [
        0.0,
        DEFAULT_PERIOD_SECONDS,
        2 * DEFAULT_PERIOD_SECONDS,
    ]


def test_junk_is_replayed_as_recorded() -> None:
    junk = b"\xb5\x62\x01\x07 binary\r\n"
    data = _epoch(T0) + junk
    assert junk in plan(data).steps[0].data
    assert junk in plan(data, start=datetime(2026, 1, 1, tzinfo=UTC)).steps[0].data


def test_restamped_track_starts_now_and_keeps_its_rhythm() -> None:
    start = datetime(2026, 11, 24, 1, 30, 0, 500000, tzinfo=UTC)
    data = b"".join(_epoch(T0 + timedelta(seconds=s), lat=52 + s / 1000) for s in range(3))
    track = plan(data, start=start)
    fixes = _fixes(b"".join(step.data for step in track.steps))
    # whole seconds move: the fraction of the recorded second is kept
    assert [fix.time for fix in fixes] == [
        datetime(2026, 11, 24, 1, 30, s, 972000, tzinfo=UTC) for s in range(3)
    ]
    assert [fix.lat for fix in fixes] == pytest.approx([52.0, 52.001, 52.002])
    # A live replay waits for this moment before sending the first step.
    assert track.first_fix == fixes[0].time
    assert plan(data).first_fix == T0
    ggas = [
        line
        for step in track.steps
        for line in step.data.split(b"\r\n")
        if line.startswith(b"$GPGGA")
    ]
    assert [parse_sentence(line).fields[0] for line in ggas] == [
        "013000.972",
        "013001.972",
        "013002.972",
    ]


def _sentence(address: str, fields: list[str]) -> Sentence:
    return parse_sentence(encode_sentence(address, fields).rstrip())


def test_restamp_moves_zda_across_midnight_and_leaves_the_rest() -> None:
    zda = _sentence("GPZDA", ["235959.50", "31", "12", "2019", "", ""])
    moved = restamp(zda, 1)
    assert moved is not None
    assert parse_sentence(moved.rstrip()).fields[:4] == ("000000.50", "01", "01", "2020")
    void = _sentence("GPRMC", ["", "V", "", "", "", "", "", "", "", "", "", "N"])
    assert restamp(void, 3600) == void.raw + b"\r\n"
    proprietary = _sentence("PGLOR", ["1", "FIX", "1.0"])
    assert restamp(proprietary, 3600) == proprietary.raw + b"\r\n"
    gsv = _sentence("GPGSV", ["1", "1", "00"])
    assert restamp(gsv, 3600) == gsv.raw + b"\r\n"
    rmc = parse_sentence(
        encode_rmc(
            Fix(time=datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC), lat=1.0, lon=1.0)
        ).rstrip()
    )
    assert restamp(rmc, 1) is None  # 2100 does not fit in two digits


def test_strip_comments_keeps_other_lines_whole() -> None:
    assert (
        strip_comments(b"# c\n$A*00\r\n#x\r\njunk # not a comment\n")
        == b"$A*00\r\njunk # not a comment\n"
    )


@pytest.fixture
def pty() -> Iterator[Pty]:
    port = open_pty()
    yield port
    port.close()


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return b"".join(chunks)
        chunks.append(chunk)


async def test_replay_writes_the_track_to_the_pty_on_schedule(pty: Pty) -> None:
    os.set_blocking(pty.slave, False)
    track = plan(b"".join(_epoch(T0 + timedelta(seconds=s)) for s in range(5)))
    began = time.monotonic()
    async with asyncio.timeout(10):
        dropped = await replay(pty.master, track, speed=20.0)
    elapsed = time.monotonic() - began
    assert dropped == 0
    assert 4 / 20 <= elapsed < 2.0
    assert len(_fixes(_read_all(pty.slave))) == 5


async def test_replay_refuses_a_zero_speed(pty: Pty) -> None:
    with pytest.raises(ValueError, match="speed"):
        await replay(pty.master, plan(_epoch(T0)), speed=0)


def test_a_pty_nobody_reads_drops_what_it_cannot_hold(pty: Pty) -> None:
    dropped = sum(write_available(pty.master, b"x" * 4096) for _ in range(64))
    assert dropped > 0
