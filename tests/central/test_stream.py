"""GET /api/v1/stream against a real central process, real agents and a real store file."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from central import feed
from central.auth import Role
from central.store import connect
from devices.gps.track import DEMO_ROUTE, synthetic_track
from edge_agent.wire import parse_time
from tests.central.sse_client import Event, SseClient
from tests.central.test_bookings_api import ROOMS, booking_body
from tests.conftest import Deployment
from tests.support import Child, http_request, wait_until

# Heartbeats every second keep the test client's blocking reads short (see SseClient).
STREAM_ENV = {"PRECINCT_STREAM_PING_INTERVAL": "1"}


@pytest.fixture
def clients() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for client in opened:
        client.close()


def _open(
    deployment: Deployment, clients: list[SseClient], token: str, last: str | None = None
) -> SseClient:
    client = SseClient(f"{deployment.base}/api/v1/stream", token, last)
    clients.append(client)
    return client


def _room(deployment: Deployment, token: str, room_id: str) -> None:
    body = {"id": room_id, "type": "waiting", "capacity": 2, "equipment": []}
    status, answer = http_request("POST", f"{deployment.base}/api/v1/rooms", token, body)
    assert status == 201, answer


def _is_room(room_id: str) -> object:
    return lambda e: e.event == "room_state" and e.json()["body"]["room"] == room_id


def _is_agent(kind: str, agent: str) -> object:
    return lambda e: e.event == kind and e.json()["body"]["agent"] == agent


def test_a_client_sees_a_room_change_and_an_agent_coming_online(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    admin = deployment.token(Role.ADMIN)
    ops = deployment.token(Role.OPS)
    stream = _open(deployment, clients, admin)
    health = _open(deployment, clients, ops)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    hello = stream.next()
    assert hello is not None
    assert hello.event == "hello"
    assert health.next() is not None

    _room(deployment, admin, "W-1")
    event, _ = stream.until(_is_room("W-1"))
    data = event.json()
    assert data["body"] == {"room": "W-1", "type": "waiting", "before": None, "after": "in_service"}
    assert event.id == str(data["id"])
    assert int(event.id) > int(hello.id or 0)
    latency = event.received - parse_time(data["at"], "at").timestamp()

    deployment.start_agent("gate-1", station="s1", synthetic=2)
    online, _ = stream.until(_is_agent("agent_online", "gate-1"))
    assert online.json()["station"] == "s1"
    # Ops gets the health events and nothing that names rooms, persons or cases.
    _, seen = health.until(_is_agent("agent_online", "gate-1"))
    assert all(e.event in {"agent_online", "device_online"} for e in seen), seen
    print(f"room change committed -> event delivered: {latency * 1000:.0f} ms")


def test_a_client_resumed_with_last_event_id_misses_nothing(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    first = _open(deployment, clients, centre)
    assert first.next() is not None
    _room(deployment, centre, "W-1")
    got, _ = first.until(_is_room("W-1"))
    first.close()
    # While it is away: more changes.
    for number in range(2, 7):
        _room(deployment, centre, f"W-{number}")
    again = _open(deployment, clients, centre, got.id)
    _, seen = again.until(_is_room("W-6"))
    rooms = [e.json()["body"]["room"] for e in seen if e.event == "room_state"]
    assert rooms == [f"W-{n}" for n in range(2, 7)]
    ids = [int(e.id or 0) for e in seen if e.event == "room_state"]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert ids[0] > int(got.id or 0)
    assert seen[0].event == "hello"
    assert seen[0].id == got.id


def test_a_station_token_sees_only_its_own_stations_events(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    admin = deployment.token(Role.ADMIN)
    north = deployment.token(Role.STATION, "s-north")
    everything = _open(deployment, clients, admin)
    own = _open(deployment, clients, north)
    assert everything.next() is not None
    assert own.next() is not None
    _room(deployment, admin, "W-1")  # centre-wide: not a station's
    deployment.start_agent("gate-south", station="s-south", synthetic=2)
    everything.until(_is_agent("agent_online", "gate-south"))
    deployment.start_agent("gate-north", station="s-north", synthetic=2)
    everything.until(_is_agent("agent_online", "gate-north"))
    # The north agent goes away after everything about the south one: the station's stream
    # reaching it has passed every south event.
    assert deployment.agents["gate-north"].stop() == 0
    _, seen = own.until(_is_agent("agent_offline", "gate-north"))
    assert seen, "no events"
    assert {e.json()["station"] for e in seen} == {"s-north"}, seen
    assert any(_is_agent("agent_online", "gate-north")(e) for e in seen)  # type: ignore[operator]


def test_a_client_too_far_behind_is_told_to_resync(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    stream = _open(deployment, clients, centre)
    assert stream.next() is not None
    _room(deployment, centre, "W-1")
    _room(deployment, centre, "W-2")
    w1, _ = stream.until(_is_room("W-1"))
    stream.until(_is_room("W-2"))
    stream.close()
    conn = connect(deployment.db)
    try:
        assert feed.purge(conn, timedelta(0)) >= 2  # what the retention job does, at once
    finally:
        conn.close()
    _room(deployment, centre, "W-3")
    behind = _open(deployment, clients, centre, w1.id)
    resync = behind.next()
    assert resync is not None
    assert resync.event == "resync", resync
    # It goes on from the resync's id: what comes after it arrives.
    assert int(resync.id or 0) > int(w1.id or 0)
    _room(deployment, centre, "W-4")
    _, seen = behind.until(_is_room("W-4"))
    assert [e.event for e in seen] == ["room_state"]
    # Up to date but with nothing kept is not behind.
    current = _open(deployment, clients, centre, seen[-1].id)
    first = current.next()
    assert first is not None
    assert first.event == "hello"


def test_a_bad_last_event_id_is_refused(deployment: Deployment) -> None:
    deployment.start_central(STREAM_ENV)
    client = SseClient(f"{deployment.base}/api/v1/stream", deployment.token(Role.ADMIN), "x1")
    try:
        assert client.status == 422
    finally:
        client.close()


def test_one_token_holds_a_bounded_number_of_streams(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central({**STREAM_ENV, "PRECINCT_STREAM_MAX_PER_TOKEN": "2"})
    token = deployment.token(Role.CENTRE)
    held = [_open(deployment, clients, token) for _ in range(2)]
    assert [c.status for c in held] == [200, 200]
    refused = _open(deployment, clients, token)
    assert refused.status == 429
    assert "retry-after" in {k.lower() for k in refused.headers}
    # Another token is not held back by this one.
    assert _open(deployment, clients, deployment.token(Role.CENTRE, name="other")).status == 200
    held[0].close()

    def slot_back() -> bool:
        client = _open(deployment, clients, token)
        if client.status == 200:
            return True
        client.close()
        return False

    wait_until(slot_back, 20, "the closed stream's slot given back")


def test_shutdown_does_not_wait_for_open_streams(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    central = deployment.start_central(STREAM_ENV)
    token = deployment.token(Role.ADMIN)
    streams = [_open(deployment, clients, token) for _ in range(3)]
    assert all(s.next() is not None for s in streams)
    started = time.monotonic()
    central.process.terminate()
    code = central.process.wait(30)
    took = time.monotonic() - started
    # uvicorn re-raises the SIGTERM it handled once it has shut down.
    assert code in (0, -15), central.output()[-3000:]
    log = central.output()
    assert "Application shutdown complete" in log
    assert "ASGI callable returned without completing response" not in log, log[-3000:]
    assert took < 5, f"shutdown took {took:.1f} s with open streams"
    for client in streams:
        ended: list[Event | None] = []
        while not client.ended:
            ended.append(client.next(5))
    print(f"SIGTERM with 3 open streams -> exited in {took:.2f} s")


def test_plan_changes_reach_their_stations_stream(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    north = _open(deployment, clients, deployment.token(Role.STATION, "s-north"))
    south = _open(deployment, clients, deployment.token(Role.STATION, "s-south"))
    ops = _open(deployment, clients, deployment.token(Role.OPS))
    for client in (north, south, ops):
        assert client.next() is not None
    for room in ROOMS:
        assert http_request("POST", f"{deployment.base}/api/v1/rooms", centre, room)[0] == 201
    arrival = datetime.now(UTC) + timedelta(hours=2)
    status, booking = http_request(
        "POST",
        f"{deployment.base}/api/v1/bookings",
        centre,
        booking_body(arrival, station="s-north"),
    )
    assert status == 201, booking
    # The room taken out of order moves the persons planned into it: a plan event, by the
    # trigger on plan_events, in the same transaction.
    room = booking["assignments"][0]["room"]
    status, answer = http_request(
        "PATCH",
        f"{deployment.base}/api/v1/rooms/{room}",
        centre,
        {"state": "out_of_order", "reason": "broken lock"},
    )
    assert status == 200, answer
    event, seen = north.until(lambda e: e.json()["body"].get("booking") == booking["id"])
    assert event.event in {"plan_changed", "unassigned"}, event
    assert event.json()["station"] == "s-north"
    assert {e.event for e in seen} <= {"plan_changed", "unassigned", "custody_level"}
    # The other station's stream and ops get none of it: the next event each sees is a later
    # health event of their own scope.
    deployment.start_agent("gate-south", station="s-south", synthetic=2)
    _, other = south.until(_is_agent("agent_online", "gate-south"))
    assert all(e.json()["station"] == "s-south" for e in other), other
    _, health = ops.until(_is_agent("agent_online", "gate-south"))
    assert all(e.event in {"agent_online", "device_online"} for e in health), health


def test_commit_to_delivery_latency(deployment: Deployment, clients: list[SseClient]) -> None:
    """Figures for the note: a room change's commit (its feed time, taken in the transaction)
    to the event read by a client, over 40 changes, one stream."""
    deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    stream = _open(deployment, clients, centre)
    assert stream.next() is not None
    _room(deployment, centre, "W-1")
    stream.until(_is_room("W-1"))
    lags = []
    for number in range(40):
        state = "out_of_order" if number % 2 == 0 else "in_service"
        status, answer = http_request(
            "PATCH",
            f"{deployment.base}/api/v1/rooms/W-1",
            centre,
            {"state": state, "reason": "test"},
        )
        assert status == 200, answer
        event, _ = stream.until(
            lambda e, s=state: e.event == "room_state" and e.json()["body"]["after"] == s
        )
        lags.append(event.received - parse_time(event.json()["at"], "at").timestamp())
    lags.sort()
    p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"commit -> delivered over {len(lags)} changes: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
    )
    # The poll interval (0.05 s) bounds it on an idle machine; generous for a loaded one.
    assert p50 < 1.0


def test_the_feed_outlives_a_killed_central(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    central = deployment.start_central(STREAM_ENV)
    centre = deployment.token(Role.CENTRE)
    stream = _open(deployment, clients, centre)
    assert stream.next() is not None
    _room(deployment, centre, "W-1")
    got, _ = stream.until(_is_room("W-1"))
    central.kill()  # SIGKILL mid-stream
    assert stream.next(10) is None  # the answer just ends; the client resumes elsewhere
    deployment.start_central(STREAM_ENV)
    _room(deployment, centre, "W-2")
    again = _open(deployment, clients, centre, got.id)
    _, seen = again.until(_is_room("W-2"))
    assert [e.event for e in seen] == ["hello", "room_state"]
    assert int(seen[1].id or 0) == int(got.id or 0) + 1


def test_an_idle_stream_gets_heartbeats(deployment: Deployment, clients: list[SseClient]) -> None:
    deployment.start_central(STREAM_ENV)
    stream = _open(deployment, clients, deployment.token(Role.ADMIN))
    assert stream.next() is not None
    with pytest.raises(TimeoutError):
        stream.next(3.5)  # nothing happens: only heartbeats, one a second
    assert stream.pings >= 2


def gps_receiver(deployment: Deployment, period: float) -> tuple[Child, str]:
    """A GPS receiver simulator on a pty, replaying a van's drive with a fix every ``period``
    seconds; returns it and the pty's path."""
    track = deployment.root / "track.nmea"
    track.write_bytes(synthetic_track(DEMO_ROUTE, 10.0, datetime(2026, 1, 1, tzinfo=UTC), period))
    log = deployment.root / "gps-simulator.log"
    simulator = Child(["gps", "simulate", "--track", str(track), "--loop"], log)

    def pty_path() -> str | None:
        lines = log.read_text(errors="replace").splitlines()
        return lines[0].strip() if lines and lines[0].startswith("/dev/") else None

    wait_until(lambda: pty_path() is not None, 20, "the simulator's pty")
    return simulator, pty_path() or ""


