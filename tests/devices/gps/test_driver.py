"""The driver against real transports: a pty fed by the simulator, and a TCP server speaking
gpsd's JSON. Health and sink are small recording fakes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devices.base import CommandRejected, DeviceReading
from devices.gps.driver import GpsDevice, GpsSettings
from devices.gps.fix import Fix
from devices.gps.gpsd import WATCH, encode_tpv
from devices.gps.nmea import encode_rmc, encode_sentence
from devices.gps.simulator import Pty, open_pty, plan, replay

SHANGHAI = ZoneInfo("Asia/Shanghai")
WAIT = 10.0


class Recorder:
    """What the agent would see: the sink's readings and the device health, with a way to
    wait until they satisfy a condition."""

    def __init__(self) -> None:
        self.readings: list[DeviceReading] = []
        self.frames = 0
        self.errors: Counter[str] = Counter()
        self.availability: list[bool] = []
        self._changed = asyncio.Event()

    def sink(self, reading: DeviceReading) -> None:
        self.readings.append(reading)
        self._changed.set()

    def frame(self) -> None:
        self.frames += 1
        self._changed.set()

    def error(self, kind: str) -> None:
        self.errors[kind] += 1
        self._changed.set()

    def available(self, online: bool) -> None:
        self.availability.append(online)
        self._changed.set()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def _running(device: GpsDevice, recorder: Recorder) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(device.run(recorder.sink, recorder), name="gps-under-test")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(WAIT):
                await task


def _track(start: datetime, count: int) -> bytes:
    """A van driving north at 10 m/s: GSA (3D) then RMC, once a second."""
    gsa = encode_sentence(
        "GPGSA", ["A", "3", "14", "30", "09", "29", *[""] * 8, "2.3", "1.0", "2.0"]
    )
    return b"".join(
        gsa
        + encode_rmc(
            Fix(
                time=start + timedelta(seconds=i),
                lat=31.23 + i * 10 / 111_195,
                lon=121.47,
                speed_mps=10.0,
                course=0.0,
            )
        )
        for i in range(count)
    )


def _fast(transport: str) -> GpsSettings:
    # Offline and reconnect on a test's time scale, through settings, not by patching sleep.
    return GpsSettings(
        transport=transport,
        offline_after=0.5,
        connect_timeout=2.0,
        backoff_initial=0.02,
        backoff_max=0.1,
        backoff_jitter=0.0,
    )


@pytest.fixture
def pty() -> Iterator[Pty]:
    port = open_pty()
    yield port
    port.close()


async def test_fixes_from_a_pty_reach_the_sink_then_silence_means_offline(pty: Pty) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    track = plan(_track(start, 30))
    device = GpsDevice("van-3-gps", _fast(pty.path))
    health = Recorder()
    readings = health.readings
    async with _running(device, health):
        # pyserial flushes input when it opens the port: let the driver open it first.
        await asyncio.sleep(0.2)
        await replay(pty.master, track, speed=20.0)
        await health.until(lambda: len(readings) >= 20, "fixes in the sink")
        await health.until(lambda: health.availability[-1:] == [False], "offline after silence")
    assert health.availability[:2] == [True, False]
    assert health.errors["timeout"] >= 1
    assert health.frames >= 40
    first = readings[0]
    assert (first.device, first.kind, first.event) == ("van-3-gps", "fix", False)
    assert first.body["mode"] == 3
    assert first.body["speed_mps"] == pytest.approx(10.0, abs=0.001)
    assert first.time.tzinfo is not None
    times = [reading.time for reading in readings]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    status = await device.command("status", {})
    assert status["online"] is False
    assert status["accepted"] == len(readings)


async def test_the_driver_comes_back_when_the_port_appears(tmp_path: Path, pty: Pty) -> None:
    # A USB receiver unplugged at start: the path does not exist until the pty is linked there.
    link = tmp_path / "ttyGPS"
    device = GpsDevice("van-3-gps", _fast(str(link)))
    health = Recorder()
    readings = health.readings
    start = datetime.now(UTC).replace(microsecond=0)
    async with _running(device, health):
        await health.until(lambda: health.errors["io"] >= 3, "failed attempts to open")
        assert health.availability == [False]
        link.symlink_to(pty.path)
        await asyncio.sleep(0.3)
        await replay(pty.master, plan(_track(start, 10)), speed=20.0)
        await health.until(lambda: len(readings) >= 5, "fixes after the port appeared")
    assert health.availability[:2] == [False, True]


async def test_a_silent_port_stays_open_then_is_reopened(tmp_path: Path, pty: Pty) -> None:
    link = tmp_path / "ttyGPS"
    link.symlink_to(pty.path)
    settings = dataclasses.replace(_fast(str(link)), offline_after=0.3, reconnect_after=1.0)
    device = GpsDevice("van-3-gps", settings)
    health = Recorder()
    start = datetime.now(UTC).replace(microsecond=0)
    other = open_pty()
    try:
        async with _running(device, health):
            await health.until(lambda: health.availability == [False], "silent from the start")
            # offline, yet still listening on the same port
            os.write(pty.master, _track(start, 2))
            await health.until(lambda: len(health.readings) == 2, "fixes while offline")
            await health.until(lambda: health.availability == [False, True, False], "offline again")
            link.unlink()
            link.symlink_to(other.path)
            # the session gives up after reconnect_after: the run loop counts one more timeout
            await health.until(lambda: health.errors["timeout"] == 3, "a reconnect")
            await asyncio.sleep(0.3)
            os.write(other.master, _track(start + timedelta(seconds=2), 2))
            await health.until(lambda: len(health.readings) == 4, "fixes from the new port")
    finally:
        other.close()
    assert health.availability == [False, True, False, True]


async def test_garbage_and_void_reports_are_counted_not_reported(pty: Pty) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    noise = (
        b"\xb5\x62\x01\x07junk\r\n"
        b"$GPRMC,,V,,,,,,,,,,N*53\r\n"
        # a fixed time, so that the corrupted checksum never happens to be right
        + encode_rmc(Fix(time=datetime(2026, 1, 1, tzinfo=UTC), lat=31.0, lon=121.0))[:-4]
        + b"00\r\n"
    )
    device = GpsDevice("van-3-gps", _fast(pty.path))
    health = Recorder()
    readings = health.readings
    async with _running(device, health):
        await asyncio.sleep(0.2)
        os.write(pty.master, noise + _track(start + timedelta(seconds=1), 2))
        await health.until(lambda: len(readings) == 2, "the two good fixes")
    assert health.errors["garbage"] == 1
    assert health.errors["checksum"] == 1
    status = await device.command("status", {})
    assert status["skipped"] == {"garbage": 1, "checksum": 1, "void": 1}


async def test_filters_reject_by_reason_with_the_clock_given(pty: Pty) -> None:
    now = datetime(2026, 11, 24, 9, 30, tzinfo=SHANGHAI)
    base = now.astimezone(UTC) - timedelta(seconds=5)
    fixes = [
        Fix(time=base, lat=31.23, lon=121.47),
        Fix(time=base, lat=31.23, lon=121.47),  # duplicate
        Fix(time=base + timedelta(seconds=1), lat=0.0, lon=0.0),  # zero
        Fix(time=base + timedelta(seconds=2), lat=32.23, lon=121.47),  # 111 km in 2 s
        Fix(time=base - timedelta(days=2), lat=31.23, lon=121.47),  # past
        Fix(time=base + timedelta(seconds=3), lat=31.2301, lon=121.47),
    ]
    device = GpsDevice("van-3-gps", _fast(pty.path), clock=lambda: now)
    health = Recorder()
    readings = health.readings
    async with _running(device, health):
        await asyncio.sleep(0.2)
        os.write(pty.master, b"".join(encode_rmc(fix) for fix in fixes))
        await health.until(lambda: len(readings) == 2, "the two plausible fixes")
        await health.until(lambda: health.errors["rejected_past"] == 1, "the last rejection")
    assert {kind: count for kind, count in health.errors.items() if kind.startswith("rej")} == {
        "rejected_duplicate": 1,
        "rejected_zero": 1,
        "rejected_speed": 1,
        "rejected_past": 1,
    }
    assert [reading.body["lat"] for reading in readings] == pytest.approx([31.23, 31.2301])


async def test_status_is_the_only_command() -> None:
    device = GpsDevice("van-3-gps", GpsSettings(transport="/dev/null"))
    with pytest.raises(CommandRejected, match="only status"):
        await device.command("open", {})
    assert (await device.command("status", {}))["last_fix"] is None


# --- gpsd ------------------------------------------------------------------------------------


class FakeGpsd:
    """A TCP server speaking gpsd's watcher protocol, serving one script per connection."""

    def __init__(self, scripts: list[list[bytes]]) -> None:
        self.scripts = scripts
        self.watches: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> FakeGpsd:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        async with asyncio.timeout(WAIT):
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        try:
            async with asyncio.timeout(WAIT):
                writer.write(
                    b'{"class":"VERSION","release":"3.22","rev":"3.22",'
                    b'"proto_major":3,"proto_minor":14}\r\n'
                )
                self.watches.append(await reader.readline())
                writer.write(
                    b'{"class":"DEVICES","devices":[{"class":"DEVICE",'
                    b'"path":"/dev/ttyUSB0","driver":"NMEA0183"}]}\r\n'
                    b'{"class":"WATCH","enable":true,"json":true}\r\n'
                )
                for line in self.scripts[index] if index < len(self.scripts) else []:
                    writer.write(line)
                    await writer.drain()
                    await asyncio.sleep(0.01)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                async with asyncio.timeout(WAIT):
                    await writer.wait_closed()


