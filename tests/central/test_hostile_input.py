"""Garbage and hostile payloads are quarantined and counted; ingest and the API go on."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from central.auth import Role
from edge_agent.wire import Envelope, MessageClass, Status
from tests.conftest import Deployment
from tests.support import http_get, metric_value, wait_until

NOW_TEXT = "2026-11-24T01:00:00.000000Z"


def _publisher(deployment: Deployment) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile")
    client.connect("127.0.0.1", deployment.broker.port)
    client.loop_start()
    return client


def test_hostile_payloads_are_quarantined_and_ingest_continues(deployment: Deployment) -> None:
    deployment.start_central()
    token = deployment.token(Role.ADMIN)
    client = _publisher(deployment)
    good = {
        "v": 1,
        "agent": "a1",
        "session": 1,
        "seq": 1,
        "time": NOW_TEXT,
        "device": "d",
        "kind": "k",
        "class": "telemetry",
        "body": {},
    }
    hostile: list[tuple[str, bytes, str]] = [
        ("precinct/v1/a1/telemetry", os.urandom(200), "bad_json"),
        ("precinct/v1/a1/telemetry", b"", "bad_json"),
        (
            "precinct/v1/a1/telemetry",
            json.dumps({**good, "agent": "a2"}).encode(),
            "agent_mismatch",
        ),
        (
            "precinct/v1/a1/telemetry",
            json.dumps({k: v for k, v in good.items() if k != "seq"}).encode(),
            "missing_field",
        ),
        ("precinct/v1/a1/telemetry", b'{"v":1,"pad":"' + b"x" * 1_000_000 + b'"}', "oversized"),
        ("precinct/v1/a1/telemetry", json.dumps({**good, "v": 99}).encode(), "bad_version"),
        ("precinct/v1/a1/event", json.dumps(good).encode(), "class_mismatch"),
        ("precinct/v1/a1/status", b'{"v":1,"agent":"a1","state":"maybe"}', "bad_field"),
        (
            "precinct/v1/a1/ack",
            b'{"v":1,"id":"nope","ok":true,"time":"' + NOW_TEXT.encode() + b'"}',
            "unknown_command",
        ),
    ]
    for topic_name, payload, _ in hostile:
        client.publish(topic_name, payload, qos=1).wait_for_publish(5)
    valid = Envelope(
        "a1", "e1", 1, 1, datetime.now(UTC), "d", "k", MessageClass.TELEMETRY, {"x": 1}
    )
    client.publish("precinct/v1/a1/telemetry", valid.encode(), qos=1).wait_for_publish(5)
    birth = Status("a1", True, 1, 1, datetime.now(UTC), "s1", epoch="e1", first_seq=1)
    client.publish("precinct/v1/a1/status", birth.encode(), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()

    def all_seen() -> bool:
        status, body = http_get(f"{deployment.base}/api/v1/agents/a1", token)
        return status == 200 and body["received"] == 1 and body["online"]

    wait_until(all_seen, 15, "the valid message after the hostile ones")
    _, metrics = http_get(f"{deployment.base}/metrics")
    expected: dict[str, int] = {}
    for _, _, reason in hostile:
        expected[reason] = expected.get(reason, 0) + 1
    for reason, count in expected.items():
        assert (
            metric_value(metrics, "precinct_ingest_rejected_total", f'reason="{reason}"') == count
        ), reason
    conn = sqlite3.connect(deployment.db)
    try:
        rows = conn.execute("SELECT reason, size, length(payload) FROM quarantine").fetchall()
    finally:
        conn.close()
    assert sorted(r[0] for r in rows) == sorted(r for _, _, r in hostile)
    oversized = next(r for r in rows if r[0] == "oversized")
    assert oversized[1] > 1_000_000  # recorded with its real size,
    assert oversized[2] <= 4096  # but not stored whole
    assert http_get(f"{deployment.base}/healthz")[0] == 200
    assert http_get(f"{deployment.base}/readyz")[0] == 200
    assert deployment.central is not None
    assert deployment.central.alive()
