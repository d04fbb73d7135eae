"""S7, fairness between stations: the total waiting alone may be cut by letting one station's
units wait for everyone else's. The improver also pays ``Policy.weight_station_fairness`` for
each minute of the worst-served station's mean wait (from ready to session start), so among
plans that wait as long in total it prefers the one that spreads the waiting.

Only persons already placed count (the improver keeps them placed, so each station's head
count is fixed and the mean stays linear); the unplaced have their own, larger cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ortools.sat.python import cp_model


def worst_mean(waits: Mapping[str, Sequence[int]]) -> int:
    """The largest station mean, rounded up to a whole minute; 0 unless two stations wait."""
    counted = {station: found for station, found in waits.items() if found}
    if len(counted) < 2:
        return 0
    return max(-(-sum(found) // len(found)) for found in counted.values())


def add_term(
    model: cp_model.CpModel,
    waits: Mapping[str, Sequence[cp_model.LinearExprT]],
    bound: int,
) -> cp_model.IntVar | None:
    """The worst station mean as a variable the objective pushes down (at least every
    station's mean, rounded up as in :func:`worst_mean`); ``bound`` caps any one wait."""
    counted = {station: found for station, found in waits.items() if found}
    if len(counted) < 2:
        return None
    worst = model.new_int_var(0, max(0, bound), "worstmean")
    for found in counted.values():
        model.add(worst * len(found) >= sum(found))
    return worst
