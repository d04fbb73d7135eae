"""S6, a spare room of each main type at peaks: a red-card suspect or a walk-in brought in at
the busiest hour should find an interrogation or inquiry room free, not wait for one. Each
clock hour in which every available room of a main type is busy (cleaning included) at some
moment costs ``Policy.weight_spare_room``; a type with fewer than two rooms has nothing to
spare and is left out."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from ortools.sat.python import cp_model

from scheduling.model import Minute
from scheduling.rooms import RoomType

MAIN_TYPES = frozenset({RoomType.INTERROGATION, RoomType.INQUIRY})
BLOCK_MINUTES = 60


def blocks(now: Minute, end: Minute) -> Iterator[tuple[Minute, Minute]]:
    """The clock hours from ``now`` to ``end``, the first one cut at ``now``."""
    hour = now - now % BLOCK_MINUTES
    while hour < end:
        yield max(hour, now), hour + BLOCK_MINUTES
        hour += BLOCK_MINUTES


def full_blocks(
    occupied: Collection[tuple[Minute, Minute]], rooms: int, now: Minute, end: Minute
) -> int:
    """Hours in which ``occupied`` (each room's busy stretches, cleaning included) fills all
    ``rooms`` at some moment."""
    if rooms < 2:
        return 0
    count = 0
    for start, stop in blocks(now, end):
        inside = [(max(a, start), min(b, stop)) for a, b in occupied if a < stop and b > start]
        if _peak(inside) >= rooms:
            count += 1
    return count


def _peak(intervals: list[tuple[Minute, Minute]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = level = 0
    for _, step in events:  # ends sort before starts at the same minute: back to back is free
        level += step
        peak = max(peak, level)
    return peak


def add_terms(
    model: cp_model.CpModel,
    occupied: list[cp_model.IntervalVar],
    rooms: int,
    now: Minute,
    end: Minute,
) -> list[cp_model.IntVar]:
    """One literal per hour, true when that hour keeps a room spare throughout: a stand-in
    session of that hour shares the rooms' capacity with ``occupied`` (intervals counted in
    minutes after ``now``). The objective pays for each hour whose literal is false."""
    if rooms < 2:
        return []
    spares: list[cp_model.IntVar] = []
    stand_ins: list[cp_model.IntervalVar] = []
    for start, stop in blocks(now, end):
        spare = model.new_bool_var("spare")
        stand_ins.append(
            model.new_optional_fixed_size_interval_var(start - now, stop - start, spare, "spare")
        )
        spares.append(spare)
    intervals = [*occupied, *stand_ins]
    model.add_cumulative(intervals, [1] * len(intervals), rooms)
    return spares
