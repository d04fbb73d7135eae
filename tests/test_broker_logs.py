"""What the log says about the broker, with real processes: an unreachable broker is warned of
once and then at the backoff, its return once; a client-id clash is named; the central's
default client id is its store's own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import FAST_AGENT_ENV, Deployment
from tests.support import Child, Mosquitto, free_port, http_get, metric_value, wait_until

DEBUG = ["--log-level", "debug"]


def _entries(child: Child) -> list[dict[str, Any]]:
    """The child's log, every line a JSON object (a line that is not fails the test)."""
    return [json.loads(line) for line in child.output().splitlines() if line.strip()]


def _count(child: Child, level: str, pattern: str) -> int:
    found = re.compile(pattern)
    return sum(1 for e in _entries(child) if e["level"] == level and found.search(e["message"]))


def _central(broker: str, root: Path, name: str, *extra: str) -> tuple[Child, str]:
    """A central on ``broker`` logging JSON, its store and log in ``root``; its base URL."""
    http_port = free_port()
    child = Child(
        [
            "central",
            "--broker",
            broker,
            "--db",
            str(root / f"{name}.sqlite3"),
            "--listen",
            f"127.0.0.1:{http_port}",
            "--log-format",
            "json",
            *extra,
        ],
        root / f"{name}.log",
    )
    return child, f"http://127.0.0.1:{http_port}"


def _agent(broker: str, root: Path, name: str, env: dict[str, str], *extra: str) -> Child:
    """Agent ``a1`` on ``broker`` logging JSON, its data and log in ``root`` under ``name``."""
    return Child(
        [
            "agent",
            "--id",
            "a1",
            "--broker",
            broker,
            "--data-dir",
            str(root / name),
            "--log-format",
            "json",
            *extra,
        ],
        root / f"{name}.log",
        env,
    )


def _ready(base: str) -> bool:
    return http_get(f"{base}/readyz")[0] == 200


def _client_id(child: Child) -> str:
    ids = {
        m.group(1)
        for e in _entries(child)
        if (m := re.fullmatch(r"ingest connected to \S+ as (\S+)", e["message"]))
    }
    assert len(ids) == 1, ids
    return ids.pop()


def _told_of_clash(client_id: str, *children: Child) -> bool:
    """Whether one of ``children`` has logged the error naming a clash on ``client_id``."""
    told = re.escape(f"another client uses the MQTT client id '{client_id}' ")
    return any(_count(child, "ERROR", told) for child in children)


def _broker_log(deployment: Deployment) -> str:
    return (deployment.broker.workdir / "mosquitto.log").read_text(errors="replace")


