"""Custody clocks ("red card"): how far each person in custody is toward their legal limit.

elapsed = now - 到案; the limit comes from the legal basis; the projected end is the planned
session's end plus exit processing. Levels and who is told are in domain.md; the thresholds
are configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from scheduling.model import Minute, PersonKey


class Level(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"
    BLACK = "black"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.GREEN: 0, Level.YELLOW: 1, Level.ORANGE: 2, Level.RED: 3, Level.BLACK: 4}

WHO_IS_TOLD: dict[Level, str] = {
    Level.GREEN: "",
    Level.YELLOW: "case officer",
    Level.ORANGE: "case officer and unit leader",
    Level.RED: "centre duty leader",
    Level.BLACK: "legal supervision record",
}


@dataclass(frozen=True, slots=True)
class ClockThresholds:
    yellow_fraction: float = 0.5
    orange_fraction: float = 0.75
    orange_projected_within_minutes: int = 120
    red_before_limit_minutes: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.yellow_fraction <= self.orange_fraction <= 1:
            raise ValueError("custody thresholds: need 0 < yellow_fraction <= orange_fraction <= 1")
        if self.orange_projected_within_minutes < 0 or self.red_before_limit_minutes < 0:
            raise ValueError("custody thresholds: minutes must not be negative")


@dataclass(frozen=True, slots=True)
class Clock:
    brought_in_at: Minute
    limit_minutes: int
    elapsed_minutes: int
    remaining_minutes: int
    projected_end: Minute | None
    level: Level

    @property
    def deadline(self) -> Minute:
        return self.brought_in_at + self.limit_minutes


def clock(
    now: Minute,
    brought_in_at: Minute,
    limit_minutes: int,
    projected_end: Minute | None,
    thresholds: ClockThresholds,
) -> Clock:
    """The clock of one person; ``projected_end`` already includes exit processing."""
    elapsed = now - brought_in_at
    deadline = brought_in_at + limit_minutes
    if now >= deadline:
        level = Level.BLACK
    elif now >= deadline - thresholds.red_before_limit_minutes or (
        projected_end is not None and projected_end > deadline
    ):
        level = Level.RED
    elif elapsed >= limit_minutes * thresholds.orange_fraction or (
        projected_end is not None
        and projected_end > deadline - thresholds.orange_projected_within_minutes
    ):
        level = Level.ORANGE
    elif elapsed >= limit_minutes * thresholds.yellow_fraction:
        level = Level.YELLOW
    else:
        level = Level.GREEN
    return Clock(brought_in_at, limit_minutes, elapsed, deadline - now, projected_end, level)


@dataclass(frozen=True, slots=True)
class LevelChange:
    key: PersonKey
    level: Level
    news: bool  # told as an event: every change except a clock that starts green


def level_changes(
    current: Iterable[tuple[PersonKey, Level]], stored: Mapping[PersonKey, str]
) -> list[LevelChange]:
    """The clocks whose level differs from the one last stored, in the order given."""
    return [
        LevelChange(key, level, news=key in stored or level is not Level.GREEN)
        for key, level in current
        if stored.get(key) != level.value
    ]
