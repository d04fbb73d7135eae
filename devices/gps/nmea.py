"""NMEA 0183 codec: bytes from a receiver in, sentences and position fixes out. No I/O.

Framing (:class:`SentenceFramer`): a sentence starts at ``$`` and ends at CR or LF, or where the
next ``$`` begins (some receivers drop the line end after a buffer overrun, see the
``gp-320fw`` logs). Every sentence must end in ``*HH``, the XOR of the bytes between ``$`` and
``*``; sentences without one are skipped, as is anything longer than ``max_length`` (NMEA allows
82 bytes, RTK receivers and proprietary sentences send more). Bytes outside a sentence are
garbage. Nothing is ever raised from a stream: bad input comes out as :class:`Skipped` with a
reason, in stream order, so that the driver can count it.

Fields (:func:`decode_rmc`, :func:`decode_gga`, :func:`decode_gsa`) are parsed by pynmeagps;
pynmeagps is lenient (``float()`` takes ``nan``, ``1_0`` and a missing hemisphere leaves a
position positive), so each field it reads is first checked here against the NMEA format.

Fixes (:class:`NmeaDecoder`) come from RMC, the only sentence with time, date, status, position,
speed and course together. Mode (2D/3D) and HDOP come from GSA and GGA when the receiver sends
them. An RMC with status ``V``, or with a mode indicator of N (no fix), S (simulator) or M
(manual input), is void and never becomes a position. The NMEA 4.10 navigational status (the
13th field, ``V`` on u-blox receivers) says nothing about the fix and is not read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final

# pynmeagps ships no type information (no py.typed marker); its values are checked below.
from pynmeagps import (  # type: ignore[import-untyped]
    VALCKSUM,
    NMEAMessageError,
    NMEAParseError,
    NMEAReader,
    NMEAStreamError,
    NMEATypeError,
)

from devices.gps.errors import (
    BAD_CHAR,
    BAD_FIELD,
    GARBAGE,
    NO_CHECKSUM,
    TOO_LONG,
    ChecksumError,
    NmeaError,
)
from devices.gps.fix import KNOT_MPS, MODE_2D, MODE_3D, Fix, NoFix, Skipped

__all__ = [
    "MAX_SENTENCE_LENGTH",
    "Gga",
    "Gsa",
    "NmeaDecoder",
    "NmeaEvent",
    "Sentence",
    "SentenceFramer",
    "checksum",
    "decode_gga",
    "decode_gsa",
    "decode_rmc",
    "encode_rmc",
    "encode_sentence",
    "parse_sentence",
]

# From "$" to the two checksum digits. The longest real sentences seen are proprietary ones
# around 200 bytes (MediaTek PMTK replies); position sentences stay under 100.
MAX_SENTENCE_LENGTH: Final = 256

VOID: Final = "void"
NO_TIME: Final = "no_time"
NO_DATE: Final = "no_date"

_DELIMITERS: Final = re.compile(rb"[$\r\n]")
_ADDRESS: Final = re.compile(r"[A-Z][A-Z0-9]{1,15}")
_HEX: Final = b"0123456789ABCDEFabcdef"
_BAD_CHARS: Final = re.compile(rb"[^\x20-\x7e]|[$*]")
_SIGNED_DECIMAL: Final = re.compile(r"-?(?:[0-9]{1,9}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")
_DECIMAL: Final = re.compile(r"[0-9]{1,9}(?:\.[0-9]{0,9})?|\.[0-9]{1,9}")
_INTEGER: Final = re.compile(r"[0-9]{1,3}")
# (d)ddmm.mmmm: degrees then two digits of whole minutes then a fraction.
_DEGREES_MINUTES: Final = re.compile(r"([0-9]{2,3})([0-9]{2}\.[0-9]{1,10})")
_TIME: Final = re.compile(r"[0-9]{6}(?:\.[0-9]{1,6})?")
_DATE: Final = re.compile(r"[0-9]{6}")
# Mode indicators (NMEA 2.3+) that mean "no real position": N not valid, S simulator, M manual.
_VOID_MODES: Final = frozenset({"N", "S", "M"})
# A GGA or GSA seen before more RMCs than this no longer describes the fix an RMC reports.
_STALE_AFTER_RMCS: Final = 1
_GGA_SAME_EPOCH_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Sentence:
    """One checksummed sentence. ``talker`` is ``P`` for proprietary ones (then ``kind`` is the
    manufacturer code and the rest, e.g. ``GLOR``); ``fields`` follow the address."""

    talker: str
    kind: str
    fields: tuple[str, ...]
    raw: bytes


NmeaEvent = Sentence | Fix | NoFix | Skipped


def checksum(content: bytes) -> int:
    """XOR of the bytes between ``$`` and ``*``."""
    value = 0
    for byte in content:
        value ^= byte
    return value


def parse_sentence(raw: bytes) -> Sentence:
    """Check one ``$…*HH`` sentence (no line end) and split it; raise :class:`NmeaError`."""
    raw = raw.rstrip(b" \t")
    if len(raw) > MAX_SENTENCE_LENGTH:
        raise NmeaError(TOO_LONG, f"{len(raw)} bytes")
    if raw[:1] != b"$":
        raise NmeaError(GARBAGE, "a sentence starts with '$'")
    if len(raw) < 4 or raw[-3:-2] != b"*" or raw[-2] not in _HEX or raw[-1] not in _HEX:
        raise NmeaError(NO_CHECKSUM, "no *HH at the end")
    content = raw[1:-3]
    if _BAD_CHARS.search(content) is not None:
        raise NmeaError(BAD_CHAR, "bytes outside printable ASCII")
    expected = int(raw[-2:], 16)
    actual = checksum(content)
    if actual != expected:
        raise ChecksumError(f"*{expected:02X}, content sums to {actual:02X}")
    address, *fields = content.decode("ascii").split(",")
    if _ADDRESS.fullmatch(address) is None:
        raise NmeaError(BAD_FIELD, f"address {address[:16]!r}")
    split = 1 if address[0] == "P" else 2
    if len(address) < split + 1:
        raise NmeaError(BAD_FIELD, f"address {address!r}")
    return Sentence(address[:split], address[split:], tuple(fields), raw)


class SentenceFramer:
    """Incremental framing: feed it bytes as they arrive, get sentences and skips in order."""

    def __init__(self, max_length: int = MAX_SENTENCE_LENGTH) -> None:
        if max_length < 11:
            raise ValueError("max_length below the shortest sentence")
        self._max = max_length
        self._buffer = bytearray()
        # idle: between sentences; active: inside one; overflow: dropping an overlong one
        self._state = "idle"
        self._junk = False

    def feed(self, data: bytes) -> list[Sentence | Skipped]:
        """Frame ``data``; a sentence cut at the end of ``data`` waits for the next call."""
        out: list[Sentence | Skipped] = []
        start = 0
        for match in _DELIMITERS.finditer(data):
            self._take(data[start : match.start()], out)
            self._end(out)
            if match.group() == b"$":
                self._state = "active"
                self._buffer = bytearray(b"$")
            start = match.end()
        self._take(data[start:], out)
        return out

    def flush(self) -> list[Sentence | Skipped]:
        """End of input: a sentence still open is finished as it is."""
        out: list[Sentence | Skipped] = []
        self._end(out)
        return out

    def _take(self, part: bytes, out: list[Sentence | Skipped]) -> None:
        if not part:
            return
        if self._state == "active":
            if len(self._buffer) + len(part) > self._max:
                out.append(Skipped(TOO_LONG, f"more than {self._max} bytes without a line end"))
                self._state = "overflow"
                self._buffer = bytearray()
            else:
                self._buffer += part
        elif self._state == "idle" and part.strip(b" \t\x00"):
            self._junk = True

    def _end(self, out: list[Sentence | Skipped]) -> None:
        if self._state == "active":
            try:
                out.append(parse_sentence(bytes(self._buffer)))
            except NmeaError as exc:
                out.append(Skipped(exc.reason, exc.detail))
        elif self._junk:
            out.append(Skipped(GARBAGE, "bytes outside a sentence"))
        self._state = "idle"
        self._junk = False
        self._buffer = bytearray()


# --- fields -------------------------------------------------------------------------------


def _message(sentence: Sentence) -> Any:
    """pynmeagps's parse of an already framed and checksummed sentence."""
    try:
        message = NMEAReader.parse(sentence.raw, validate=VALCKSUM)
    # pynmeagps is not written for hostile input: these are what its parsers raise on it.
    except (
        NMEAParseError,
        NMEATypeError,
        NMEAMessageError,
        NMEAStreamError,
        ValueError,
        TypeError,
        IndexError,
        AttributeError,
        OverflowError,
    ) as exc:
        raise NmeaError(BAD_FIELD, f"{sentence.kind}: {exc}") from exc
    if message is None:
        raise NmeaError(BAD_FIELD, f"{sentence.kind}: not understood")
    return message


