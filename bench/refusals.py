"""``precinct bench refusals``: how fast the central answers a booking it cannot take whole.

Each generated day (``scheduling.generator``, fixed seeds) is booked through the central's
planning service on a real SQLite file, in booking order, at 06:00 of the day and without the
waitlist (the default): a booking placed whole is stored (201), any other is refused (409) with
each person's rule, the suggested arrival and the best partial plan. The latency of every
answer is measured, accepted and refused apart (p50, p99 nearest rank, max), with what the
refusals offered: persons who fit now, persons who fit from a later arrival, refusals with a
suggested arrival. The service is set up as the central's start-up leaves it (the objects
built so far frozen out of the garbage collector's generations). At the end the independent
checker judges the stored plan, and every refusal's partial plan is judged too: its persons
booked on their own on a copy of the plan must all be placed, and the checker must pass.
The target: p99 < 50 ms for both answers at every size measured.
"""

from __future__ import annotations

import gc
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.day_store import store_rooms
from central.api.booking_models import BookingIn
from central.planning import PlanningError, PlanningService
from monitoring.figures import nearest_rank
from monitoring.planning_metrics import PlanningMetrics
from scheduling.checker import check_plan
from scheduling.generator import Day, generate_day
from scheduling.model import Booking, Minute, from_minute, to_minute

SIZES = ((100, 16), (320, 40), (650, 64))
SEEDS = (1, 2, 3)
TARGET_SECONDS = 0.050


@dataclass(frozen=True, slots=True)
class SizeFigures:
    persons: int
    rooms: int
    accepted: int
    refused: int
    accepted_p50_ms: float
    accepted_p99_ms: float
    refused_p50_ms: float
    refused_p99_ms: float
    refused_max_ms: float
    refused_cpu_p99_ms: float  # the answering thread's CPU time: the wall time less the waits
    fit_now: int  # persons of refused bookings the partial plan places
    fit_later: int  # persons of refused bookings with an arrival from which they fit
    suggested: int  # refusals with a suggested arrival for the whole booking
    violations: int  # in the stored plans, and in every partial plan beside its plan


def _service(day: Day, workdir: Path) -> PlanningService:
    db = workdir / "central.sqlite3"
    store_rooms(db, day.rooms)
    service = PlanningService(db, PlanningMetrics.create(CollectorRegistry()))
    service.load()
    # As the central does once started (central/app.py).
    gc.freeze()
    return service


def _partial_plan_violations(
    service: PlanningService, booking: Booking, body: Any, now: Minute
) -> int:
    """What booking the refusal's partial plan would break: its persons booked on their own, as
    the officer would, on a copy of the live plan (which the refusal left unchanged). Each
    person of ``fits_now`` it does not place counts one, and so does each violation the checker
    finds in the plan it leaves (the allocator may move other bookings' unstarted sessions for
    them, so the plan is judged as booking it would leave it, not beside the unmoved plan)."""
    names = {entry["person"] for entry in body["fits_now"]}
    if not names:
        return 0
    trial = service.planner.copy()
    partial = replace(
        booking,
        id=booking.id + "~partial",
        persons=tuple(p for p in booking.persons if p.id in names),
    )
    placement = trial.add_booking(partial, now)
    missing = len({item.person for item in placement.unassigned} & names)
    return missing + len(
        check_plan(trial.rooms, trial.bookings, trial.all_assignments(), trial.policy, trial.fixed)
    )


def measure_day(day: Day, workdir: Path) -> tuple[list[float], list[float], list[float], list[int]]:
    """Accepted and refused latencies and the refusals' CPU times (seconds), and summed over
    the refusals: fit now, fit later, suggested, violations of the partial plans (and of the
    stored plan)."""
    service = _service(day, workdir)
    opening = from_minute(day.day_start + 6 * 60)
    accepted: list[float] = []
    refused: list[float] = []
    cpu: list[float] = []
    counts = [0, 0, 0, 0]
    for booking in day.bookings:
        record = BookingIn.from_booking(booking).to_record()
        started, used = time.perf_counter(), time.thread_time()
        try:
            service.create(record, booking.station, "bench", opening)
        except PlanningError as exc:
            refused.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - used)
            plan = exc.partial_plan or {"fits_now": [], "fits_later": []}
            counts[0] += len(plan["fits_now"])
            counts[1] += sum(1 for later in plan["fits_later"] if later["arrival"] is not None)
            counts[2] += exc.suggested_arrival is not None
            counts[3] += _partial_plan_violations(service, booking, plan, to_minute(opening))
            continue
        accepted.append(time.perf_counter() - started)
    counts[3] += len(service.check())
    return accepted, refused, cpu, counts


