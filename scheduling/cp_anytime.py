"""Solve a CP-SAT model that starts from the live plan, and keep the plan unless beaten.

The model's hint is the live plan, but only for the variables the plan names (starts, rooms);
an incomplete hint is a suggestion CP-SAT may drop, and then a short budget can end on a plan
worse than the one it started from. So the hint is first completed (every other variable
solved with the hinted ones fixed, a quick propagation), the solver then starts from a full
solution, and whatever it has when the budget runs out is kept only if it is better.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ortools.sat.python import cp_model

COMPLETION_SHARE = 0.3  # at most this part of the budget goes to completing the hint
_SOLVED = (cp_model.OPTIMAL, cp_model.FEASIBLE)


@dataclass(frozen=True, slots=True)
class Outcome:
    solver: cp_model.CpSolver
    better: bool  # strictly better than the hinted plan (or no hinted plan could be completed)


def solve_from_plan(model: cp_model.CpModel, budget: float, workers: int = 2) -> Outcome | None:
    """The best solution found within ``budget`` seconds, or None when none was found."""
    started = time.monotonic()
    baseline = _complete_hint(model, max(0.05, budget * COMPLETION_SHARE))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, budget - (time.monotonic() - started))
    solver.parameters.num_workers = workers
    # Probing in presolve alone can take seconds on a day's model; the search from the full
    # hint gains more from that time.
    solver.parameters.cp_model_probing_level = 0
    status = solver.solve(model)
    if status not in _SOLVED:
        return None
    return Outcome(solver, baseline is None or solver.objective_value < baseline)


def _complete_hint(model: cp_model.CpModel, budget: float) -> float | None:
    """Replace the hint by a full solution that agrees with it; its objective, or None when
    the hinted values admit none in time."""
    if not model.proto.solution_hint.vars:
        return None
    completion = cp_model.CpSolver()
    completion.parameters.fix_variables_to_their_hinted_value = True
    completion.parameters.max_time_in_seconds = budget
    completion.parameters.num_workers = 1
    if completion.solve(model) not in _SOLVED:
        return None
    values = list(completion.response_proto.solution)
    model.clear_hints()  # type: ignore[no-untyped-call]
    model.proto.solution_hint.vars.extend(range(len(values)))
    model.proto.solution_hint.values.extend(values)
    return float(completion.objective_value)
