"""In which order the instant allocator places the persons of one call (a booking, a re-plan).

A booking's officers question at most ``officers // 2`` persons at a time (H6), so its persons
queue for the same officers: the one placed first takes the earliest slot and the others wait
behind it. Weighted shortest session first is what minimises the weighted waiting of such a
queue (S1; Smith's rule), so a 20-minute witness is not kept waiting behind a two-hour
interrogation. Persons whose legal limit leaves little room go first all the same, tightest
limit first, so that the order never costs a legal deadline (H5).
"""

from __future__ import annotations

from scheduling.needs import Need

# Minutes between the earliest possible end and the legal limit below which a person is placed
# before everyone else (the offline reference's dispatchers use the same bound).
URGENT_SLACK = 120


def placing_order(need: Need, weight: float) -> tuple[float, ...]:
    """Sort key, lower first: urgent persons by legal limit, then the rest by session minutes
    per unit of S1 weight."""
    if need.latest_end is not None:
        slack = need.latest_end - need.earliest_start - need.duration
        if slack < URGENT_SLACK:
            return (0, need.latest_end, need.duration / weight)
    return (1, need.duration / weight, 0)
