"""``precinct gps``: decode recorded receiver output, simulate a receiver on a pty.

Imports of the codecs and the simulator happen inside the handlers: building the ``precinct``
parser must stay cheap for every other subcommand.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from devices.gps.simulator import Track

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
_READ_SIZE = 64 * 1024
# After the last step, the listener gets this long to read what is still in the pty.
_LINGER_SECONDS = 1.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gps decode`` and ``gps simulate`` to the ``precinct`` command."""
    gps = commands.add_parser(
        "gps",
        help="van GPS: decode recorded output, simulate a receiver",
        description="Van GPS receivers: NMEA 0183 on a serial port, or gpsd's JSON.",
    )
    gps_commands = gps.add_subparsers(dest="gps_command", required=True, metavar="COMMAND")

    decode = gps_commands.add_parser(
        "decode",
        help="print the fixes in a recorded log as JSON lines",
        description="Decode a recorded log and print one JSON object per fix (time in ISO 8601 "
        "UTC, lat, lon, speed_mps, course, mode). Void reports and malformed input "
        "are skipped and counted on stderr. Lines starting with '#' are comments. "
        "No outlier filter is applied.",
    )
    decode.add_argument("file", metavar="FILE", help="the log ('-' for standard input)")
    decode.add_argument(
        "--format",
        choices=("nmea", "gpsd"),
        default="nmea",
        help="NMEA 0183 sentences or gpsd JSON lines (default %(default)s)",
    )
    decode.set_defaults(handler=_decode)

    simulate = gps_commands.add_parser(
        "simulate",
        help="replay a recorded track as a receiver on a pty",
        description="Replay an NMEA log over a pseudo-terminal, paced by its RMC times, and "
        "print the device path to open (like /dev/ttyUSB0). Times are moved so "
        "that the first fix is now. Runs until the end of the track or Ctrl-C.",
    )
    simulate.add_argument(
        "--track", required=True, type=Path, metavar="FILE", help="NMEA log to replay"
    )
    simulate.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="replay this many times faster than recorded (default %(default)s)",
    )
    simulate.add_argument("--loop", action="store_true", help="start again at the end")
    simulate.add_argument(
        "--verbatim",
        action="store_true",
        help="send the recorded times as they are (old dates: a driver's "
        "time filters will reject the fixes)",
    )
    simulate.set_defaults(handler=_simulate)


def _pieces(stream: IO[bytes], strip_comments: bool) -> Iterator[bytes]:
    """The log in bounded pieces, without ``#`` comment lines when asked."""
    at_line_start = True
    while piece := stream.readline(_READ_SIZE):
        if not (strip_comments and at_line_start and piece.startswith(b"#")):
            yield piece
        at_line_start = piece.endswith(b"\n")


def _summary(fixes: int, skipped: Counter[str], no_fix: Counter[str]) -> str:
    def counts(counter: Counter[str]) -> str:
        return ", ".join(f"{reason} {count}" for reason, count in sorted(counter.items()))

    text = f"gps decode: {fixes} fixes; skipped {skipped.total()} malformed"
    if skipped:
        text += f" ({counts(skipped)})"
    text += f"; {no_fix.total()} without a fix"
    if no_fix:
        text += f" ({counts(no_fix)})"
    return text


def _decode(args: argparse.Namespace) -> int:
    import json

    from devices.gps.fix import Fix, NoFix, Skipped
    from devices.gps.gpsd import GpsdDecoder
    from devices.gps.nmea import NmeaDecoder

    decoder: NmeaDecoder | GpsdDecoder = GpsdDecoder() if args.format == "gpsd" else NmeaDecoder()
    fixes = 0
    skipped: Counter[str] = Counter()
    no_fix: Counter[str] = Counter()
    out = sys.stdout

    def decode(events: Sequence[object]) -> None:
        nonlocal fixes
        for event in events:
            if isinstance(event, Fix):
                fixes += 1
                out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")
            elif isinstance(event, Skipped):
                skipped[event.reason] += 1
            elif isinstance(event, NoFix):
                no_fix[event.reason] += 1

    try:
        with (
            contextlib.nullcontext(sys.stdin.buffer)
            if args.file == "-"
            else Path(args.file).open("rb") as stream
        ):
            for piece in _pieces(stream, strip_comments=args.format == "nmea"):
                decode(decoder.feed(piece))
    except OSError as exc:
        print(
            f"precinct gps decode: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_FAILURE
    decode(decoder.flush())
    out.flush()
    print(_summary(fixes, skipped, no_fix), file=sys.stderr)
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from devices.gps.simulator import open_pty

    if not args.speed > 0:
        print("precinct gps simulate: --speed must be > 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        data = args.track.read_bytes()
    except OSError as exc:
        print(
            f"precinct gps simulate: cannot read {args.track}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    pty = open_pty()
    try:
        print(pty.path, flush=True)
        fixes, dropped = asyncio.run(
            _replay(pty.master, data, args.speed, args.loop, args.verbatim)
        )
    finally:
        pty.close()
    print(f"gps simulate: sent {fixes} fixes, dropped {dropped} bytes nobody read", file=sys.stderr)
    return EXIT_OK


async def _live_plan(data: bytes) -> Track:
    """The track restamped to begin in a moment, once that moment has come.

    Times move by whole seconds, so a first fix restamped to "now" would be up to a second old
    when sent. Restamped a little ahead and sent when its time comes, every fix leaves at its
    own time, as a receiver's does: a reading's time is then when it was read, and delays
    measured from it (``precinct bench stream``) are real ones. Planning a long track takes a
    while (a second or more for thousands of fixes): if that overran the lead, plan again with
    a lead that covers it.
    """
    import asyncio
    from datetime import UTC, datetime, timedelta

    from devices.gps.simulator import plan

    lead = 1.0
    for _ in range(2):
        asked = datetime.now(UTC)
        track = plan(data, start=asked + timedelta(seconds=lead))
        if track.first_fix is None:
            return track
        now = datetime.now(UTC)
        if track.first_fix >= now:
            await asyncio.sleep((track.first_fix - now).total_seconds())
            return track
        lead += (now - asked).total_seconds()
    return track  # still late on a machine this busy: sent at once, as before


async def _replay(
    fd: int, data: bytes, speed: float, loop: bool, verbatim: bool
) -> tuple[int, int]:
    import asyncio

    from devices.gps.simulator import DEFAULT_PERIOD_SECONDS, plan, replay

    fixes = dropped = 0
    while True:
        track = plan(data) if verbatim else await _live_plan(data)
        dropped += await replay(fd, track, speed=speed)
        fixes += track.fixes
        if not loop or not track.steps:
            break
        await asyncio.sleep(DEFAULT_PERIOD_SECONDS / speed)
    await asyncio.sleep(_LINGER_SECONDS)
    return fixes, dropped