def run_refusals_bench(
    seeds: tuple[int, ...] = SEEDS,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    *,
    json_output: bool = False,
) -> int:
    found = []
    for persons, rooms in sizes:
        accepted: list[float] = []
        refused: list[float] = []
        cpu: list[float] = []
        totals = [0, 0, 0, 0]
        for seed in seeds:
            with tempfile.TemporaryDirectory() as workdir:
                day_accepted, day_refused, day_cpu, counts = measure_day(
                    generate_day(persons, rooms, seed), Path(workdir)
                )
            accepted += day_accepted
            refused += day_refused
            cpu += day_cpu
            totals = [a + b for a, b in zip(totals, counts, strict=True)]
        found.append(
            SizeFigures(
                persons,
                rooms,
                len(accepted),
                len(refused),
                _ms(statistics.median(accepted) if accepted else 0.0),
                _ms(nearest_rank(accepted, 0.99) if accepted else 0.0),
                _ms(statistics.median(refused) if refused else 0.0),
                _ms(nearest_rank(refused, 0.99) if refused else 0.0),
                _ms(max(refused, default=0.0)),
                _ms(nearest_rank(cpu, 0.99) if cpu else 0.0),
                *totals,
            )
        )
    missed = [
        f"{f.persons}/{f.rooms}"
        for f in found
        if f.violations or max(f.accepted_p99_ms, f.refused_p99_ms) >= TARGET_SECONDS * 1000
    ]
    if json_output:
        print(json.dumps({"sizes": [asdict(f) for f in found], "missed": missed}))
    else:
        print(report(found, seeds, missed))
    return 1 if missed else 0


def report(found: list[SizeFigures], seeds: tuple[int, ...], missed: list[str]) -> str:
    lines = [
        "refused bookings: generated days booked through the planning service at 06:00 "
        f"without the waitlist, seeds {', '.join(map(str, seeds))}; milliseconds per answer",
        f"{'size':>8}{'accepted':>10}{'p50':>8}{'p99':>8}{'refused':>9}{'p50':>8}{'p99':>8}"
        f"{'max':>8}{'cpu p99':>9}{'fit now':>9}{'later':>7}{'sugg.':>7}{'viol.':>7}",
    ]
    for f in found:
        lines.append(
            f"{f.persons:>4}/{f.rooms:<3}{f.accepted:>10}{f.accepted_p50_ms:>8.1f}"
            f"{f.accepted_p99_ms:>8.1f}{f.refused:>9}{f.refused_p50_ms:>8.1f}"
            f"{f.refused_p99_ms:>8.1f}{f.refused_max_ms:>8.1f}{f.refused_cpu_p99_ms:>9.1f}{f.fit_now:>9}{f.fit_later:>7}"
            f"{f.suggested:>7}{f.violations:>7}"
        )
    lines.append(
        "(cpu p99: CPU time of the refusing thread, the wall time less waits for a core or the "
        "disk; fit now: persons of refused bookings the partial plan places; later: persons with "
        "an "
        "arrival from which they fit; sugg.: refusals with a suggested arrival; viol.: checker "
        "violations of the stored plans and of every partial plan)"
    )
    lines.append(
        "result: "
        + (
            "all targets met (p99 < 50 ms, no violation)"
            if not missed
            else "MISSED: " + ", ".join(missed)
        )
    )
    return "\n".join(lines)


def _ms(seconds: float) -> float:
    return seconds * 1000
