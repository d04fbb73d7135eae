"""S2, slack before legal limits: a session that ends close to its person's legal limit leaves
nothing for an overrun, a late guardian or the exit paperwork running long. Each minute short
of ``SLACK_MINUTES`` before the limit costs ``SLACK_WEIGHT`` weighted waiting minutes."""

from __future__ import annotations

from ortools.sat.python import cp_model

from scheduling.model import Minute
from scheduling.needs import Need

SLACK_MINUTES = 120
SLACK_WEIGHT = 2


def shortfall(need: Need, start: Minute) -> int:
    """Minutes short of the wanted slack for a session starting at ``start``."""
    if need.latest_end is None:
        return 0
    return max(0, SLACK_MINUTES - (need.latest_end - start - need.duration))


def shortfall_var(
    model: cp_model.CpModel,
    need: Need,
    start: cp_model.IntVar,
    placed: cp_model.IntVar,
    now: Minute,
) -> cp_model.IntVar | None:
    """The same in the model, for a start counted in minutes after ``now``; nothing for a
    person left unplaced."""
    if need.latest_end is None:
        return None
    short = model.new_int_var(0, SLACK_MINUTES, "slackshort")
    model.add(
        short >= SLACK_MINUTES - (need.latest_end - now - need.duration - start)
    ).only_enforce_if(placed)
    return short