def _field(sentence: Sentence, index: int) -> str:
    return sentence.fields[index] if index < len(sentence.fields) else ""


def _decimal(
    sentence: Sentence, index: int, value: object, name: str, *, signed: bool = False
) -> float | None:
    raw = _field(sentence, index)
    if raw == "":
        return None
    pattern = _SIGNED_DECIMAL if signed else _DECIMAL
    if pattern.fullmatch(raw) is None or not isinstance(value, float) or not math.isfinite(value):
        raise NmeaError(BAD_FIELD, f"{sentence.kind} {name} {raw[:20]!r}")
    return value


def _integer(sentence: Sentence, index: int, value: object, name: str) -> int | None:
    raw = _field(sentence, index)
    if raw == "":
        return None
    if _INTEGER.fullmatch(raw) is None or not isinstance(value, int):
        raise NmeaError(BAD_FIELD, f"{sentence.kind} {name} {raw[:20]!r}")
    return value


def _coordinate(
    sentence: Sentence, index: int, value: object, limit: float, hemispheres: str
) -> float:
    raw, hemisphere = _field(sentence, index), _field(sentence, index + 1)
    match = _DEGREES_MINUTES.fullmatch(raw)
    if (
        match is None
        or float(match.group(2)) >= 60.0
        or len(hemisphere) != 1
        or hemisphere not in hemispheres
        or not isinstance(value, float)
        or not math.isfinite(value)
        or abs(value) > limit
    ):
        raise NmeaError(BAD_FIELD, f"{sentence.kind} position {raw[:20]!r} {hemisphere[:2]!r}")
    # pynmeagps signs the value from the hemisphere; sign it here from the checked field.
    return -abs(value) if hemisphere == hemispheres[1] else abs(value)