async def test_gpsd_source_watches_decodes_filters_and_reconnects() -> None:
    now = datetime(2026, 11, 24, 9, 30, tzinfo=SHANGHAI)
    base = now.astimezone(UTC) - timedelta(seconds=30)

    def fix(seconds: int, eph: float | None = None) -> Fix:
        return Fix(
            time=base + timedelta(seconds=seconds),
            lat=31.23 + seconds * 1e-4,
            lon=121.47,
            speed_mps=11.1,
            course=2.0,
            mode=3,
            eph=eph,
        )

    first = [
        encode_tpv(fix(0, eph=8.0)),
        b'{"class":"TPV","mode":1}\r\n',
        b'{"class":"SKY","hdop":1.0}\r\n',
        b"not json\r\n",
        encode_tpv(fix(1, eph=500.0)),
        encode_tpv(fix(2, eph=8.0)),
        encode_tpv(fix(2, eph=8.0)),
    ]
    second = [encode_tpv(fix(3, eph=8.0))]
    health = Recorder()
    readings = health.readings
    async with FakeGpsd([first, second]) as gpsd:
        device = GpsDevice("van-3-gps", _fast(f"gpsd://127.0.0.1:{gpsd.port}"), clock=lambda: now)
        async with _running(device, health):
            await health.until(lambda: len(readings) == 3, "fixes over two connections")
    assert gpsd.watches[0] == WATCH
    assert gpsd.connections >= 2
    assert health.errors["disconnected"] >= 1
    assert health.errors["bad_json"] == 1
    assert health.errors["rejected_accuracy"] == 1
    assert health.errors["rejected_duplicate"] == 1
    assert [r.time for r in readings] == [fix(s).time for s in (0, 2, 3)]
    assert readings[0].body == {
        "lat": 31.23,
        "lon": 121.47,
        "speed_mps": 11.1,
        "course": 2.0,
        "mode": 3,
        "eph": 8.0,
    }
    assert health.availability[0] is True


async def test_gpsd_that_refuses_connections_is_retried() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    async with asyncio.timeout(WAIT):
        await server.wait_closed()
    device = GpsDevice("van-3-gps", _fast(f"gpsd://127.0.0.1:{port}"))
    health = Recorder()
    async with _running(device, health):
        await health.until(
            lambda: health.errors["disconnected"] + health.errors["io"] >= 3,
            "several refused attempts",
        )
    assert health.availability == [False]
