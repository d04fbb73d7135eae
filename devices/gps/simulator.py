"""A GPS receiver played back from a recorded NMEA track, over a pty: the fake that speaks the
real bytes, for the demo, for bench work without a van, and for the driver's tests.

:func:`plan` is pure: it cuts a track into timed steps (one per receiver cycle, paced by the RMC
times) and, to replay an old recording as live, moves every time in it by a whole number of
seconds so that the first fix falls on a given moment (RMC is re-encoded, GGA/GLL/GNS/ZDA get
new times, the rest passes unchanged). :func:`replay` writes the steps to a file descriptor on
schedule, in real time or faster.

On the pty: the simulator writes to the master side and keeps the slave open, so that the
driver can open and reopen the slave path at will. The slave is put in raw mode (no echo, no
line discipline). A receiver does not wait for a listener: bytes the pty cannot take are
dropped, as a UART would drop them, and counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import tty
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from devices.gps.errors import NmeaError
from devices.gps.fix import Fix
from devices.gps.nmea import Sentence, decode_rmc, encode_rmc, encode_sentence, parse_sentence

# Gaps longer than this between two RMC epochs are edits in a recording (several captures in
# one file), not silence to reproduce; they are replayed as one ordinary cycle.
MAX_GAP_SECONDS: Final = 5.0
DEFAULT_PERIOD_SECONDS: Final = 1.0

_TIME: Final = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})(\.[0-9]{1,6})?")
# Sentences with a UTC time of day, and where it is.
_TIME_FIELD: Final = {"GGA": 0, "GLL": 4, "GNS": 0, "GST": 0, "GBS": 0, "GRS": 0}


@dataclass(frozen=True, slots=True)
class Step:
    """Bytes to send ``at`` seconds (track time) after the start of the replay."""

    at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Track:
    """A planned replay: its steps in order, and the track time it spans. ``first_fix`` is the
    (restamped) time of the first fix, when there is one: a live replay starts then."""

    steps: tuple[Step, ...]
    duration: float
    fixes: int
    first_fix: datetime | None = None


def strip_comments(data: bytes) -> bytes:
    """Drop ``#`` comment lines, as gpsd's recorded logs carry a header of them."""
    return b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"#"))


def _sentence(line: bytes) -> Sentence | None:
    start = line.find(b"$")
    if start < 0:
        return None
    try:
        return parse_sentence(line[start:].rstrip(b"\r\n"))
    except NmeaError:
        return None


def _day_seconds(raw: str) -> float | None:
    match = _TIME.fullmatch(raw)
    if match is None:
        return None
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    return hours * 3600 + minutes * 60 + seconds + float(match.group(4) or 0)


def _move_time_of_day(raw: str, offset: int) -> str | None:
    match = _TIME.fullmatch(raw)
    if match is None:
        return None
    seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3))
    hours, rest = divmod((seconds + offset) % 86400, 3600)
    return f"{hours:02d}{rest // 60:02d}{rest % 60:02d}{match.group(4) or ''}"


def restamp(sentence: Sentence, offset: int) -> bytes | None:
    """``sentence`` (with CR LF) with its times moved by ``offset`` seconds; ``None`` to leave
    it out (a valid RMC whose new date two digits cannot carry)."""
    unchanged = sentence.raw + b"\r\n"
    if sentence.talker == "P":
        return unchanged
    fields = list(sentence.fields)
    if sentence.kind == "RMC":
        try:
            fix = decode_rmc(sentence)
        except NmeaError:
            return unchanged
        if not isinstance(fix, Fix):
            return unchanged
        moved = fix.time + timedelta(seconds=offset)
        if not 2000 <= moved.year <= 2099:
            return None
        return encode_rmc(
            Fix(time=moved, lat=fix.lat, lon=fix.lon, speed_mps=fix.speed_mps, course=fix.course),
            sentence.talker,
        )
    if sentence.kind == "ZDA" and len(fields) >= 4:
        return _restamp_zda(sentence, fields, offset)
    index = _TIME_FIELD.get(sentence.kind)
    if index is None or index >= len(fields):
        return unchanged
    moved_time = _move_time_of_day(fields[index], offset)
    if moved_time is None:
        return unchanged
    fields[index] = moved_time
    return encode_sentence(sentence.talker + sentence.kind, fields)


def _restamp_zda(sentence: Sentence, fields: list[str], offset: int) -> bytes | None:
    match = _TIME.fullmatch(fields[0])
    if match is None:
        return sentence.raw + b"\r\n"
    try:
        moment = datetime(
            int(fields[3]),
            int(fields[2]),
            int(fields[1]),
            int(match.group(1)),
            int(match.group(2)),
            int(match.group(3)),
            tzinfo=UTC,
        )
    except ValueError:
        return sentence.raw + b"\r\n"
    moved = moment + timedelta(seconds=offset)
    fields[0] = moved.strftime("%H%M%S") + (match.group(4) or "")
    fields[1], fields[2], fields[3] = moved.strftime("%d"), moved.strftime("%m"), f"{moved.year}"
    return encode_sentence(sentence.talker + sentence.kind, fields)