def _time_of_day(sentence: Sentence, index: int, value: object) -> time | None:
    raw = _field(sentence, index)
    if raw == "":
        return None
    if _TIME.fullmatch(raw) is None or not isinstance(value, time):
        raise NmeaError(BAD_FIELD, f"{sentence.kind} time {raw[:20]!r}")
    return value


def _seconds(moment: time) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


@dataclass(frozen=True, slots=True)
class Gga:
    """What a GGA adds to a fix: its epoch (seconds of the UTC day), quality, HDOP, altitude."""

    seconds: float | None
    quality: int | None
    hdop: float | None
    has_altitude: bool


@dataclass(frozen=True, slots=True)
class Gsa:
    """What a GSA adds to a fix: the navigation mode (1 none, 2 2D, 3 3D) and HDOP."""

    mode: int | None
    hdop: float | None


def decode_rmc(
    sentence: Sentence, *, mode: int = MODE_2D, hdop: float | None = None
) -> Fix | NoFix:
    """An RMC sentence as a fix, or why it holds none; raise :class:`NmeaError` if malformed."""
    message = _message(sentence)
    status = _field(sentence, 1)
    if status not in ("A", "V", ""):
        raise NmeaError(BAD_FIELD, f"RMC status {status[:4]!r}")
    if status != "A" or _field(sentence, 11) in _VOID_MODES:
        return NoFix(VOID)
    moment = _time_of_day(sentence, 0, getattr(message, "time", None))
    if moment is None:
        return NoFix(NO_TIME)
    raw_date = _field(sentence, 8)
    if raw_date == "":
        return NoFix(NO_DATE)
    day = getattr(message, "date", None)
    if _DATE.fullmatch(raw_date) is None or not isinstance(day, date):
        raise NmeaError(BAD_FIELD, f"RMC date {raw_date[:20]!r}")
    lat = _coordinate(sentence, 2, getattr(message, "lat", None), 90.0, "NS")
    lon = _coordinate(sentence, 4, getattr(message, "lon", None), 180.0, "EW")
    knots = _decimal(sentence, 6, getattr(message, "spd", None), "speed")
    course = _decimal(sentence, 7, getattr(message, "cog", None), "course")
    if course is not None and course > 360.0:
        raise NmeaError(BAD_FIELD, f"RMC course {course!r}")
    # Two-digit year: strptime's pivot would make 69-99 the 1900s. A van's receiver is not in
    # the last century; a receiver hit by a GPS week rollover is caught by the time filters.
    when = datetime.combine(day.replace(year=2000 + day.year % 100), moment, UTC)
    return Fix(
        time=when,
        lat=lat,
        lon=lon,
        speed_mps=None if knots is None else knots * KNOT_MPS,
        course=course,
        mode=mode,
        hdop=hdop,
    )


