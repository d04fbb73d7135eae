"""Codec throughput for ``precinct bench devices``: frames decoded per CPU second, per codec.

Each codec decodes a realistic corpus, encoded beforehand, over and over for a fixed amount of
CPU time of the measuring thread (``time.thread_time``), so that other processes on the machine
change the wall time of the loop but not the figure. The corpora:

- SCP/1: what a lock board answers the agent's polls (GET_EVENTS, mostly empty, and
  GET_SLOT_STATUS for 8 slots), with an event batch, its acknowledgement and an RFID inventory
  page every ten polls; each reply arrives as one read, goes through the incremental
  :class:`~devices.cabinet.scp1.FrameDecoder` and is decoded in full by ``decode_reply``.
- wristband: Heart Rate Measurements (contact, one RR interval), custody statuses and
  advertisement mirrors, each through its own decoder.
- NMEA: a 1 Hz receiver's RMC, GGA and GSA per epoch along the demo route, through
  :class:`~devices.gps.nmea.NmeaDecoder` (framing, checksum, field checks, fix assembly); the
  real receiver logs of gpsd's test suite as a second line when they are on this machine.
- gpsd JSON: TPV and SKY lines through :class:`~devices.gps.gpsd.GpsdDecoder` (gpsd's own
  output for those logs when present, else lines encoded here).

For context, the cost of a reading once decoded: the body serialised as the device supervisor
does, then the envelope encoded and stored by :meth:`edge_agent.outbox.Outbox.put`, one
reading per transaction, as the agent calls it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.cabinet.scp1 import (
    AckReply,
    BoardEvent,
    EventsReply,
    EventType,
    FrameDecoder,
    InventoryReply,
    Reply,
    SlotState,
    SlotStatusReply,
    TagRead,
    decode_reply,
    encode_reply,
)
from devices.gps.fix import Fix
from devices.gps.gpsd import GpsdDecoder, encode_tpv
from devices.gps.nmea import (
    NmeaDecoder,
    Sentence,
    decode_rmc,
    encode_rmc,
    encode_sentence,
    parse_sentence,
)
from devices.gps.simulator import strip_comments
from devices.gps.track import DEMO_ROUTE, synthetic_track
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
    decode_advert_mirror,
    decode_custody_status,
    decode_heart_rate,
    encode_advert_mirror,
    encode_custody_status,
    encode_heart_rate,
)
from edge_agent.outbox import Outbox, Reading
from edge_agent.wire import MessageClass

CODEC_SECONDS = 1.5
# gpsd's test captures, where the test suite finds them (beside the repository); optional.
GPSD_LOGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gpsd-nmea"
VAN_SPEED_MPS = 9.0
SLOTS = 8
_EPOCHS = 200
_READ_SIZE = 1024


@dataclass(frozen=True, slots=True)
class CodecResult:
    """Frames one codec decoded in ``cpu_seconds`` of the measuring thread."""

    key: str
    name: str
    frames: int
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Frames per CPU second."""
        return self.frames / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def micros(self) -> float:
        """CPU microseconds per frame."""
        return 1e6 * self.cpu_seconds / self.frames if self.frames else 0.0


def _measure(key: str, name: str, one_pass: Callable[[], int], seconds: float) -> CodecResult:
    """Run ``one_pass`` (which returns the frames it decoded) for ``seconds`` of CPU."""
    one_pass()  # caches, lazy imports and the first allocations stay out of the figure
    frames = 0
    start = time.thread_time()
    used = 0.0
    while used < seconds:
        frames += one_pass()
        used = time.thread_time() - start
    return CodecResult(key, name, frames, used)


# ---------------------------------------------------------------------------------------------
# Corpora


def scp1_corpus() -> list[bytes]:
    """Board replies to ten polls plus an event batch, its ACK and an inventory page."""
    base = 1_700_000_000
    slots = tuple(
        SlotState(n, door_open=n == 3, unlocked=False, item_present=n % 4 != 0)
        for n in range(1, SLOTS + 1)
    )
    tags = tuple(
        TagRead(n, -40 - n, bytes.fromhex("E28011606000020A") + n.to_bytes(4, "big"))
        for n in range(1, SLOTS + 1)
    )
    events = (
        BoardEvent(101, EventType.DOOR_OPENED, 3, base),
        BoardEvent(102, EventType.DOOR_CLOSED, 3, base + 40),
        BoardEvent(103, EventType.TAG_REMOVED, 5, base + 41, tags[4].epc),
    )
    replies: list[Reply] = []
    for _ in range(10):
        replies += [EventsReply(()), SlotStatusReply(slots)]
    replies += [EventsReply(events), AckReply(), InventoryReply(0, False, tags)]
    return [encode_reply(1, seq & 0xFF, reply) for seq, reply in enumerate(replies)]


