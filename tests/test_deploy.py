"""The shipped broker configuration and ACL, on a real Mosquitto."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.settings import CentralSettings
from tests.shipped_broker import make_password_file, shipped_config
from tests.support import ROOT, free_port, port_open, wait_until

USERS = {"precinct-central": "central-secret", "a1": "a1-secret", "a2": "a2-secret"}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd missing: the test command installs mosquitto")
    port = free_port()
    passwd = tmp_path / "precinct.passwd"
    make_password_file(passwd, USERS)
    # The shipped config also has the TLS listener, which needs a CA, a broker certificate and
    # a CRL to start.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.command_line",
            "pki",
            "init",
            "--dir",
            str(tmp_path / "pki"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    conf = shipped_config(tmp_path, port, free_port(), passwd, tmp_path / "pki")
    (tmp_path / "m.conf").write_text(conf)
    process = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "m.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(port), 10, "the secured broker")
    yield port, process
    process.kill()
    process.wait(10)


def _client(port: int, user: str, password: str, received: list[str] | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
    client.username_pw_set(user, password)
    lock = threading.Lock()
    if received is not None:

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            with lock:
                received.append(message.topic)

        client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_until(client.is_connected, 5, f"{user} to be connected")
    return client


def test_shipped_acl_confines_each_agent_to_its_own_subtree(
    secured_broker: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, _ = secured_broker
    seen: list[str] = []
    central = _client(port, "precinct-central", USERS["precinct-central"], seen)
    central.subscribe([("precinct/v1/+/telemetry", 1), ("precinct/v1/+/event", 1)])
    a2_seen: list[str] = []
    a2 = _client(port, "a2", USERS["a2"], a2_seen)
    a2.subscribe([("precinct/v1/a1/cmd", 1), ("precinct/v1/a2/cmd", 1)])
    time.sleep(0.3)
    a1 = _client(port, "a1", USERS["a1"])
    a1.publish("precinct/v1/a1/telemetry", b"{}", qos=1).wait_for_publish(5)
    # Denied: another agent's subtree, and commands (which only the centre sends). Mosquitto may
    # drop the connection after a denial, so each attempt gets a client of its own.
    for denied in ("precinct/v1/a2/telemetry", "precinct/v1/a1/cmd"):
        intruder = _client(port, "a1", USERS["a1"])
        intruder.publish(denied, b"{}", qos=1)
        time.sleep(0.2)
        intruder.disconnect()
        intruder.loop_stop()
    central.publish("precinct/v1/a2/cmd", b"{}", qos=1).wait_for_publish(5)
    central.publish("precinct/v1/a1/cmd", b"{}", qos=1).wait_for_publish(5)
    wait_until(lambda: "precinct/v1/a1/telemetry" in seen and bool(a2_seen), 5, "deliveries")
    time.sleep(0.3)
    assert seen == ["precinct/v1/a1/telemetry"]
    assert a2_seen == ["precinct/v1/a2/cmd"]  # its own commands only, not a1's
    for client in (central, a1, a2):
        client.disconnect()
        client.loop_stop()


def test_shipped_config_refuses_anonymous_and_wrong_passwords(
    secured_broker: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, _ = secured_broker
    for user, password in ((None, None), ("a1", "wrong")):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
        if user is not None:
            client.username_pw_set(user, password)
        assert client.connect("127.0.0.1", port) == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + 5
        # Loop until the broker answers the CONNECT: a refusal closes the connection.
        while client.loop(timeout=0.5) == mqtt.MQTT_ERR_SUCCESS and time.monotonic() < deadline:
            assert not client.is_connected()
        assert not client.is_connected()


def test_the_example_central_settings_list_every_key() -> None:
    """deploy/central.toml is where an operator learns the settings: it names each one."""
    shipped = tomllib.loads((ROOT / "deploy" / "central.toml").read_text())
    keys = {field.name for field in dataclasses.fields(CentralSettings)}
    assert sorted(keys - set(shipped)) == []
    assert sorted(set(shipped) - keys) == []