def decode_gga(sentence: Sentence) -> Gga:
    """The parts of a GGA sentence a fix uses; raise :class:`NmeaError` if malformed."""
    message = _message(sentence)
    moment = _time_of_day(sentence, 0, getattr(message, "time", None))
    quality = _integer(sentence, 5, getattr(message, "quality", None), "quality")
    hdop = _decimal(sentence, 7, getattr(message, "HDOP", None), "HDOP")
    _decimal(sentence, 8, getattr(message, "alt", None), "altitude", signed=True)
    return Gga(
        seconds=None if moment is None else _seconds(moment),
        quality=quality,
        hdop=hdop,
        has_altitude=_field(sentence, 8) != "",
    )


def decode_gsa(sentence: Sentence) -> Gsa:
    """The parts of a GSA sentence a fix uses; raise :class:`NmeaError` if malformed."""
    message = _message(sentence)
    mode = _integer(sentence, 1, getattr(message, "navMode", None), "mode")
    if mode is not None and mode not in (1, 2, 3):
        raise NmeaError(BAD_FIELD, f"GSA mode {mode}")
    hdop = _decimal(sentence, 15, getattr(message, "HDOP", None), "HDOP")
    return Gsa(mode=mode, hdop=hdop)


class NmeaDecoder:
    """Incremental decoder: bytes in, events out (sentences, fixes, void reports, skips).

    Mode and HDOP for a fix come from the GSA sentences and the GGA of the same epoch seen
    before its RMC (receivers differ in the order within a cycle; a GSA after the previous RMC
    still describes the current fix well enough). With several GSA (one per constellation) the
    best mode wins. An RMC with status A is at least a 2D fix, whatever a stale GSA says.
    """

    def __init__(self, max_length: int = MAX_SENTENCE_LENGTH) -> None:
        self._framer = SentenceFramer(max_length)
        self._gga: Gga | None = None
        self._gga_age = 0
        self._gsa_mode: int | None = None
        self._gsa_hdop: float | None = None
        self._gsa_age = 0

    def feed(self, data: bytes) -> list[NmeaEvent]:
        """Decode ``data``; a sentence cut at the end waits for the next call."""
        return self._decode(self._framer.feed(data))

    def flush(self) -> list[NmeaEvent]:
        """End of input: decode a last sentence without a line end."""
        return self._decode(self._framer.flush())

    def _decode(self, items: Sequence[Sentence | Skipped]) -> list[NmeaEvent]:
        out: list[NmeaEvent] = []
        for item in items:
            out.append(item)
            if isinstance(item, Sentence):
                try:
                    result = self._sentence(item)
                except NmeaError as exc:
                    out.append(Skipped(exc.reason, exc.detail))
                    continue
                if result is not None:
                    out.append(result)
        return out

    def _sentence(self, sentence: Sentence) -> Fix | NoFix | None:
        if sentence.talker == "P":
            return None
        if sentence.kind == "GSA":
            gsa = decode_gsa(sentence)
            if self._gsa_age > 0:
                self._gsa_mode, self._gsa_hdop = None, None
            self._gsa_age = 0
            if gsa.mode is not None:
                self._gsa_mode = max(gsa.mode, self._gsa_mode or 0)
            if gsa.hdop is not None:
                self._gsa_hdop = gsa.hdop
        elif sentence.kind == "GGA":
            self._gga, self._gga_age = decode_gga(sentence), 0
        elif sentence.kind == "RMC":
            return self._rmc(sentence)
        return None

    def _rmc(self, sentence: Sentence) -> Fix | NoFix:
        fix = decode_rmc(sentence)
        gsa_fresh = self._gsa_age <= _STALE_AFTER_RMCS
        gga = self._gga if self._gga_age <= _STALE_AFTER_RMCS else None
        self._gsa_age += 1
        self._gga_age += 1
        if isinstance(fix, NoFix):
            return fix
        seconds = _seconds(fix.time.time())
        if gga is not None and (gga.seconds is None or not _same_epoch(gga.seconds, seconds)):
            gga = None
        mode = MODE_2D
        if gsa_fresh and self._gsa_mode in (MODE_2D, MODE_3D):
            mode = self._gsa_mode
        elif gga is not None and gga.quality:
            mode = MODE_3D if gga.has_altitude else MODE_2D
        hdop = (
            gga.hdop
            if gga is not None and gga.hdop is not None
            else (self._gsa_hdop if gsa_fresh else None)
        )
        return Fix(
            time=fix.time,
            lat=fix.lat,
            lon=fix.lon,
            speed_mps=fix.speed_mps,
            course=fix.course,
            mode=mode,
            hdop=hdop,
        )


