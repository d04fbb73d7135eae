"""When the centre asks an agent to replay a missing range (pure planner)."""

from __future__ import annotations

from central.gap_repair import GapRepairPlanner


def test_a_gap_is_asked_for_only_after_the_grace_period() -> None:
    planner = GapRepairPlanner(grace=10, retry=30, max_attempts=2)
    gap = ("a1", "e1", 5, 9)
    assert planner.plan(100.0, [gap]) == []
    assert planner.plan(109.9, [gap]) == []
    assert planner.plan(110.0, [gap]) == [gap]
    assert planner.plan(120.0, [gap]) == []  # retry spacing
    assert planner.plan(140.0, [gap]) == [gap]
    assert planner.plan(200.0, [gap]) == []  # attempts exhausted: it stays a visible gap


def test_a_gap_that_fills_by_itself_is_forgotten() -> None:
    planner = GapRepairPlanner(grace=10, retry=30)
    planner.plan(0.0, [("a1", "e1", 5, 9)])
    # The backlog arrived: the gap is gone, and if it reappears its grace starts again.
    assert planner.plan(5.0, []) == []
    assert planner.plan(12.0, [("a1", "e1", 5, 9)]) == []
    assert planner.plan(22.0, [("a1", "e1", 5, 9)]) == [("a1", "e1", 5, 9)]


def test_gaps_of_two_epochs_of_one_agent_are_independent() -> None:
    planner = GapRepairPlanner(grace=0, retry=30)
    assert planner.plan(0.0, [("a1", "e1", 5, 9)]) == [("a1", "e1", 5, 9)]
    # The same numbers in a new epoch are other readings: asked for in their own right.
    assert planner.plan(1.0, [("a1", "e2", 5, 9)]) == [("a1", "e2", 5, 9)]


def test_gaps_of_several_agents_are_independent() -> None:
    planner = GapRepairPlanner(grace=0, retry=30)
    gaps = [("a1", "e1", 1, 3), ("a2", "e2", 7, 7)]
    assert planner.plan(0.0, gaps) == gaps
    assert planner.plan(1.0, [*gaps, ("a3", "e3", 2, 2)]) == [("a3", "e3", 2, 2)]
