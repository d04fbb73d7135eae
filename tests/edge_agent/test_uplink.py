"""The agent's uplink against a real broker: lanes, and commands executed at most once."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.outbox import Outbox
from edge_agent.synthetic import synthetic_readings
from edge_agent.wire import Command
from tests.conftest import Deployment
from tests.support import Mosquitto, http_get, wait_until

BACKLOG = 20_000


class Recorder:
    """A raw subscriber that keeps every message under an agent's subtree."""

    def __init__(self, broker: Mosquitto, pattern: str) -> None:
        self.messages: list[tuple[float, str, dict[str, object]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(pattern, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload) if message.payload else {}
        with self._lock:
            self.messages.append((time.monotonic(), message.topic, body))

    def snapshot(self) -> list[tuple[float, str, dict[str, object]]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_live_readings_are_not_starved_by_a_backlog(deployment: Deployment) -> None:
    data_dir = deployment.agent_dir("a1")
    data_dir.mkdir(parents=True)
    box = Outbox(data_dir / "outbox.sqlite3", "a1", max_rows=100_000)
    box.put(synthetic_readings(0, BACKLOG, 0, datetime.now(UTC)))
    box.close()
    recorder = Recorder(deployment.broker, "precinct/v1/a1/+")
    try:
        started = time.monotonic()
        deployment.start_agent("a1", synthetic=20, env={"PRECINCT_BACKLOG_RATE": "2000"})

        def live_seen() -> bool:
            return any(
                body.get("session") == 2 and not topic.endswith("/status")
                for _, topic, body in recorder.snapshot()
            )

        wait_until(live_seen, 10, "a live reading")
        data = [
            (t, body)
            for t, topic, body in recorder.snapshot()
            if topic.endswith(("/telemetry", "/event"))
        ]
        first_live = next(t for t, body in data if body["session"] == 2)
        backlog_so_far = sum(1 for _, body in data if body["session"] == 1)
        # Without a live lane the first live reading would wait for the whole backlog (10 s at
        # 2,000/s); the bound leaves room for the agent process to start on a loaded machine.
        assert first_live - started < 6.0
        assert backlog_so_far < BACKLOG / 2  # the backlog is still draining, at a bounded rate
        time.sleep(1.0)
        bodies = [body for _, topic, body in recorder.snapshot() if "/status" not in topic]
        for session in (1, 2):
            seqs = [int(str(b["seq"])) for b in bodies if b["session"] == session]
            assert seqs == sorted(seqs)  # each lane in sequence order
    finally:
        recorder.close()


def _command(name: str, expires_in: float, **args: object) -> Command:
    return Command(
        id=f"c{time.monotonic_ns()}",
        name=name,
        expires=datetime.now(UTC) + timedelta(seconds=expires_in),
        args=dict(args),
    )


def test_commands_execute_once_and_never_after_expiry(deployment: Deployment) -> None:
    recorder = Recorder(deployment.broker, "precinct/v1/a1/ack")
    try:
        deployment.start_agent("a1")
        wait_until(
            lambda: deployment.agent_dir("a1").joinpath("outbox.sqlite3").exists(),
            10,
            "agent start",
        )
        time.sleep(1.0)
        ping = _command("ping", 30, echo="hello")
        expired = _command("ping", -1)
        unknown = _command("self-destruct", 30)
        for command in (ping, ping, expired, unknown):
            recorder.client.publish("precinct/v1/a1/cmd", command.encode(), qos=1)
        wait_until(lambda: len(recorder.snapshot()) >= 4, 10, "four acks")
        acks = [body for _, _, body in recorder.snapshot()]
        by_id: dict[object, list[dict[str, object]]] = {}
        for ack in acks:
            by_id.setdefault(ack["id"], []).append(ack)
        assert [a["ok"] for a in by_id[ping.id]] == [True, True]
        assert by_id[ping.id][0] == by_id[ping.id][1]  # the repeat got the stored answer
        assert by_id[ping.id][0]["result"] == {"pong": True, "echo": "hello"}
        assert by_id[expired.id][0]["error"] == "expired"
        assert by_id[unknown.id][0]["ok"] is False
        metrics = _agent_metrics(deployment)
        assert 'precinct_agent_commands_total{outcome="ok"} 1.0' in metrics
        assert 'precinct_agent_commands_total{outcome="repeated"} 1.0' in metrics
    finally:
        recorder.close()


def _agent_metrics(deployment: Deployment) -> str:
    status, text = http_get(f"http://127.0.0.1:{deployment.metrics_ports['a1']}/metrics")
    assert status == 200
    return str(text)


def test_a_replay_names_the_epoch_and_one_for_another_epoch_is_refused(
    deployment: Deployment,
) -> None:
    recorder = Recorder(deployment.broker, "precinct/v1/a1/+")
    try:
        deployment.start_agent("a1", synthetic=50)

        def births() -> list[dict[str, object]]:
            return [
                body
                for _, topic, body in recorder.snapshot()
                if topic.endswith("/status") and body.get("state") == "online"
            ]

        def data_seqs() -> list[object]:
            return [
                body["seq"]
                for _, topic, body in recorder.snapshot()
                if topic.endswith(("/telemetry", "/event"))
            ]

        wait_until(
            lambda: bool(births()) and len(data_seqs()) >= 5, 15, "the birth and five readings"
        )
        birth = births()[0]
        epoch = birth["epoch"]
        assert isinstance(epoch, str)
        assert len(epoch) == 32
        assert birth["first_seq"] == 1
        assert all(
            body.get("epoch") == epoch
            for _, topic, body in recorder.snapshot()
            if topic.endswith(("/telemetry", "/event"))
        )
        foreign = _command("replay", 30, epoch="0" * 32, first=1, last=3)
        own = _command("replay", 30, epoch=epoch, first=1, last=3)
        for command in (foreign, own):
            recorder.client.publish("precinct/v1/a1/cmd", command.encode(), qos=1)

        def acks() -> dict[object, dict[str, object]]:
            return {
                body["id"]: body for _, topic, body in recorder.snapshot() if topic.endswith("/ack")
            }

        wait_until(lambda: len(acks()) >= 2, 15, "two acks")
        refused, done = acks()[foreign.id], acks()[own.id]
        assert refused["ok"] is False
        assert "epoch" in str(refused["error"])
        assert done["ok"] is True
        assert isinstance(done["result"], dict)
        assert done["result"]["requeued"] == 3
        wait_until(lambda: data_seqs().count(1) >= 2, 15, "seq 1 published again")
        assert data_seqs().count(1) == 2  # once live, once for the one replay of this epoch
    finally:
        recorder.close()