def wristband_corpus() -> dict[str, list[bytes]]:
    """Encoded values per characteristic: heart rates, custody statuses, advert mirrors."""
    closed = CustodyFlags.STRAP_CLOSED | CustodyFlags.SKIN_CONTACT
    return {
        "heart_rate": [
            encode_heart_rate(
                HeartRateMeasurement(
                    60 + n % 40, contact=True, rr_intervals=(1024 * 60 // (60 + n % 40),)
                )
            )
            for n in range(64)
        ],
        "custody": [
            encode_custody_status(
                CustodyStatus(closed if n % 8 else CustodyFlags.SKIN_CONTACT, n, 1_700_000_000 + n)
            )
            for n in range(64)
        ],
        "mirror": [encode_advert_mirror(AdvertMirror(40 + n % 60, closed, n)) for n in range(64)],
    }


def _degrees_minutes(value: float, width: int, hemispheres: str) -> tuple[str, str]:
    minutes = round(abs(value) * 60, 4)
    degrees, rest = divmod(minutes, 60)
    return f"{int(degrees):0{width}d}{rest:07.4f}", hemispheres[1 if value < 0 else 0]


def _gga(fix: Fix) -> bytes:
    lat, lat_h = _degrees_minutes(fix.lat, 2, "NS")
    lon, lon_h = _degrees_minutes(fix.lon, 3, "EW")
    return encode_sentence(
        "GPGGA",
        [
            fix.time.strftime("%H%M%S.") + f"{fix.time.microsecond // 1000:03d}",
            lat,
            lat_h,
            lon,
            lon_h,
            "1",
            "08",
            "1.1",
            "12.4",
            "M",
            "8.9",
            "M",
            "",
            "0000",
        ],
    )


_SATELLITES = ("17", "28", "06", "01", "30", "20", "26", "13", "11", "08", "02", "03")


def _gsa() -> bytes:
    return encode_sentence(
        "GPGSA", ["A", "3", *_SATELLITES[:8], "", "", "", "", "1.8", "1.1", "1.5"]
    )


def _gsv() -> list[bytes]:
    out = []
    for part in range(3):
        fields = ["3", str(part + 1), str(len(_SATELLITES))]
        for n, satellite in enumerate(_SATELLITES[part * 4 : part * 4 + 4]):
            fields += [
                satellite,
                f"{10 + 7 * n:02d}",
                f"{(40 * n + 90 * part) % 360:03d}",
                f"{20 + n:02d}",
            ]
        out.append(encode_sentence("GPGSV", fields))
    return out


def route_fixes(start: datetime) -> list[Fix]:
    """One fix a second along the demo route at van speed."""
    fixes = []
    for line in synthetic_track(DEMO_ROUTE, VAN_SPEED_MPS, start).splitlines():
        fix = decode_rmc(parse_sentence(line))
        if isinstance(fix, Fix):
            fixes.append(fix)
    return fixes


def nmea_epochs(
    start: datetime, *, satellites_in_view: bool = False, limit: int | None = None
) -> list[bytes]:
    """A receiver's output per 1 Hz epoch: GGA, GSA, (3 GSV), then RMC, as many receivers do."""
    gsa = _gsa()
    gsv = b"".join(_gsv()) if satellites_in_view else b""
    fixes = route_fixes(start)[:limit]
    return [_gga(fix) + gsa + gsv + encode_rmc(fix) for fix in fixes]


def real_nmea_logs(directory: Path = GPSD_LOGS) -> list[bytes]:
    """gpsd's real receiver captures, comments removed, in reads of 1 KiB; [] if absent."""
    pieces: list[bytes] = []
    for path in sorted(directory.glob("*.log")) if directory.is_dir() else ():
        data = strip_comments(path.read_bytes())
        pieces += [data[i : i + _READ_SIZE] for i in range(0, len(data), _READ_SIZE)]
    return pieces


def gpsd_lines(start: datetime, directory: Path = GPSD_LOGS) -> tuple[list[bytes], str]:
    """gpsd JSON lines: gpsd's own TPV/SKY output for the real captures, or encoded here."""
    lines: list[bytes] = []
    for path in sorted(directory.glob("*.log.chk")) if directory.is_dir() else ():
        lines += [
            line + b"\n"
            for line in path.read_bytes().splitlines()
            if line.startswith((b'{"class":"TPV"', b'{"class":"SKY"'))
        ]
    if lines:
        return lines, "gpsd's TPV and SKY output for the real captures"
    sky = (
        json.dumps(
            {
                "class": "SKY",
                "device": "/dev/ttyUSB0",
                "hdop": 1.1,
                "pdop": 1.8,
                "vdop": 1.5,
                "uSat": 8,
                "nSat": 12,
                "satellites": [
                    {"PRN": int(s), "el": 30, "az": 90, "ss": 25, "used": True} for s in _SATELLITES
                ],
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    for fix in route_fixes(start)[:_EPOCHS]:
        lines += [
            encode_tpv(
                Fix(
                    time=fix.time,
                    lat=fix.lat,
                    lon=fix.lon,
                    speed_mps=fix.speed_mps,
                    course=fix.course,
                    mode=3,
                    eph=4.5,
                )
            ),
            sky,
        ]
    return lines, "TPV and SKY lines encoded here"


# ---------------------------------------------------------------------------------------------
# Passes


def _scp1_pass(corpus: Sequence[bytes]) -> Callable[[], int]:
    def one_pass() -> int:
        decoder = FrameDecoder()
        frames = 0
        for chunk in corpus:
            for frame in decoder.feed(chunk):
                decode_reply(frame)
                frames += 1
        return frames

    return one_pass


def _values_pass(values: Sequence[bytes], decode: Callable[[bytes], object]) -> Callable[[], int]:
    def one_pass() -> int:
        for value in values:
            decode(value)
        return len(values)

    return one_pass


def _nmea_pass(pieces: Sequence[bytes]) -> Callable[[], int]:
    def one_pass() -> int:
        decoder = NmeaDecoder()
        sentences = 0
        for piece in pieces:
            for event in decoder.feed(piece):
                if isinstance(event, Sentence):
                    sentences += 1
        return sentences

    return one_pass


def _gpsd_pass(lines: Sequence[bytes]) -> Callable[[], int]:
    def one_pass() -> int:
        decoder = GpsdDecoder()
        for line in lines:
            decoder.feed(line)
        return len(lines)

    return one_pass


def _outbox_pass(outbox: Outbox, start: datetime) -> Callable[[], int]:
    bodies = [
        {"bpm": 60 + n % 40, "contact": True, "energy_kj": None, "rr_s": [0.8]} for n in range(50)
    ]

    def one_pass() -> int:
        for n, body in enumerate(bodies):
            body_json = json.dumps(body, separators=(",", ":"), allow_nan=False)
            outbox.put(
                [
                    Reading(
                        f"band-{n + 1:03d}", "heart_rate", MessageClass.TELEMETRY, start, body_json
                    )
                ]
            )
        return len(bodies)

    return one_pass


def run_codecs(seconds: float = CODEC_SECONDS) -> tuple[list[CodecResult], list[str]]:
    """Every codec's throughput, and notes on the corpora used."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    notes: list[str] = []
    results = [
        _measure(
            "scp1",
            "SCP/1 replies (frame decoder + decode_reply)",
            _scp1_pass(scp1_corpus()),
            seconds,
        )
    ]
    bands = wristband_corpus()
    results += [
        _measure(
            "heart_rate",
            "wristband heart rate measurement",
            _values_pass(bands["heart_rate"], decode_heart_rate),
            seconds,
        ),
        _measure(
            "custody",
            "wristband custody status",
            _values_pass(bands["custody"], decode_custody_status),
            seconds,
        ),
        _measure(
            "mirror",
            "wristband advertisement mirror",
            _values_pass(bands["mirror"], decode_advert_mirror),
            seconds,
        ),
        _measure(
            "nmea",
            "NMEA RMC+GGA+GSA (NmeaDecoder), sentences",
            _nmea_pass(nmea_epochs(start, limit=_EPOCHS)),
            seconds,
        ),
    ]
    real = real_nmea_logs()
    if real:
        results.append(
            _measure(
                "nmea_real", "NMEA, gpsd's real receiver logs, sentences", _nmea_pass(real), seconds
            )
        )
    else:
        notes.append(f"real NMEA logs not found in {GPSD_LOGS}: synthetic stream only")
    lines, origin = gpsd_lines(start)
    results.append(
        _measure("gpsd", "gpsd JSON TPV+SKY (GpsdDecoder), lines", _gpsd_pass(lines), seconds)
    )
    notes.append(f"gpsd JSON corpus: {origin}")
    with tempfile.TemporaryDirectory(prefix="precinct-bench-outbox-") as directory:
        outbox = Outbox(
            Path(directory) / "outbox.sqlite3", "bench-codecs", max_rows=200_000, keep_sent=100_000
        )
        try:
            results.append(
                _measure(
                    "outbox",
                    "reading -> body JSON, envelope, Outbox.put (1 per transaction)",
                    _outbox_pass(outbox, start),
                    seconds,
                )
            )
        finally:
            outbox.close()
    return results, notes