def test_van_positions_reach_the_vans_station_at_most_one_a_second(
    deployment: Deployment, clients: list[SseClient]
) -> None:
    deployment.start_central(STREAM_ENV)
    own = _open(deployment, clients, deployment.token(Role.STATION, "s-vans"))
    other = _open(deployment, clients, deployment.token(Role.STATION, "s-other"))
    ops = _open(deployment, clients, deployment.token(Role.OPS))
    for client in (own, other, ops):
        assert client.next() is not None
    # Five fixes a second, none filtered out by the driver: the feed thins them.
    simulator, pty = gps_receiver(deployment, period=0.2)
    try:
        config = deployment.root / "van.toml"
        config.write_text(
            f'[[devices]]\nkind = "gps"\nid = "van-9-gps"\ntransport = "{pty}"\n'
            "min_period = false\n"
        )
        deployment.start_agent("van-9", station="s-vans", extra=["--config", str(config)])
        positions: list[Event] = []
        while len(positions) < 4:
            event, _ = own.until(lambda e: e.event == "van_position")
            positions.append(event)
        bodies = [e.json()["body"] for e in positions]
        assert {(b["agent"], b["device"]) for b in bodies} == {("van-9", "van-9-gps")}
        assert all(e.json()["station"] == "s-vans" for e in positions)
        assert all(
            31.0 < b["lat"] < 31.3
            and 121.4 < b["lon"] < 121.5
            and abs(b["speed_mps"] - 10.0) < 0.01
            for b in bodies
        ), bodies
        seconds = [math.floor(parse_time(b["time"], "time").timestamp()) for b in bodies]
        assert seconds == sorted(set(seconds)), f"two positions in one second: {bodies}"
        # The store holds every fix; the feed about one a second of them.
        conn = connect(deployment.db, readonly=True)
        try:
            (fixes,) = conn.execute(
                "SELECT count(*) FROM events WHERE agent = 'van-9' AND kind = 'fix' AND time <= ?",
                (bodies[-1]["time"],),
            ).fetchone()
        finally:
            conn.close()
        assert fixes >= 2 * len(bodies), (fixes, bodies)
        print(
            f"{fixes} fixes stored, {len(bodies)} positions streamed; reading -> delivered "
            + ", ".join(
                f"{(e.received - parse_time(b['time'], 'time').timestamp()) * 1000:.0f} ms"
                for e, b in zip(positions, bodies, strict=True)
            )
        )
        # Neither another station nor ops sees where the van is: the next event each gets is
        # the van agent going away (ops: a health event; the other station: its own agent's).
        deployment.start_agent("gate-other", station="s-other", synthetic=2)
        _, seen = other.until(_is_agent("agent_online", "gate-other"))
        assert all(e.event != "van_position" for e in seen), seen
        assert deployment.agents["van-9"].stop() == 0
        _, health = ops.until(_is_agent("agent_offline", "van-9"))
        assert all(e.event != "van_position" for e in health), health
    finally:
        simulator.kill()
