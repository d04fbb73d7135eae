"""Metrics of room planning, the fast lane and custody clocks, on the central's ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Arrival -> entry into the handling area: minutes through the fast lane, up to hours walk-in.
ENTRY_BUCKETS = (
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    2700.0,
    3600.0,
    5400.0,
    7200.0,
    10800.0,
    14400.0,
)
# Instant allocator answer time, seconds.
ALLOCATE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class PlanningMetrics:
    arrival_to_entry: Histogram
    allocate_seconds: Histogram
    unassigned: Gauge
    plan_violations: Counter
    custody_level: Gauge
    level_changes: Counter
    replans: Counter
    no_shows: Counter
    booking_answers: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PlanningMetrics:
        return cls(
            arrival_to_entry=Histogram(
                "precinct_fast_lane_arrival_to_entry_seconds",
                "Arrival at the centre to entry into the handling area",
                ["lane"],
                buckets=ENTRY_BUCKETS,
                registry=registry,
            ),
            allocate_seconds=Histogram(
                "precinct_allocate_seconds",
                "Time to answer a booking or a change with a plan",
                ["operation"],
                buckets=ALLOCATE_BUCKETS,
                registry=registry,
            ),
            unassigned=Gauge(
                "precinct_plan_unassigned_persons",
                "Persons of active bookings the plan could not place (escalated)",
                registry=registry,
            ),
            plan_violations=Counter(
                "precinct_plan_violations_total",
                "Hard-rule violations the independent plan checker found (must stay 0)",
                ["rule"],
                registry=registry,
            ),
            custody_level=Gauge(
                "precinct_custody_persons",
                "Persons in custody by clock level",
                ["level"],
                registry=registry,
            ),
            level_changes=Counter(
                "precinct_custody_level_changes_total",
                "Custody clock level changes",
                ["level"],
                registry=registry,
            ),
            replans=Counter(
                "precinct_replans_total", "Re-plans by cause", ["cause"], registry=registry
            ),
            no_shows=Counter(
                "precinct_no_shows_total", "Bookings released as no-shows", registry=registry
            ),
            booking_answers=Counter(
                "precinct_booking_answers_total",
                "Booking requests answered, by outcome (placed, waitlisted, refused)",
                ["outcome"],
                registry=registry,
            ),
        )
