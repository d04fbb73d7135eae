"""``precinct demo``: an embedded broker, the central service, a station and an escort van.

Everything runs on this machine from embedded defaults; files go to a temporary directory that
is removed on exit. The station's agent drives a simulated file cabinet (a board model on a pty)
and has a synthetic source; the van's agent reads a simulated GPS receiver replaying a drive
toward the centre. The central service, the agents and the device simulators are real child
processes, started in their own sessions so that Ctrl-C reaches the demo alone, which then stops
them in order: agents first (they say goodbye to the broker), then the simulators, the central
service and the broker. A few seconds in, a cabinet door is forced and a band's strap opened, so
that ``GET /api/v1/alarms`` has something to show. Two people can sign in to the pages, a
centre user (the wall) and a station officer, with passwords drawn for this run and printed with
the wall's URL; they go with the demo's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from central.auth import Role, create_token
from central.demo_plan import DEMO_STATION, SCANNER_ROOM, seed_plan
from central.store import connect, migrate, write_transaction
from central.users import create_user
from devices.gps.track import DEMO_ROUTE, synthetic_track
from edge_agent.settings_source import parse_host_port

log = logging.getLogger(__name__)

STATION_AGENT = "station-01-gate"
VAN_AGENT = "van-07"
CABINET_ID = "cabinet-01"
VAN_GPS_ID = "van-07-gps"
VAN_SPEED_MPS = 9.0
WRISTBANDS_ID = "wristbands-01"
DEMO_BANDS = 3
_SIMULATOR_SECONDS = 15.0
_CHILD_STOP_SECONDS = 10.0
_READY_SECONDS = 30.0
# When the demo forces a door and opens a strap: late enough for the agents to be polling.
_INCIDENT_SECONDS = 3.0
_FORCED_SLOT = 5
# The pages' demo users: the duty room's wall, and an officer of the demo's station.
CENTRE_USER = "centre"
STATION_USER = "station"
# The station's geofence on the wall's map, around where the van sets off (metres).
_STATION_FENCE_M = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_embedded_broker(port: int) -> object:
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    return broker


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except OSError:
        return False


async def _start_simulator(
    command: list[str],
    args: list[str],
    env: dict[str, str],
    output: Path,
    ready: str = "/",
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a device simulator; returns it and its first output line starting with ``ready``
    (the cabinet and GPS simulators print the port to open first).

    Its output goes to a file, which nobody has to keep reading (a pipe would fill and block it).
    """
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command,
            *args,
            env=env,
            start_new_session=True,
            stdin=asyncio.subprocess.PIPE,
            stdout=sink,
            stderr=asyncio.subprocess.DEVNULL,
        )
    _named(process, f"{args[0]} simulator")
    deadline = time.monotonic() + _SIMULATOR_SECONDS
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(output.read_text, errors="replace")
        for line in text.splitlines():
            if line.startswith(ready):
                return process, line.strip()
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    await _stop_child(process)
    raise RuntimeError(f"the {args[0]} simulator did not start")


def _write_agent_configs(
    workdir: Path, cabinet_port: str, gps_port: str, bands_port: int
) -> dict[str, Path]:
    bands = ", ".join(
        f'{{ id = "band-{n:03d}", address = "C0:FF:EE:00:00:{n:02X}" }}'
        for n in range(1, DEMO_BANDS + 1)
    )
    station = workdir / f"{STATION_AGENT}.toml"
    station.write_text(
        f'id = "{STATION_AGENT}"\nstation = "station-01"\nsynthetic = 5.0\n'
        f'[[devices]]\nkind = "cabinet"\nid = "{CABINET_ID}"\ntransport = "{cabinet_port}"\n'
        f'state_dir = "{workdir / "cabinets"}"\npoll_interval = 0.5\n'
        f'[[devices]]\nkind = "wristband"\nid = "{WRISTBANDS_ID}"\ntransport = "ble"\n'
        f'backend = "bumble:tcp-client:127.0.0.1:{bands_port}"\nbands = [{bands}]\n'
        f'room = "{SCANNER_ROOM}"\nconnect_timeout = 5.0\ngatt_timeout = 5.0\n'
    )
    van = workdir / f"{VAN_AGENT}.toml"
    van.write_text(
        f'id = "{VAN_AGENT}"\nstation = "station-01"\n'
        f'[[devices]]\nkind = "gps"\nid = "{VAN_GPS_ID}"\ntransport = "{gps_port}"\n'
    )
    return {STATION_AGENT: station, VAN_AGENT: van}


