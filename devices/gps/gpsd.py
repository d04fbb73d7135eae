"""gpsd JSON codec: the lines gpsd sends a watcher in, position fixes out. No I/O.

gpsd answers ``?WATCH={"enable":true,"json":true}`` with one JSON object per line (``VERSION``,
``DEVICES``, ``WATCH``, then ``TPV``, ``SKY``… as the receiver reports). A ``TPV`` with
``mode`` 2 (2D) or 3 (3D) carries ``time`` (ISO 8601 UTC), ``lat``, ``lon`` (degrees),
``speed`` (m/s), ``track`` (degrees true) and ``eph`` (metres) when known; mode 0 or 1 is no fix
and never becomes a position. Other classes count as frames and are otherwise ignored.

Lines are bounded (a ``SKY`` with every constellation in view is a few KiB); JSON that nests
too deeply, holds ``NaN``/``Infinity`` or numbers out of range is skipped like any other bad
line, with a reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from devices.gps.errors import BAD_FIELD, BAD_JSON, TOO_LONG, GpsdError
from devices.gps.fix import MODE_2D, Fix, NoFix, Skipped, format_time

__all__ = [
    "DEFAULT_PORT",
    "MAX_LINE_LENGTH",
    "WATCH",
    "GpsdDecoder",
    "GpsdEvent",
    "Report",
    "decode_report",
    "encode_tpv",
]

DEFAULT_PORT: Final = 2947
WATCH: Final = b'?WATCH={"enable":true,"json":true}\n'
MAX_LINE_LENGTH: Final = 32 * 1024

VOID: Final = "void"
NO_TIME: Final = "no_time"


@dataclass(frozen=True, slots=True)
class Report:
    """One JSON object from gpsd, by its ``class`` (``TPV``, ``SKY``, ``VERSION``…)."""

    cls: str


GpsdEvent = Report | Fix | NoFix | Skipped


def _reject_constant(name: str) -> Any:
    raise GpsdError(BAD_JSON, f"{name} is not JSON gpsd sends")


def _number(report: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = report.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GpsdError(BAD_FIELD, f"TPV {key} is not a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise GpsdError(BAD_FIELD, f"TPV {key} {number!r} out of range")
    return number


def decode_report(line: bytes) -> Report | Fix | NoFix:
    """One line from gpsd; a ``TPV`` becomes a :class:`Fix` or :class:`NoFix`.

    Raises :class:`~devices.gps.errors.GpsdError` for anything that is not a JSON object with
    a ``class``, or a ``TPV`` whose fields are unusable.
    """
    if len(line) > MAX_LINE_LENGTH:
        raise GpsdError(TOO_LONG, f"{len(line)} bytes")
    try:
        report = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    # RecursionError: CPython's json scanner bounds nesting ("[[[[…") with the recursion limit.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise GpsdError(BAD_JSON, str(exc)[:80]) from exc
    if not isinstance(report, dict) or not isinstance(report.get("class"), str):
        raise GpsdError(BAD_JSON, "not an object with a class")
    cls = report["class"][:16]
    if cls != "TPV":
        return Report(cls)
    mode = report.get("mode", 0)
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise GpsdError(BAD_FIELD, "TPV mode is not an integer")
    if mode < MODE_2D:
        return NoFix(VOID)
    text = report.get("time")
    if text is None:
        return NoFix(NO_TIME)
    if not isinstance(text, str) or len(text) > 40:
        raise GpsdError(BAD_FIELD, "TPV time is not a string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise GpsdError(BAD_FIELD, f"TPV time {text!r}") from exc
    if moment.tzinfo is None:
        raise GpsdError(BAD_FIELD, f"TPV time {text!r} has no zone")
    lat = _number(report, "lat", -90.0, 90.0)
    lon = _number(report, "lon", -180.0, 180.0)
    if lat is None or lon is None:
        raise GpsdError(BAD_FIELD, f"TPV mode {mode} without a position")
    return Fix(
        time=moment.astimezone(UTC),
        lat=lat,
        lon=lon,
        speed_mps=_number(report, "speed", 0.0, 1e6),
        course=_number(report, "track", 0.0, 360.0),
        mode=min(mode, 3),
        eph=_number(report, "eph", 0.0, 1e9),
    )


class GpsdDecoder:
    """Incremental decoder for a gpsd watch stream: bytes in, events out, never raises."""

    def __init__(self, max_length: int = MAX_LINE_LENGTH) -> None:
        self._max = max_length
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[GpsdEvent]:
        """Decode the complete lines in ``data``; a partial line waits for the next call."""
        out: list[GpsdEvent] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._take(data[start:end], out)
            self._finish(out)
            start = end + 1
        self._take(data[start:], out)
        return out

    def flush(self) -> list[GpsdEvent]:
        """End of input: decode a last line without a line end."""
        out: list[GpsdEvent] = []
        self._finish(out)
        return out

    def _take(self, part: bytes, out: list[GpsdEvent]) -> None:
        if self._overflow or not part:
            return
        if len(self._buffer) + len(part) > self._max:
            out.append(Skipped(TOO_LONG, f"a line longer than {self._max} bytes"))
            self._overflow = True
            self._buffer = bytearray()
        else:
            self._buffer += part

    def _finish(self, out: list[GpsdEvent]) -> None:
        line = bytes(self._buffer).strip()
        self._buffer = bytearray()
        if self._overflow:
            self._overflow = False
            return
        if not line:
            return
        try:
            out.append(decode_report(line))
        except GpsdError as exc:
            out.append(Skipped(exc.reason, exc.detail))


def encode_tpv(fix: Fix, device: str = "/dev/ttyUSB0") -> bytes:
    """A ``TPV`` line as gpsd writes it for ``fix`` (what a fake gpsd sends a watcher)."""
    report: dict[str, Any] = {
        "class": "TPV",
        "device": device,
        "mode": fix.mode,
        "time": format_time(fix.time),
        "lat": fix.lat,
        "lon": fix.lon,
    }
    if fix.speed_mps is not None:
        report["speed"] = fix.speed_mps
    if fix.course is not None:
        report["track"] = fix.course
    if fix.eph is not None:
        report["eph"] = fix.eph
    return json.dumps(report, separators=(",", ":")).encode() + b"\r\n"