def _same_epoch(a: float, b: float) -> bool:
    gap = abs(a - b)
    return min(gap, 86400.0 - gap) <= _GGA_SAME_EPOCH_S


# --- encoding -----------------------------------------------------------------------------


def encode_sentence(address: str, fields: Sequence[str]) -> bytes:
    """``$address,fields*HH`` and CR LF; ``ValueError`` if a field would break the framing."""
    content = ",".join([address, *fields]).encode("ascii")
    if _ADDRESS.fullmatch(address) is None or _BAD_CHARS.search(content) is not None:
        raise ValueError("fields must be printable ASCII without '$' or '*'")
    return b"$%s*%02X\r\n" % (content, checksum(content))


def _degrees_minutes(value: float, width: int, hemispheres: str) -> tuple[str, str]:
    micro_minutes = round(abs(value) * 60 * 1_000_000)
    degrees, rest = divmod(micro_minutes, 60_000_000)
    # The hemisphere of what is written: a value that rounds to zero is N or E, not -0.
    hemisphere = hemispheres[1] if value < 0 and micro_minutes else hemispheres[0]
    return f"{degrees:0{width}d}{rest // 1_000_000:02d}.{rest % 1_000_000:06d}", hemisphere


def encode_rmc(fix: Fix, talker: str = "GP") -> bytes:
    """An RMC sentence (NMEA 2.3, mode indicator A) for ``fix``.

    Resolution: 1e-6 minutes of arc, 0.001 knot, 0.01 degree of course, 1 ms (truncated).
    ``ValueError`` for a year outside 2000-2099, which two digits cannot carry.
    """
    moment = fix.time.astimezone(UTC)
    if not 2000 <= moment.year <= 2099:
        raise ValueError("RMC carries a two-digit year: 2000-2099 only")
    fields = [
        moment.strftime("%H%M%S") + f".{moment.microsecond // 1000:03d}",
        "A",
        *_degrees_minutes(fix.lat, 2, "NS"),
        *_degrees_minutes(fix.lon, 3, "EW"),
        "" if fix.speed_mps is None else f"{fix.speed_mps / KNOT_MPS:.3f}",
        "" if fix.course is None else f"{fix.course:.2f}",
        moment.strftime("%d%m%y"),
        "",
        "",
        "A",
    ]
    return encode_sentence(f"{talker}RMC", fields)
