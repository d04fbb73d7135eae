"""A central asked to stop (SIGTERM) while agents keep publishing: it is gone within its stop
deadline, not after one wait per step, and what it had not acknowledged arrives after the
restart, each reading stored once."""

from __future__ import annotations

import time

from tests.conftest import Deployment
from tests.support import agent_last_seq, stored_seqs, wait_until

AGENT = "busy-1"
# The ingest's stop deadline is 10 s; the rest of the shutdown takes well under a second.
STOP_BOUND_S = 13.0


def test_a_central_stops_in_time_while_an_agent_keeps_publishing(
    deployment: Deployment,
) -> None:
    central = deployment.start_central()
    agent = deployment.start_agent(AGENT, synthetic=800)
    wait_until(lambda: len(stored_seqs(deployment.db, AGENT)) > 2000, 60, "readings stored")

    asked = time.monotonic()
    code = central.stop(timeout=30)
    took = time.monotonic() - asked
    print(f"central stopped {took:.1f} s after SIGTERM while the agent published")
    # uvicorn re-raises the SIGTERM it handled once it has shut down.
    assert code in (0, -15), central.output()[-2000:]
    assert "Application shutdown complete" in central.output()
    assert took < STOP_BOUND_S

    # The agent stops too; a new central takes what the first left unacknowledged.
    assert agent.stop(timeout=30) == 0
    last = agent_last_seq(deployment.agent_dir(AGENT))
    deployment.start_central()
    deployment.start_agent(AGENT)
    wait_until(lambda: len(stored_seqs(deployment.db, AGENT)) >= last, 60, "every reading stored")
    stored = stored_seqs(deployment.db, AGENT)
    assert stored[:last] == list(range(1, last + 1))
