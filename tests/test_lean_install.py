"""An edge agent installed as ``pip install precinct[agent]``: a fresh venv with only that
extra (about 15 s from the local package index), where ``precinct agent`` runs, publishes to a
real Mosquitto and never loads the centre's libraries; the other commands name their extra."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.lean_install import installed_distributions, make_venv
from edge_agent.wire import PREFIX
from tests.support import Mosquitto, wait_until

# What an agent must neither install nor load: the centre's web stack, planner, store library,
# scheduler, the demo's broker and the BLE emulator.
CENTRE_DISTRIBUTIONS = frozenset(
    {
        "fastapi",
        "starlette",
        "uvicorn",
        "sse-starlette",
        "ortools",
        "bumble",
        "amqtt",
        "jinja2",
        "babel",
        "segno",
        "argon2-cffi",
        "sqlite-utils",
        "apscheduler",
    }
)
CENTRE_MODULES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sse_starlette",
    "ortools",
    "bumble",
    "amqtt",
    "jinja2",
    "babel",
    "segno",
    "argon2",
    "sqlite_utils",
    "apscheduler",
    # and the project's packages an agent has no use for
    "central",
    "scheduling",
    "bench",
)
AGENT_DISTRIBUTIONS = frozenset(
    {"aiomqtt", "paho-mqtt", "pyserial", "pyserial-asyncio-fast", "bleak", "pynmeagps", "pymodbus"}
)
# Runs the agent as the console command does and, when it exits, writes what it had loaded.
_AGENT_RECORDING_MODULES = """\
import atexit, sys
from pathlib import Path
atexit.register(lambda: Path(sys.argv[1]).write_text("\\n".join(sorted(sys.modules))))
from edge_agent.command_line import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def lean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(tmp_path_factory.mktemp("lean") / "venv", "agent")


def _precinct(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python.parent / "precinct"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def received(mosquitto: Mosquitto) -> Iterator[list[str]]:
    """Topics of every message the broker carries under the protocol's prefix."""
    topics: list[str] = []
    lock = threading.Lock()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="lean-watcher")

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            topics.append(message.topic)

    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(f"{PREFIX}/#", qos=1)
    client.loop_start()
    try:
        yield topics
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_lean_install_has_the_agents_libraries_and_none_of_the_centres(
    lean_python: Path,
) -> None:
    installed = installed_distributions(lean_python)

    assert installed & CENTRE_DISTRIBUTIONS == set()
    assert installed >= AGENT_DISTRIBUTIONS


def test_every_command_is_listed_and_one_without_its_extra_names_it(lean_python: Path) -> None:
    listed = _precinct(lean_python, "--help")
    central = _precinct(lean_python, "central", "--db", "unused.sqlite3")
    demo = _precinct(lean_python, "demo")
    agent_help = _precinct(lean_python, "agent", "--help")

    assert listed.returncode == 0, listed.stderr
    for command in ("agent", "central", "demo", "bench", "cabinet", "wristband", "gps", "pki"):
        assert f"    {command} " in listed.stdout or f"    {command}\n" in listed.stdout
    assert central.returncode == 2
    assert "needs the 'central' extra" in central.stderr
    assert "pip install 'precinct[central]'" in central.stderr
    assert "fastapi" in central.stderr
    assert demo.returncode == 2
    assert "pip install 'precinct[demo]'" in demo.stderr
    assert "Traceback" not in central.stderr + demo.stderr
    assert agent_help.returncode == 0
    assert "--synthetic RATE" in agent_help.stdout


def test_a_wristband_on_the_bumble_backend_names_the_extra_it_needs(
    lean_python: Path, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'id = "lean-bands"\nbroker = "mqtt://127.0.0.1:1"\n'
        f'data_dir = "{tmp_path / "agent"}"\n'
        '[[devices]]\nkind = "wristband"\nid = "bands"\ntransport = "ble"\n'
        "[devices.options]\n"
        'backend = "bumble:tcp-client:127.0.0.1:9110"\n'
        'bands = [{ id = "b1", address = "F0:00:00:00:00:01" }]\n'
    )

    done = _precinct(lean_python, "agent", "--config", str(config))

    assert done.returncode == 2
    assert "devices[0].backend: the bumble backend needs bumble" in done.stderr
    assert "pip install 'precinct[demo]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("install", ["lean", "full"])
def test_an_agent_publishes_without_loading_the_centres_libraries(
    install: str,
    lean_python: Path,
    mosquitto: Mosquitto,
    received: list[str],
    tmp_path: Path,
) -> None:
    python = lean_python if install == "lean" else Path(sys.executable)
    config = tmp_path / "agent.toml"
    config.write_text(
        f'id = "lean-{install}"\n'
        'station = "s1"\n'
        f'broker = "{mosquitto.url}"\n'
        f'data_dir = "{tmp_path / "agent"}"\n'
        "synthetic = 50.0\n"
        "synthetic_event_every = 10\n"
    )
    modules = tmp_path / "modules.txt"
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [
            str(python),
            "-c",
            _AGENT_RECORDING_MODULES,
            str(modules),
            "agent",
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wanted = {f"{PREFIX}/lean-{install}/{c}" for c in ("status", "telemetry", "event")}
        wait_until(lambda: wanted <= set(received), 30, f"the {install} agent's messages")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        log.close()

    loaded = modules.read_text().split()
    assert "edge_agent.uplink" in loaded  # the list is the running agent's
    assert [m for m in loaded if m.partition(".")[0] in CENTRE_MODULES] == []