# What each child is, for the log line of one that has to be killed.
_child_names: dict[int, str] = {}


def _named(process: asyncio.subprocess.Process, name: str) -> asyncio.subprocess.Process:
    _child_names[process.pid] = name
    return process


async def _stop_child(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=_CHILD_STOP_SECONDS)
    except TimeoutError:
        name = _child_names.get(process.pid, "?")
        log.warning("child %d (%s) did not stop in time; killing it", process.pid, name)
        process.kill()
        await process.wait()


async def _demo(listen: str, duration: float | None, broker_url: str | None) -> int:
    host, port = parse_host_port(listen, "listen")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    broker = None
    children: list[asyncio.subprocess.Process] = []
    simulators: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory(prefix="precinct-demo-") as tmp:
        workdir = Path(tmp)
        if broker_url is None:
            broker_port = _free_port()
            broker = await _start_embedded_broker(broker_port)
            broker_url = f"mqtt://127.0.0.1:{broker_port}"
        db = workdir / "central.sqlite3"
        migrate(db)
        conn = connect(db)
        try:
            token = create_token(conn, role=Role.ADMIN, name="demo", station=None)
            sign_ins = _create_users(conn)
        finally:
            conn.close()
        env = dict(os.environ)
        # The embedded broker has no shared subscriptions.
        env["PRECINCT_SHARED_SUBSCRIPTION"] = "false" if broker is not None else "true"
        # It speaks MQTT 3.1.1 only.
        env["PRECINCT_MQTT5"] = "false" if broker is not None else "true"
        # Nor does it publish $SYS: no broker metrics rather than a subscription to nothing.
        env["PRECINCT_BROKER_SYS"] = "false" if broker is not None else "true"
        # The centre sits at the end of the van's route: the van's booking arrives by geofence.
        central_env = {
            **env,
            "PRECINCT_CENTRE_LAT": str(DEMO_ROUTE[-1][0]),
            "PRECINCT_CENTRE_LON": str(DEMO_ROUTE[-1][1]),
            "PRECINCT_PLAN_INTERVAL": "10",
            # The wall shows times in the centre's zone, and the station where the van sets off.
            "PRECINCT_TIMEZONE": "Asia/Shanghai",
            "PRECINCT_MAP_STATIONS": (
                f"{DEMO_STATION}:{DEMO_ROUTE[0][0]},{DEMO_ROUTE[0][1]},{_STATION_FENCE_M}"
            ),
        }
        command = [sys.executable, "-m", "edge_agent.command_line"]
        try:
            children.append(
                _named(
                    await asyncio.create_subprocess_exec(
                        *command,
                        "central",
                        "--broker",
                        broker_url,
                        "--db",
                        str(db),
                        "--listen",
                        f"{host}:{port}",
                        "--log-level",
                        "warning",
                        env=central_env,
                        start_new_session=True,
                    ),
                    "central",
                )
            )
            base = f"http://{host}:{port}"
            deadline = time.monotonic() + _READY_SECONDS
            while not await asyncio.to_thread(_ready, f"{base}/readyz"):
                if children[0].returncode is not None or time.monotonic() > deadline:
                    print(
                        "precinct demo: the central service did not become ready", file=sys.stderr
                    )
                    return 1
                await asyncio.sleep(0.2)
            try:
                booked = await asyncio.to_thread(seed_plan, base, token, VAN_GPS_ID)
            except (RuntimeError, OSError) as exc:
                print(f"precinct demo: could not set up rooms and bookings: {exc}", file=sys.stderr)
                return 1
            cabinet, cabinet_port = await _start_simulator(
                command, ["cabinet", "simulate", "--slots", "8"], env, workdir / "cabinet.out"
            )
            simulators.append(cabinet)
            track = workdir / "van-07-track.nmea"
            track.write_bytes(synthetic_track(DEMO_ROUTE, VAN_SPEED_MPS, datetime.now(UTC)))
            gps, gps_port = await _start_simulator(
                command,
                ["gps", "simulate", "--track", str(track), "--loop"],
                env,
                workdir / "gps.out",
            )
            simulators.append(gps)
            bands_port = _free_port()
            bands, _ = await _start_simulator(
                command,
                [
                    "wristband",
                    "simulate",
                    "--bands",
                    str(DEMO_BANDS),
                    "--hci",
                    f"tcp-server:127.0.0.1:{bands_port}",
                    "--strap-open-every",
                    "60",
                    "--reclose-after",
                    "20",
                    "--log-level",
                    "warning",
                ],
                env,
                workdir / "wristbands.out",
                ready="serving",
            )
            simulators.append(bands)
            configs = _write_agent_configs(workdir, cabinet_port, gps_port, bands_port)
            for agent_id, config in configs.items():
                children.append(
                    _named(
                        await asyncio.create_subprocess_exec(
                            *command,
                            "agent",
                            "--config",
                            str(config),
                            "--broker",
                            broker_url,
                            "--data-dir",
                            str(workdir / agent_id),
                            "--log-level",
                            "warning",
                            env=env,
                            start_new_session=True,
                        ),
                        f"agent {agent_id}",
                    )
                )
            print(f"Precinct demo running (broker {broker_url})")
            print(f"  wall:      {base}/wall")
            for name, password in sign_ins.items():
                print(f"  sign in:   {name} / {password}  (demo only, gone when the demo stops)")
            print(f"  API docs:  {base}/docs")
            print(f"  agents:    curl -H 'Authorization: Bearer {token}' {base}/api/v1/agents")
            print(
                f"  events:    curl -H 'Authorization: Bearer {token}' "
                f"'{base}/api/v1/events?limit=5'"
            )
            print(f"  devices:   curl -H 'Authorization: Bearer {token}' {base}/api/v1/devices")
            print(
                f"  unlock:    curl -X POST -H 'Authorization: Bearer {token}' "
                f"{base}/api/v1/cabinets/{CABINET_ID}/slots/3/unlock"
            )
            print(f"  bookings:  {', '.join(booked)}")
            print(
                f"  schedule:  curl -H 'Authorization: Bearer {token}' "
                f"'{base}/api/v1/schedule?date={datetime.now(UTC).date().isoformat()}'"
            )
            print(f"  custody:   curl -H 'Authorization: Bearer {token}' {base}/api/v1/custody")
            print(
                f"  persons:   curl -H 'Authorization: Bearer {token}' "
                f"'{base}/api/v1/persons?in_area=true'"
            )
            print(f"  alarms:    curl -H 'Authorization: Bearer {token}' {base}/api/v1/alarms")
            print(f"  metrics:   {base}/metrics")
            print("Press Ctrl-C to stop." if duration is None else f"Stopping in {duration:g} s.")
            sys.stdout.flush()
            async with asyncio.TaskGroup() as group:
                incidents = group.create_task(_incidents(cabinet, bands), name="demo-incidents")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=duration)
                incidents.cancel()
        finally:
            for child in reversed(children[1:]):
                await _stop_child(child)
            for simulator in simulators:
                await _stop_child(simulator)
            if children:
                await _stop_child(children[0])
            if broker is not None:
                await broker.shutdown()  # type: ignore[attr-defined]
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    failed = [
        c.returncode for c in children + simulators if c.returncode not in (0, -signal.SIGTERM)
    ]
    print("Precinct demo stopped." if not failed else f"Precinct demo stopped; exits {failed}")
    return 0 if not failed else 1


def _create_users(conn: sqlite3.Connection) -> dict[str, str]:
    """The demo's centre and station users, each with a password drawn for this run."""
    passwords = {CENTRE_USER: secrets.token_urlsafe(12), STATION_USER: secrets.token_urlsafe(12)}
    with write_transaction(conn):
        create_user(
            conn, name=CENTRE_USER, role=Role.CENTRE, station=None, password=passwords[CENTRE_USER]
        )
        create_user(
            conn,
            name=STATION_USER,
            role=Role.STATION,
            station=DEMO_STATION,
            password=passwords[STATION_USER],
        )
    return passwords


async def _incidents(
    cabinet: asyncio.subprocess.Process, bands: asyncio.subprocess.Process
) -> None:
    """A forced cabinet door and an opened strap (it closes again by itself): two alarms."""
    await asyncio.sleep(_INCIDENT_SECONDS)
    if cabinet.stdin is not None and cabinet.returncode is None:
        cabinet.stdin.write(f"force {_FORCED_SLOT}\n".encode())
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(cabinet.stdin.drain(), 5)
    if bands.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            bands.send_signal(signal.SIGUSR1)


def run_demo(listen: str, duration: float | None, broker: str | None) -> int:
    return asyncio.run(_demo(listen, duration, broker))
