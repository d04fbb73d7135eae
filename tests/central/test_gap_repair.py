"""When the centre asks an agent to replay a missing range: the pure planner, and the gaps the
store hands it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from central.gap_repair import GapRepairPlanner
from central.gap_repair_runner import find_gaps
from central.ingest_writer import IngestWriter
from central.store import connect, migrate
from edge_agent.wire import Envelope, MessageClass, Status

NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


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


def _messages(agent: str, epoch: str, first_seq: int, seqs: list[int]) -> list[tuple[str, bytes]]:
    birth = Status(agent, True, 1, 1, NOW, "s1", epoch=epoch, first_seq=first_seq)
    return [
        (f"precinct/v1/{agent}/status", birth.encode()),
        *(
            (
                f"precinct/v1/{agent}/telemetry",
                Envelope(agent, epoch, 1, seq, NOW, "d", "k", MessageClass.TELEMETRY, {}).encode(),
            )
            for seq in seqs
        ),
    ]


def test_only_the_current_epoch_is_asked_for_and_from_its_first_seq(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    migrate(db)
    writer = IngestWriter(connect(db))
    writer.write(_messages("a1", "old", 1, [1, 2, 5]))  # 3..4 missing, on a disk now gone
    writer.write(_messages("a1", "new", 1, [1, 4]))
    writer.write(_messages("a2", "up", 50, [50, 52]))  # an epoch that starts at 50: no 1..49
    watermarks: dict[tuple[str, str], int] = {}
    assert find_gaps(db, watermarks) == [("a1", "new", 2, 3), ("a2", "up", 51, 51)]
    assert watermarks == {("a1", "new"): 1, ("a2", "up"): 50}
