"""The broker session of an ingest process under MQTT 5 session expiry, with a real Mosquitto,
real centrals sharing the stream and an agent: a member that is gone for longer than
``session_expiry`` stops taking its share; one restarted within it resumes with nothing lost.

Gap repair is off in both, so that every reading stored came through the shared subscription."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Deployment
from tests.support import (
    Child,
    Mosquitto,
    agent_last_seq,
    free_port,
    http_get,
    stored_seqs,
    wait_until,
)

NO_REPAIR = {"PRECINCT_REPAIR_INTERVAL": "0"}
RATE = 200.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto that publishes its $SYS counters every second (expired sessions among them)."""
    made = Mosquitto(tmp_path / "broker")
    made.conf.write_text(made.conf.read_text() + "sys_interval 1\n")
    made.start()
    yield made
    made.kill()


@pytest.fixture
def system(tmp_path: Path, broker: Mosquitto) -> Iterator[Deployment]:
    made = Deployment(tmp_path, broker)
    yield made
    made.close()


class ExpiredSessions:
    """Mosquitto's count of sessions it has expired ($SYS/broker/clients/expired)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.count = -1
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="expiry-watch")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("$SYS/broker/clients/expired")
        self.client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.count = int(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _second_member(system: Deployment) -> Child:
    port = free_port()
    member = Child(
        [
            "central",
            "--broker",
            system.broker.url,
            "--db",
            str(system.db),
            "--listen",
            f"127.0.0.1:{port}",
            "--client-id",
            "precinct-ingest-b",
        ],
        system.root / "member-b.log",
        NO_REPAIR,
    )
    ready = f"http://127.0.0.1:{port}/readyz"
    wait_until(lambda: http_get(ready)[0] == 200, 20, "the second ingest member")
    return member


def _all_stored(system: Deployment, agent_id: str) -> None:
    last = agent_last_seq(system.agent_dir(agent_id))
    assert last >= RATE
    wait_until(
        lambda: stored_seqs(system.db, agent_id) == list(range(1, last + 1)),
        30,
        f"all {last} readings of {agent_id} stored once",
    )


def _stream(system: Deployment, agent_id: str, readings: int) -> None:
    """An agent publishes at least ``readings`` readings, then stops cleanly (all sent)."""
    agent = system.start_agent(agent_id, synthetic=RATE)

    def taken() -> bool:
        try:
            return agent_last_seq(system.agent_dir(agent_id)) >= readings
        except Exception:  # noqa: BLE001 - the outbox file is still being created
            return False

    wait_until(taken, 60, f"{agent_id} to take {readings} readings")
    assert agent.stop() == 0


def test_a_member_gone_past_its_session_expiry_no_longer_takes_a_share(
    system: Deployment,
) -> None:
    expired = ExpiredSessions(system.broker)
    member: Child | None = None
    try:
        retired = system.start_central(env={**NO_REPAIR, "PRECINCT_SESSION_EXPIRY": "1"})
        member = _second_member(system)
        wait_until(lambda: expired.count >= 0, 10, "the broker's $SYS counters")
        before = expired.count
        retired.kill()
        wait_until(lambda: expired.count > before, 15, "the retired member's session to expire")
        # Had its session lived on, half of this stream would wait in it for a month.
        _stream(system, "a1", int(RATE))
        _all_stored(system, "a1")
        assert member.alive()
    finally:
        expired.close()
        if member is not None:
            member.kill()


def test_a_member_restarted_within_its_session_expiry_loses_nothing(system: Deployment) -> None:
    first = system.start_central(env=NO_REPAIR)  # the default expiry, 900 s
    member = _second_member(system)
    try:
        agent = system.start_agent("a1", synthetic=RATE)
        wait_until(lambda: stored_seqs(system.db, "a1") != [], 30, "the stream to flow")
        first.kill()  # its share from now on waits in its broker session
        last_before = agent_last_seq(system.agent_dir("a1"))

        def more() -> bool:
            return agent_last_seq(system.agent_dir("a1")) >= last_before + RATE

        wait_until(more, 60, "a second's readings while the member is away")
        assert agent.stop() == 0
        system.start_central(env=NO_REPAIR)
        _all_stored(system, "a1")
    finally:
        member.kill()