def _first_fix(sentences: list[Sentence | None]) -> Fix | None:
    for sentence in sentences:
        if sentence is not None and sentence.kind == "RMC" and sentence.talker != "P":
            try:
                fix = decode_rmc(sentence)
            except NmeaError:
                continue
            if isinstance(fix, Fix):
                return fix
    return None


def plan(data: bytes, *, start: datetime | None = None, max_gap: float = MAX_GAP_SECONDS) -> Track:
    """Cut a recorded track into timed steps; with ``start``, restamp it to begin then.

    A step begins at each RMC whose time differs from the previous one; the time between steps
    is the difference of their RMC times (``DEFAULT_PERIOD_SECONDS`` after a gap longer than
    ``max_gap``, a jump back, or without times). A track without RMC sends one line per
    default period. Lines that are not sentences (junk included) go out as recorded.
    """
    lines = [line for line in strip_comments(data).splitlines(keepends=True) if line.strip()]
    sentences = [_sentence(line) for line in lines]
    offset = 0
    first = _first_fix(sentences)
    if start is not None and first is not None:
        offset = math.floor(start.timestamp()) - math.floor(first.time.timestamp())
    paced_by_rmc = any(_is_rmc(s) for s in sentences)
    steps: list[Step] = []
    chunk = bytearray()
    chunk_at = at = 0.0
    epoch: float | None = None
    seen_rmc = False
    fixes = 0
    for index, (line, sentence) in enumerate(zip(lines, sentences, strict=True)):
        boundary = False
        if paced_by_rmc and sentence is not None and _is_rmc(sentence):
            seconds = _day_seconds(sentence.fields[0]) if sentence.fields else None
            if not seen_rmc:
                seen_rmc = True
            elif seconds is None or seconds != epoch:
                gap = None if seconds is None or epoch is None else (seconds - epoch) % 86400
                at += gap if gap is not None and 0 < gap <= max_gap else DEFAULT_PERIOD_SECONDS
                boundary = True
            epoch = seconds
        elif not paced_by_rmc and index > 0:
            at += DEFAULT_PERIOD_SECONDS
            boundary = True
        if boundary and chunk:
            steps.append(Step(chunk_at, bytes(chunk)))
            chunk = bytearray()
        if not chunk:
            chunk_at = round(at, 6)
        out = line if sentence is None or start is None else restamp(sentence, offset)
        if out is None:
            continue
        chunk += out if out.endswith(b"\n") else out + b"\r\n"
        if sentence is not None and _is_rmc(sentence) and _is_fix(sentence):
            fixes += 1
    if chunk:
        steps.append(Step(chunk_at, bytes(chunk)))
    first_fix = None if first is None else first.time + timedelta(seconds=offset)
    return Track(tuple(steps), steps[-1].at if steps else 0.0, fixes, first_fix)


def _is_rmc(sentence: Sentence | None) -> bool:
    return sentence is not None and sentence.kind == "RMC" and sentence.talker != "P"


def _is_fix(sentence: Sentence) -> bool:
    try:
        return isinstance(decode_rmc(sentence), Fix)
    except NmeaError:
        return False


async def replay(fd: int, track: Track, *, speed: float = 1.0) -> int:
    """Write ``track`` to ``fd`` on schedule, ``speed`` times faster than recorded.

    ``fd`` should be non-blocking (see :func:`open_pty`); returns the bytes dropped because the
    other side was not reading.
    """
    if not speed > 0:
        raise ValueError("speed must be > 0")
    loop = asyncio.get_running_loop()
    begin = loop.time()
    dropped = 0
    for step in track.steps:
        delay = begin + step.at / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        dropped += write_available(fd, step.data)
    return dropped


def write_available(fd: int, data: bytes) -> int:
    """Write what ``fd`` takes now; return how many bytes were dropped."""
    try:
        written = os.write(fd, data)
    except BlockingIOError:
        written = 0
    return len(data) - written


@dataclass(frozen=True, slots=True)
class Pty:
    """Both ends of a pseudo-terminal: write to ``master``, give ``path`` to the driver."""

    master: int
    slave: int
    path: str

    def close(self) -> None:
        """Close both ends (the driver then reads an error and reconnects)."""
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                continue


def open_pty() -> Pty:
    """A pty whose slave is raw and whose master does not block."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return Pty(master, slave, os.ttyname(slave))
