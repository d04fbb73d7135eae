"""Shared fixtures: every test that needs a broker gets its own Mosquitto on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.auth import Role, create_token
from central.store import connect, migrate
from tests.support import Child, Mosquitto, free_port, http_get, wait_until

# Agents in tests reconnect fast; the backoff policy itself is tested on its own.
FAST_AGENT_ENV = {"PRECINCT_BACKOFF_INITIAL": "0.05", "PRECINCT_BACKOFF_MAX": "0.5"}
# Gap repair on a test's time scale; the planner's timing is tested on its own.
FAST_CENTRAL_ENV = {
    "PRECINCT_REPAIR_INTERVAL": "0.5",
    "PRECINCT_REPAIR_GRACE": "1.5",
    "PRECINCT_REPAIR_RETRY": "5",
    # A test's plan stays as booked unless it asks for the improver: the run 10 s after each
    # change would otherwise move bookings under tests that look at them.
    "PRECINCT_IMPROVE_AFTER_CHANGE": "0",
}


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: the test command installs it (see README)")
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    yield broker
    broker.kill()


class Deployment:
    """A central service and agents around one test broker, all real processes."""

    def __init__(self, root: Path, broker: Mosquitto) -> None:
        self.root = root
        self.broker = broker
        self.db = root / "central.sqlite3"
        self.http_port = free_port()
        self.central: Child | None = None
        self.agents: dict[str, Child] = {}
        self.metrics_ports: dict[str, int] = {}
        self._logs = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _log(self, name: str) -> Path:
        self._logs += 1
        return self.root / f"{self._logs:02d}-{name}.log"

    def start_central(self, env: dict[str, str] | None = None) -> Child:
        self.central = Child(
            [
                "central",
                "--broker",
                self.broker.url,
                "--db",
                str(self.db),
                "--listen",
                f"127.0.0.1:{self.http_port}",
            ],
            self._log("central"),
            {**FAST_CENTRAL_ENV, **(env or {})},
        )
        wait_until(lambda: http_get(f"{self.base}/readyz")[0] == 200, 20, "central to be ready")
        return self.central

    def agent_dir(self, agent_id: str) -> Path:
        return self.root / "agents" / agent_id

    def start_agent(
        self,
        agent_id: str,
        *,
        station: str = "s1",
        synthetic: float = 0,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        broker_url: str | None = None,
    ) -> Child:
        args = [
            "agent",
            "--id",
            agent_id,
            "--station",
            station,
            "--broker",
            broker_url or self.broker.url,
            "--data-dir",
            str(self.agent_dir(agent_id)),
        ]
        self.metrics_ports[agent_id] = free_port()
        args += ["--metrics-listen", f"127.0.0.1:{self.metrics_ports[agent_id]}"]
        if synthetic:
            args += ["--synthetic", str(synthetic)]
        child = Child(args + (extra or []), self._log(agent_id), {**FAST_AGENT_ENV, **(env or {})})
        self.agents[agent_id] = child
        return child

    def token(self, role: Role, station: str | None = None, name: str | None = None) -> str:
        migrate(self.db)
        conn = connect(self.db)
        try:
            return create_token(conn, role=role, name=name or f"test {role}", station=station)
        finally:
            conn.close()

    def close(self) -> None:
        for child in self.agents.values():
            child.kill()
        if self.central is not None:
            self.central.kill()


@pytest.fixture
def deployment(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Deployment]:
    system = Deployment(tmp_path, mosquitto)
    yield system
    system.close()
