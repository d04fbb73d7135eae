"""Conformance: our fixes from real receivers' NMEA against gpsd's decoding of the same bytes.

The corpus (``shared/data/gpsd-nmea``, from gpsd's ``test/daemon``) pairs each capture
``X.log`` with ``X.log.chk``: every sentence gpsd accepted, echoed, each followed by the JSON
reports (``TPV``, ``SKY``…) gpsd emitted after it.

How a fix is matched to "gpsd's TPV after that sentence":

1. ``X.log`` is decoded by ``precinct gps decode`` (its handler, in this process): one JSON
   object per fix. The same bytes through :class:`NmeaDecoder` give the RMC
   :class:`Sentence` each fix came from (the decoder puts a fix right after its sentence).
2. That sentence's echo is found in ``X.log.chk``, searching forward from the previous match
   (both files are in stream order).
3. The fix's TPV is the first ``TPV`` after the echo that has a fix (mode >= 2) and the same
   time. gpsd reports a cycle when it sees the cycle end, which for many receivers is after the
   GGA, GSA or GLL that follow the RMC; and until the GSA arrives the first TPV of an epoch can
   be mode 1 (garmin25lp). Matching by time, not by position in the file, handles both.
4. Position within 1e-6 degrees, speed within 0.01 m/s (when the RMC has one), course within
   0.01 degrees (when both have one), and the same time, to the printed character.

Besides, the RMC sentences that give fixes must be exactly those gpsd accepted with status A:
a void RMC or one with a bad checksum gives none.

Results over the 64 logs: 1758 fixes; 1713 match; 22 match with gpsd's week-rollover shift;
5 differ as explained (``gga_position``); 18 have no TPV to compare with. Exceptions, per log
in :data:`KNOWN`:

- ``rollover``: gpsd's expected output for neo-m8n dates the fixes of 2015-03-18 2034-11-01,
  1024 GPS weeks later (gpsd's week-rollover guess, not the receiver's date; the log's header
  says 2015-03-18). They are matched at time + 1024 weeks and checked like the others.
- ``gga_position``: ch-4701's receiver puts different positions in the RMC and the GGA of the
  same second; gpsd's TPV takes the GGA's (the later sentence), we report the RMC's. Checked:
  the TPV agrees with that GGA.
- ``first_cycle``: the first fix of a log; gpsd had not found the cycle end yet and first
  reported the next epoch.
- ``log_ends``: the capture ends before gpsd closed the last cycle; no TPV follows.
- ``splice``: the capture goes on with another recording before the cycle closed (a ``#``
  comment in the log and a jump in time: bt451 ``# Moving in car``, ublox-lea-5h
  ``# Sentences with fix begin here``).
- ``cycle_missed``: gpsd reported the epochs before and after but not this one. In both cases
  (gp-320fw) the receiver left out, that second, the GLL that had ended its earlier cycles, and
  gpsd, waiting for it, never closed the cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devices.gps.cli import register
from devices.gps.fix import Fix
from devices.gps.nmea import NmeaDecoder, Sentence
from devices.gps.simulator import strip_comments

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gpsd-nmea"
LOGS = sorted(CORPUS.glob("*.log")) if CORPUS.is_dir() else []
ROLLOVER = timedelta(weeks=1024)

KNOWN: dict[str, dict[str, int]] = {
    "ait250.log": {"log_ends": 1},
    "bn-9015.log": {"first_cycle": 1},
    "bt451.log": {"splice": 1, "log_ends": 1},
    "ch-4701.log": {"gga_position": 5, "log_ends": 1},
    "geos-1m.log": {"first_cycle": 1},
    "gp-320fw-2019-03-28.log": {"cycle_missed": 1},
    "gp-320fw-2019-04-06-overflow.log": {"cycle_missed": 1},
    "haicom-305N.log": {"first_cycle": 1},
    "isync.log": {"log_ends": 1},
    "motorola-t805.log": {"first_cycle": 1},
    "mtk-3301.log": {"first_cycle": 1},
    "myguide-3100.log": {"first_cycle": 1},
    "neo-m8n.log": {"rollover": 22, "log_ends": 1},
    "st-teseo-liv3f.log": {"log_ends": 1},
    "tr737A+.log": {"first_cycle": 1},
    "ublox-lea-4h.log": {"log_ends": 1},
    "ublox-lea-5h.log": {"splice": 1},
}
TOTALS = {
    "fixes": 1758,
    "match": 1713,
    "rollover": 22,
    "gga_position": 5,
    "first_cycle": 7,
    "log_ends": 7,
    "splice": 2,
    "cycle_missed": 2,
}
# Two captures joined in one log are further apart than this.
SPLICE_GAP = timedelta(seconds=60)
# RMC mode indicators without a real position: not valid, simulator, manual input.
VOID_MODES = frozenset({"N", "S", "M"})

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the gpsd NMEA corpus is not at {CORPUS}"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    fixes: int
    counts: Counter[str]
    mismatches: list[str]
    fix_sources: list[str]
    accepted_rmcs: list[str]


def _tpv(line: str) -> dict[str, Any] | None:
    if not line.startswith('{"class":"TPV"'):
        return None
    report: dict[str, Any] = json.loads(line)
    return report


def _time(report: dict[str, Any]) -> datetime | None:
    text = report.get("time")
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _position(gga: str) -> tuple[float, float]:
    fields = gga.split("*")[0].split(",")

    def degrees(raw: str, width: int, negative: bool) -> float:
        value = int(raw[:width]) + float(raw[width:]) / 60
        return -value if negative else value

    return (degrees(fields[2], 2, fields[3] == "S"), degrees(fields[4], 3, fields[5] == "W"))


def _agrees(printed: dict[str, Any], report: dict[str, Any], rollover: bool) -> list[str]:
    problems = []
    if not rollover and printed["time"] != report["time"]:
        problems.append(f"time {printed['time']} vs {report['time']}")
    lat, lon = printed["lat"], printed["lon"]
    if abs(report["lat"] - lat) > 1e-6 or abs(report["lon"] - lon) > 1e-6:
        problems.append(f"position {lat:.9f},{lon:.9f} vs {report['lat']:.9f},{report['lon']:.9f}")
    speed, course = printed["speed_mps"], printed["course"]
    if speed is not None and abs(report.get("speed", -1.0) - speed) > 0.01:
        problems.append(f"speed {speed} vs {report.get('speed')}")
    if course is not None and "track" in report and abs(report["track"] - course) > 0.01:
        problems.append(f"course {course} vs {report['track']}")
    return problems


def _cli_decode(log: Path) -> tuple[list[dict[str, Any]], str]:
    parser = argparse.ArgumentParser(prog="precinct")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gps", "decode", str(log)])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.handler(args)
    assert code == 0, err.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def _classify_unreported(fix_index: int, chk: list[str], echo: int, fix: Fix) -> str:
    if fix_index == 0:
        return "first_cycle"
    later = [
        t
        for line in chk[echo + 1 :]
        if (report := _tpv(line)) is not None and (t := _time(report)) is not None
    ]
    if not later:
        return "log_ends"
    if abs(later[0] - fix.time) > SPLICE_GAP:
        return "splice"
    return "cycle_missed"


@functools.cache
def _check(log: Path) -> Outcome:
    chk = log.with_name(log.name + ".chk").read_text(encoding="latin-1").splitlines()
    decoder = NmeaDecoder()
    events = decoder.feed(strip_comments(log.read_bytes())) + decoder.flush()
    counts: Counter[str] = Counter()
    mismatches: list[str] = []
    sources: list[str] = []
    cursor = 0
    # The decoder puts each fix right after the sentence it comes from.
    fixes = [
        (event, before)
        for event, before in zip(events[1:], events, strict=False)
        if isinstance(event, Fix)
    ]
    printed, _ = _cli_decode(log)
    assert printed == [fix.to_json() for fix, _ in fixes]
    for index, ((fix, source), record) in enumerate(zip(fixes, printed, strict=True)):
        assert isinstance(source, Sentence)
        assert source.kind == "RMC"
        text = source.raw.decode("ascii")
        sources.append(text)
        echo = chk.index(text, cursor)
        cursor = echo + 1
        found, how, gga = None, "match", None
        for line in chk[echo + 1 :]:
            if gga is None and line.startswith("$") and line[3:6] == "GGA":
                gga = line
            report = _tpv(line)
            if report is None or report.get("mode", 0) < 2:
                continue
            moment = _time(report)
            if moment == fix.time:
                found = report
                break
            if moment == fix.time + ROLLOVER:
                found, how = report, "rollover"
                break
        if found is None:
            counts[_classify_unreported(index, chk, echo, fix)] += 1
            continue
        problems = _agrees(record, found, how == "rollover")
        if problems and gga is not None and gga.split(",")[1] == text.split(",")[1]:
            lat, lon = _position(gga)
            if abs(found["lat"] - lat) <= 1e-6 and abs(found["lon"] - lon) <= 1e-6:
                how, problems = "gga_position", []
        if problems:
            mismatches.append(f"{text}: {'; '.join(problems)}")
        counts[how] += 1
    accepted = [
        line for line in chk if line.startswith("$") and line[3:6] == "RMC" and _rmc_has_fix(line)
    ]
    return Outcome(len(fixes), counts, mismatches, sources, accepted)


def _rmc_has_fix(line: str) -> bool:
    fields = line.split("*")[0].split(",")
    mode = fields[12] if len(fields) > 12 else ""
    return len(fields) > 9 and fields[2] == "A" and mode not in VOID_MODES


@pytest.mark.parametrize("log", LOGS, ids=lambda path: path.name)
def test_fixes_agree_with_gpsd(log: Path) -> None:
    outcome = _check(log)
    assert outcome.mismatches == []
    expected = Counter(KNOWN.get(log.name, {}))
    expected["match"] = outcome.fixes - expected.total()
    assert +outcome.counts == +expected


@pytest.mark.parametrize("log", LOGS, ids=lambda path: path.name)
def test_fixes_come_from_exactly_the_rmc_gpsd_accepted_with_a_fix(log: Path) -> None:
    outcome = _check(log)
    assert outcome.fix_sources == outcome.accepted_rmcs


def test_corpus_totals() -> None:
    totals: Counter[str] = Counter()
    for log in LOGS:
        outcome = _check(log)
        totals["fixes"] += outcome.fixes
        totals.update(outcome.counts)
    assert len(LOGS) == 64
    assert dict(totals) == TOTALS
