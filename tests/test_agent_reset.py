"""A wiped agent, end to end: its second life's readings are new readings, not duplicates."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from central.auth import Role
from tests.conftest import Deployment
from tests.support import agent_last_seq, http_get, metric_value, wait_until

RATE = 300.0
PER_LIFE = 500  # readings each life hands out at least


def _outbox_epoch(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / "outbox.sqlite3")
    try:
        return str(conn.execute("SELECT epoch FROM epoch").fetchone()[0])
    finally:
        conn.close()


def _live(deployment: Deployment, agent_id: str) -> tuple[str, int]:
    """Run one life of ``agent_id`` until it numbered PER_LIFE readings; (epoch, last seq)."""
    data_dir = deployment.agent_dir(agent_id)
    agent = deployment.start_agent(agent_id, synthetic=RATE)

    def numbered() -> bool:
        try:
            return agent_last_seq(data_dir) >= PER_LIFE
        except sqlite3.Error:
            return False  # the agent is still creating its outbox

    wait_until(numbered, 60, f"{agent_id} to number {PER_LIFE} readings")
    assert agent.stop() == 0
    return _outbox_epoch(data_dir), agent_last_seq(data_dir)


def _all_events(deployment: Deployment, token: str, agent_id: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = ""
    while True:
        status, page = http_get(
            f"{deployment.base}/api/v1/events?agent={agent_id}&limit=1000{cursor}", token
        )
        assert status == 200
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def _resets(deployment: Deployment) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(deployment.db)
    try:
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in conn.execute(
                "SELECT agent, old_epoch, body FROM agent_events WHERE kind = 'agent_reset'"
            )
        ]
    finally:
        conn.close()


def test_a_wiped_agent_keeps_both_lives_and_raises_one_reset(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    base = deployment.base

    def received(epoch: str) -> int:
        status, body = http_get(f"{base}/api/v1/agents/a1", token)
        if status != 200:
            return -1
        return next((e["received"] for e in body["epochs"] if e["epoch"] == epoch), -1)

    first_epoch, first_last = _live(deployment, "a1")
    wait_until(lambda: received(first_epoch) == first_last, 30, "the first life at the centre")
    # A replaced disk: the data directory is gone, the agent id stays.
    shutil.rmtree(deployment.agent_dir("a1"))
    second_epoch, second_last = _live(deployment, "a1")
    assert second_epoch != first_epoch
    wait_until(lambda: received(second_epoch) == second_last, 30, "the second life at the centre")

    # Every reading of both lives is stored exactly once and readable through the API.
    events = _all_events(deployment, token, "a1")
    keys = [(e["epoch"], e["seq"]) for e in events]
    assert len(keys) == len(set(keys)) == first_last + second_last
    for epoch, last in ((first_epoch, first_last), (second_epoch, second_last)):
        assert sorted(int(str(s)) for e, s in keys if e == epoch) == list(range(1, last + 1))

    status, agent = http_get(f"{base}/api/v1/agents/a1", token)
    assert status == 200
    assert (agent["epoch"], agent["received"], agent["missing"], agent["gaps"]) == (
        second_epoch,
        second_last,
        0,
        [],
    )
    assert [
        (e["epoch"], e["current"], e["first_seq"], e["last_seq"], e["received"], e["missing"])
        for e in agent["epochs"]
    ] == [
        (second_epoch, True, 1, second_last, second_last, 0),
        (first_epoch, False, 1, first_last, first_last, 0),
    ]
    status, agents = http_get(f"{base}/api/v1/agents", token)
    assert [(a["id"], a["epoch"]) for a in agents] == [("a1", second_epoch)]

    _, metrics = http_get(f"{base}/metrics")
    duplicates = metric_value(metrics, "precinct_ingest_duplicates_total")
    assert duplicates == 0  # today all of the second life was counted as duplicates
    assert metric_value(metrics, "precinct_ingest_agent_resets_total") == 1
    assert metric_value(metrics, "precinct_ingest_missing_messages") == 0
    resets = _resets(deployment)
    assert [(agent_id, old) for agent_id, old, _ in resets] == [("a1", first_epoch)]
    assert f'"old_last_seq":{first_last},' in resets[0][2]
    assert '"gaps":[]' in resets[0][2]

    def reset_alarmed() -> bool:
        status, page = http_get(f"{base}/api/v1/alarms?kind=agent_reset", token)
        return status == 200 and len(page["items"]) == 1

    wait_until(reset_alarmed, 20, "the agent_reset alarm")
    _, page = http_get(f"{base}/api/v1/alarms?kind=agent_reset", token)
    [alarm] = page["items"]
    assert (alarm["agent"], alarm["epoch"], alarm["state"]) == ("a1", second_epoch, "open")

    # The reset is derived from the store: a SIGKILLed central, restarted, and another birth of
    # the same epoch raise it no second time.
    assert deployment.central is not None
    deployment.central.kill()
    deployment.start_central()
    third = deployment.start_agent("a1")  # the second life's disk again: same epoch, session 2

    def online_again() -> bool:
        status, body = http_get(f"{base}/api/v1/agents/a1", token)
        return status == 200 and body["online"] and body["session"] == 2

    wait_until(online_again, 30, "a1 online again in its second epoch")
    assert third.stop() == 0
    assert len(_resets(deployment)) == 1
    _, metrics = http_get(f"{base}/metrics")
    assert metric_value(metrics, "precinct_ingest_agent_resets_total") == 0
    status, agent = http_get(f"{base}/api/v1/agents/a1", token)
    assert [e["epoch"] for e in agent["epochs"]] == [second_epoch, first_epoch]
    assert agent["received"] == second_last
    print(
        f"wipe: life 1 epoch {first_epoch} sent {first_last}, life 2 epoch {second_epoch} sent "
        f"{second_last}; stored {len(keys)} (each once), duplicates {duplicates:.0f}, "
        f"agent_reset events {len(resets)}"
    )