def test_an_agent_warns_once_of_an_unreachable_broker_and_tells_its_return(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet
    agent = _agent(
        f"mqtt://precinct:s3cret-pw@127.0.0.1:{port}",
        tmp_path,
        "a1",
        # Retries at 0.05, 0.1, 0.2 … s (plus jitter) up to the cap, which spaces the reminders.
        {"PRECINCT_BACKOFF_INITIAL": "0.05", "PRECINCT_BACKOFF_MAX": "5"},
        *DEBUG,
    )
    broker: Mosquitto | None = None
    try:
        wait_until(
            lambda: _count(agent, "DEBUG", "reconnecting in") >= 5, 20, "five failed attempts"
        )
        assert _count(agent, "WARNING", "unreachable") == 1
        (warning,) = [e for e in _entries(agent) if e["level"] == "WARNING"]
        assert f"broker mqtt://precinct@127.0.0.1:{port} unreachable" in warning["message"]
        assert "Connection refused" in warning["message"]
        broker = Mosquitto(tmp_path / "broker", port)
        broker.start()
        wait_until(
            lambda: _count(agent, "INFO", r"connected to broker .* again after") == 1,
            20,
            "the agent's reconnect line",
        )
        assert "s3cret-pw" not in agent.output()
        assert _count(agent, "WARNING", "unreachable") <= 2  # the reminder, at most once in 5 s
    finally:
        agent.kill()
        if broker is not None:
            broker.kill()


def test_the_central_warns_once_of_an_unreachable_broker_and_tells_its_return(
    tmp_path: Path,
) -> None:
    port = free_port()
    central, base = _central(f"mqtt://127.0.0.1:{port}", tmp_path, "central", *DEBUG)
    broker: Mosquitto | None = None
    try:
        # paho retries after 1, 2, 4 … s.
        wait_until(
            lambda: _count(central, "DEBUG", r"broker .* unreachable") >= 2, 20, "three failures"
        )
        assert _count(central, "WARNING", "unreachable") == 1
        assert _count(central, "WARNING", "Connection refused") == 1
        # uvicorn's own lines come through the same handler, as JSON.
        assert any(e["logger"] == "uvicorn.error" for e in _entries(central))
        broker = Mosquitto(tmp_path / "broker", port)
        broker.start()
        wait_until(
            lambda: _count(central, "INFO", r"ingest connected to broker .* again after") == 1,
            30,
            "the ingest's reconnect line",
        )
        wait_until(lambda: _ready(base), 10, "ready")
        assert _count(central, "WARNING", "unreachable") <= 2
    finally:
        central.kill()
        if broker is not None:
            broker.kill()


def test_two_centrals_with_one_client_id_are_told_so(deployment: Deployment) -> None:
    first, first_base = _central(
        deployment.broker.url, deployment.root, "first", "--client-id", "precinct-central-x"
    )
    second, second_base = _central(
        deployment.broker.url, deployment.root, "second", "--client-id", "precinct-central-x"
    )
    try:
        wait_until(lambda: _ready(first_base) or _ready(second_base), 20, "a central")
        wait_until(
            lambda: _told_of_clash("precinct-central-x", first, second),
            20,
            "the clash to be named",
        )
        taken = _broker_log(deployment).count("already connected, closing old connection")
        assert taken >= 3
        wait_until(
            lambda: _broker_log(deployment).count("already connected") >= taken + 4,
            20,
            "four more takeovers",
        )
        for child in (first, second):
            # Told once a minute at most, however often the two knock each other off; the
            # plain "connection lost" warnings stop once the clash is recognised.
            assert _count(child, "ERROR", "another client uses") <= 1
            assert _count(child, "WARNING", "lost its connection") <= 3
    finally:
        first.kill()
        second.kill()


def test_two_agents_with_one_id_are_told_so(deployment: Deployment, tmp_path: Path) -> None:
    first = deployment.start_agent("a1", extra=["--log-format", "json"])
    twin = _agent(deployment.broker.url, tmp_path, "twin", FAST_AGENT_ENV)
    try:
        wait_until(
            lambda: _told_of_clash("precinct-agent-a1", first, twin), 30, "the clash to be named"
        )
        assert "already connected, closing old connection" in _broker_log(deployment)
    finally:
        twin.kill()


def test_centrals_on_two_stores_never_clash_and_a_restart_keeps_its_id(
    deployment: Deployment,
) -> None:
    first, first_base = _central(deployment.broker.url, deployment.root, "first")
    second, second_base = _central(deployment.broker.url, deployment.root, "second")
    restarted: Child | None = None
    try:
        wait_until(lambda: _ready(first_base) and _ready(second_base), 20, "both centrals")
        first_id, second_id = _client_id(first), _client_id(second)
        assert first_id != second_id
        assert first_id.startswith("precinct-central-")
        first.kill()
        restarted, restarted_base = _central(deployment.broker.url, deployment.root, "first")
        wait_until(lambda: _ready(restarted_base), 20, "the restarted central")
        assert _client_id(restarted) == first_id
        for child, base in ((second, second_base), (restarted, restarted_base)):
            _, metrics = http_get(f"{base}/metrics")
            assert metric_value(metrics, "precinct_ingest_connected") == 1
            assert _count(child, "ERROR", "another client uses") == 0
        assert "already connected, closing old connection" not in _broker_log(deployment)
    finally:
        for started in (first, second, restarted):
            if started is not None:
                started.kill()
