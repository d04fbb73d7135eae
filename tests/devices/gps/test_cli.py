"""``precinct gps decode`` and ``precinct gps simulate`` as real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devices.gps.fix import Fix
from devices.gps.nmea import NmeaDecoder, encode_rmc

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT.parent / "shared" / "data" / "gpsd-nmea"
TIMEOUT = 60


def _precinct(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.command_line", *args],
        cwd=ROOT,
        capture_output=True,
        input=stdin,
        timeout=TIMEOUT,
        check=False,
    )


def _log(tmp_path: Path) -> Path:
    start = datetime(2026, 11, 24, 1, 30, 0, 250000, tzinfo=UTC)
    good = [
        encode_rmc(
            Fix(
                time=start + timedelta(seconds=s),
                lat=31.23,
                lon=-121.47,
                speed_mps=5.0,
                course=90.0,
            )
        )
        for s in range(2)
    ]
    path = tmp_path / "van.log"
    path.write_bytes(
        b"# Name: a test capture\n"
        + good[0]
        + b"\xb5\x62\x01\x07\x00junk\r\n"  # binary, then text outside a sentence
        + good[1][:-4]
        + b"00\r\n"  # bad checksum
        + b"$GPRMC,,V,,,,,,,,,,N*53\r\n"  # void
        + good[1]
    )
    return path


def test_decode_prints_fixes_as_json_lines_and_counts_skips(tmp_path: Path) -> None:
    result = _precinct("gps", "decode", str(_log(tmp_path)))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines == [
        {
            "time": "2026-11-24T01:30:00.250Z",
            "lat": 31.23,
            "lon": -121.47,
            "speed_mps": pytest.approx(5.0, abs=1e-3),
            "course": 90.0,
            "mode": 2,
        },
        {
            "time": "2026-11-24T01:30:01.250Z",
            "lat": 31.23,
            "lon": -121.47,
            "speed_mps": pytest.approx(5.0, abs=1e-3),
            "course": 90.0,
            "mode": 2,
        },
    ]
    assert result.stderr.decode().strip() == (
        "gps decode: 2 fixes; skipped 2 malformed (checksum 1, garbage 1); 1 without a fix (void 1)"
    )


def test_decode_reads_standard_input_and_gpsd_json(tmp_path: Path) -> None:
    tpv = (
        b'{"class":"TPV","mode":3,"time":"2010-06-12T17:10:03.972Z","lat":52.014198333,'
        b'"lon":4.363031667,"speed":0.463,"track":22.1}\n{"class":"TPV","mode":1}\n'
    )
    result = _precinct("gps", "decode", "--format", "gpsd", "-", stdin=tpv)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "time": "2010-06-12T17:10:03.972Z",
        "lat": 52.014198333,
        "lon": 4.363031667,
        "speed_mps": 0.463,
        "course": 22.1,
        "mode": 3,
    }
    assert b"1 without a fix (void 1)" in result.stderr


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the gpsd NMEA corpus is not at {CORPUS}")
def test_decode_a_cold_boot_full_of_broken_sentences() -> None:
    # A receiver rebooting mid-stream: overruns, binary junk, void fixes with garbage dates.
    result = _precinct("gps", "decode", str(CORPUS / "gp-320fw-2019-04-07-coldboot.log"))
    assert result.returncode == 0, result.stderr
    (fix,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert fix["time"] == "2019-04-07T00:03:45.030Z"
    assert result.stderr.decode().strip() == (
        "gps decode: 1 fixes; skipped 46 malformed (bad_char 4, checksum 32, garbage 2, "
        "no_checksum 8); 15 without a fix (void 15)"
    )


def test_decode_usage_and_failures(tmp_path: Path) -> None:
    assert _precinct("gps", "decode", "--help").returncode == 0
    assert _precinct("gps", "simulate", "--help").returncode == 0
    assert _precinct("gps", "decode").returncode == 2
    missing = _precinct("gps", "decode", str(tmp_path / "absent.log"))
    assert missing.returncode == 1
    assert b"cannot read" in missing.stderr
    assert (
        _precinct("gps", "simulate", "--track", str(_log(tmp_path)), "--speed", "0").returncode == 2
    )


def _read_pty_until_exit(
    process: subprocess.Popen[bytes], path: str, first: list[datetime] | None = None
) -> bytes:
    """Everything the simulator sends; ``first`` gets the time the first bytes were read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    received = bytearray()
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                if process.poll() is not None:
                    return bytes(received)
                time.sleep(0.02)
                continue
            except OSError:  # EIO, on some systems, once the simulator closed its end
                return bytes(received)
            if not chunk:  # hung up: the simulator closed its end
                return bytes(received)
            if first is not None and not received:
                first.append(datetime.now(UTC))
            received += chunk
    finally:
        os.close(fd)
    pytest.fail("the simulator did not finish")


def test_simulate_replays_a_track_on_a_pty_and_ends_with_it(tmp_path: Path) -> None:
    track = tmp_path / "track.log"
    track.write_bytes(
        b"".join(
            encode_rmc(
                Fix(
                    time=datetime(2010, 6, 12, 17, 10, s, tzinfo=UTC),
                    lat=52.0 + s / 1e4,
                    lon=4.36,
                    speed_mps=1.0,
                    course=0.0,
                )
            )
            for s in range(5)
        )
    )
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "gps",
            "simulate",
            "--track",
            str(track),
            "--speed",
            "20",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stdout is not None
            path = process.stdout.readline().decode().strip()
            assert path.startswith("/dev/pts/")
            first_read: list[datetime] = []
            data = _read_pty_until_exit(process, path, first_read)
            _, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    decoder = NmeaDecoder()
    fixes = [e for e in decoder.feed(data) + decoder.flush() if isinstance(e, Fix)]
    assert len(fixes) == 5
    # restamped: the first fix is now, not in 2010
    assert abs(fixes[0].time - datetime.now(UTC)) < timedelta(seconds=30)
    # and sent once its time has come, as a receiver sends it
    assert fixes[0].time <= first_read[0]
    assert [f.time - fixes[0].time for f in fixes] == [timedelta(seconds=s) for s in range(5)]
    assert b"sent 5 fixes" in stderr


def test_simulate_stops_on_ctrl_c(tmp_path: Path) -> None:
    track = tmp_path / "track.log"
    track.write_bytes(
        encode_rmc(Fix(time=datetime(2010, 6, 12, 17, 10, tzinfo=UTC), lat=52.0, lon=4.36))
    )
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "gps",
            "simulate",
            "--track",
            str(track),
            "--loop",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stdout is not None
            path = process.stdout.readline().decode().strip()
            assert Path(path).exists()
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, err.decode(errors="replace")


def test_a_ctrl_c_before_the_replay_starts_still_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio.run hands back a Ctrl-C that lands before its task starts as the task's
    cancellation; the command still ends as interrupted, not with a traceback."""
    import asyncio

    import devices.gps.cli
    import edge_agent.command_line

    def cancelled_at_once(_args: object) -> int:
        async def replay() -> int:
            raise asyncio.CancelledError

        return asyncio.run(replay())

    monkeypatch.setattr(devices.gps.cli, "_simulate", cancelled_at_once)
    assert edge_agent.command_line.main(["gps", "simulate", "--track", "unused.log"]) == 130
