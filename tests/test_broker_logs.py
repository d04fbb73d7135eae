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

JSON_LOGS = ["--log-format", "json", "--log-level", "debug"]


def _entries(child: Child) -> list[dict[str, Any]]:
    """The child's log, every line a JSON object (a line that is not fails the test)."""
    return [json.loads(line) for line in child.output().splitlines() if line.strip()]


def _count(child: Child, level: str, pattern: str) -> int:
    found = re.compile(pattern)
    return sum(1 for e in _entries(child) if e["level"] == level and found.search(e["message"]))


def test_an_agent_warns_once_of_an_unreachable_broker_and_tells_its_return(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet
    agent = Child(
        [
            "agent",
            "--id",
            "a1",
            "--broker",
            f"mqtt://precinct:s3cret-pw@127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "a1"),
            *JSON_LOGS,
        ],
        tmp_path / "a1.log",
        # Retries at 0.05, 0.1, 0.2 … s (plus jitter) up to the cap, which spaces the reminders.
        {"PRECINCT_BACKOFF_INITIAL": "0.05", "PRECINCT_BACKOFF_MAX": "5"},
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
    http_port = free_port()
    central = Child(
        [
            "central",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--db",
            str(tmp_path / "central.sqlite3"),
            "--listen",
            f"127.0.0.1:{http_port}",
            *JSON_LOGS,
        ],
        tmp_path / "central.log",
    )
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
        wait_until(lambda: http_get(f"http://127.0.0.1:{http_port}/readyz")[0] == 200, 10, "ready")
        assert _count(central, "WARNING", "unreachable") <= 2
    finally:
        central.kill()
        if broker is not None:
            broker.kill()


def _central(deployment: Deployment, name: str, *extra: str) -> tuple[Child, str]:
    http_port = free_port()
    child = Child(
        [
            "central",
            "--broker",
            deployment.broker.url,
            "--db",
            str(deployment.root / f"{name}.sqlite3"),
            "--listen",
            f"127.0.0.1:{http_port}",
            "--log-format",
            "json",
            *extra,
        ],
        deployment.root / f"{name}.log",
    )
    return child, f"http://127.0.0.1:{http_port}"


def _client_id(child: Child) -> str:
    ids = {
        m.group(1)
        for e in _entries(child)
        if (m := re.fullmatch(r"ingest connected to \S+ as (\S+)", e["message"]))
    }
    assert len(ids) == 1, ids
    return ids.pop()


def _ready(base: str) -> bool:
    return http_get(f"{base}/readyz")[0] == 200


def test_two_centrals_with_one_client_id_are_told_so(deployment: Deployment) -> None:
    first, first_base = _central(deployment, "first", "--client-id", "precinct-central-x")
    second, second_base = _central(deployment, "second", "--client-id", "precinct-central-x")
    try:
        wait_until(lambda: _ready(first_base) or _ready(second_base), 20, "a central")

        def told() -> bool:
            return any(
                _count(
                    child, "ERROR", "another client uses the MQTT client id 'precinct-central-x' "
                )
                for child in (first, second)
            )

        wait_until(told, 20, "the clash to be named")
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
    twin = Child(
        [
            "agent",
            "--id",
            "a1",
            "--broker",
            deployment.broker.url,
            "--data-dir",
            str(tmp_path / "twin"),
            "--log-format",
            "json",
        ],
        tmp_path / "twin.log",
        FAST_AGENT_ENV,
    )
    try:

        def told() -> bool:
            return any(
                _count(
                    child, "ERROR", "another client uses the MQTT client id 'precinct-agent-a1' "
                )
                for child in (first, twin)
            )

        wait_until(told, 30, "the clash to be named")
        assert "already connected, closing old connection" in _broker_log(deployment)
    finally:
        twin.kill()


def _broker_log(deployment: Deployment) -> str:
    return (deployment.broker.workdir / "mosquitto.log").read_text(errors="replace")


def test_centrals_on_two_stores_never_clash_and_a_restart_keeps_its_id(
    deployment: Deployment,
) -> None:
    first, first_base = _central(deployment, "first")
    second, second_base = _central(deployment, "second")
    restarted: Child | None = None
    try:
        wait_until(lambda: _ready(first_base) and _ready(second_base), 20, "both centrals")
        first_id, second_id = _client_id(first), _client_id(second)
        assert first_id != second_id
        assert first_id.startswith("precinct-central-")
        first.kill()
        restarted, restarted_base = _central(deployment, "first")
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
