"""The centre's fleet metrics from a real store: what ingest committed (births, wills, health
reports, device availability, gaps) and what the planning service ran, read by the collector."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from central.broker_sys import BrokerSysState
from central.fleet_state import BrokerCollector, FleetCollector, read_fleet
from central.ingest_writer import IngestWriter
from central.store import connect, migrate
from edge_agent.wire import (
    AVAILABILITY_KIND,
    Envelope,
    Health,
    HealthReport,
    MessageClass,
    Status,
)
from monitoring.fleet_metrics import BROKER_METRICS, FLEET_METRICS
from monitoring.planning_metrics import PlanningMetrics
from tests.central.test_lifecycle_service import ROOMS, T0, code_of, request
from tests.central.test_planning_service import service_with_rooms
from tests.support import metric_value

NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
EPOCH = "a" * 32
NEW_EPOCH = "b" * 32
CABINET = 'agent="a1",class="cabinet",device="cab-1"'


def sample(text: str, name: str, labels: str = "") -> float:
    """The sample's value; fails when the series is absent (metric_value reads that as 0)."""
    wanted = f"{name}{{{labels}}} " if labels else f"{name} "
    assert any(line.startswith(wanted) for line in text.splitlines()), f"no {wanted}in {text}"
    return metric_value(text, name, labels)


def _health(report: int, depth: int, *, expires: datetime | None = None) -> Health:
    return Health(report, NOW + timedelta(seconds=report), depth, depth / 10, False, expires)


def _birth(agent: str, epoch: str, session: int, health: Health | None) -> tuple[str, bytes]:
    status = Status(agent, True, session, 1, NOW, "s1", epoch=epoch, first_seq=1, health=health)
    return f"precinct/v1/{agent}/status", status.encode()


def _will(agent: str, epoch: str, session: int) -> tuple[str, bytes]:
    status = Status(agent, False, session, 1, NOW, "s1", "lost", epoch=epoch)
    return f"precinct/v1/{agent}/status", status.encode()


def _report(agent: str, epoch: str, session: int, health: Health) -> tuple[str, bytes]:
    return f"precinct/v1/{agent}/health", HealthReport(agent, epoch, session, health).encode()


def _reading(
    agent: str, seq: int, device: str, kind: str, body: dict[str, object]
) -> tuple[str, bytes]:
    envelope = Envelope(agent, EPOCH, 1, seq, NOW, device, kind, MessageClass.EVENT, body)
    return f"precinct/v1/{agent}/event", envelope.encode()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "central.sqlite3"
    migrate(db)
    return db


def _write(db: Path, *messages: tuple[str, bytes]) -> dict[str, int]:
    conn = connect(db)
    try:
        return IngestWriter(conn).write(list(messages)).rejected
    finally:
        conn.close()


def _scrape(db: Path, broker: BrokerSysState | None = None) -> str:
    registry = CollectorRegistry()
    registry.register(FleetCollector(db))
    registry.register(BrokerCollector(broker or BrokerSysState()))
    return generate_latest(registry).decode()


def _fleet(db: Path) -> sqlite3.Connection:
    return connect(db, readonly=True)


def test_every_fleet_and_broker_family_is_named_in_an_empty_registry(tmp_path: Path) -> None:
    # A store that does not exist cannot be read: the families are still described and exposed.
    text = _scrape(tmp_path / "missing" / "central.sqlite3")
    for spec in (*FLEET_METRICS, *BROKER_METRICS):
        exposed = f"{spec.name}_total" if spec.type == "counter" else spec.name
        assert f"# TYPE {exposed} {spec.type}" in text
        assert f"# HELP {exposed} {spec.help}" in text
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == []


def test_agents_are_up_until_their_will_and_unknown_agents_have_no_series(store: Path) -> None:
    assert _write(store, _birth("a1", EPOCH, 1, _health(1, 0)), _birth("a2", EPOCH, 1, None)) == {}
    text = _scrape(store)
    assert sample(text, "precinct_agent_up", 'agent="a1",station="s1"') == 1
    assert sample(text, "precinct_agent_up", 'agent="a2",station="s1"') == 1
    assert 'agent="never"' not in text
    last_seen = sample(text, "precinct_agent_last_seen_timestamp_seconds", 'agent="a1"')
    assert abs(last_seen - datetime.now(UTC).timestamp()) < 60
    _write(store, _will("a1", EPOCH, 1))
    text = _scrape(store)
    assert sample(text, "precinct_agent_up", 'agent="a1",station="s1"') == 0
    assert sample(text, "precinct_agent_up", 'agent="a2",station="s1"') == 1
    # An agent without health reports (a previous release) has no reported series.
    assert 'precinct_agent_reported_outbox_depth{agent="a2"}' not in text


def test_missing_messages_are_those_of_the_current_epoch(store: Path) -> None:
    body = {"online": True, "class": "cabinet"}
    _write(
        store,
        _birth("a1", EPOCH, 1, None),
        _reading("a1", 1, "cab-1", AVAILABILITY_KIND, body),
        _reading("a1", 5, "cab-1", "door", {}),
    )
    text = _scrape(store)
    assert sample(text, "precinct_agent_missing_messages", 'agent="a1"') == 3


def test_devices_with_an_availability_are_up_or_down(store: Path) -> None:
    _write(
        store,
        _birth("a1", EPOCH, 1, None),
        _reading("a1", 1, "cab-1", AVAILABILITY_KIND, {"online": True, "class": "cabinet"}),
        _reading("a1", 2, "gps-1", AVAILABILITY_KIND, {"online": False, "class": "gps"}),
        # A band heard by a scanner is a device without availability of its own: no series.
        _reading("a1", 3, "band-0417", "heart_rate", {"bpm": 70}),
    )
    text = _scrape(store)
    assert sample(text, "precinct_device_up", 'agent="a1",class="cabinet",device="cab-1"') == 1
    assert sample(text, "precinct_device_up", 'agent="a1",class="gps",device="gps-1"') == 0
    assert 'device="band-0417"' not in text
    _write(
        store,
        _reading("a1", 4, "cab-1", AVAILABILITY_KIND, {"online": False, "class": "cabinet"}),
    )
    text = _scrape(store)
    assert sample(text, "precinct_device_up", 'agent="a1",class="cabinet",device="cab-1"') == 0


def test_the_newest_health_report_is_kept_whatever_order_they_arrive_in(store: Path) -> None:
    expires = datetime(2027, 3, 1, tzinfo=UTC)
    _write(store, _birth("a1", EPOCH, 2, _health(1, 500, expires=expires)))
    _write(store, _report("a1", EPOCH, 2, _health(3, 40)))
    # Late: report 2 of session 2, and a report of the session before.
    _write(store, _report("a1", EPOCH, 2, _health(2, 9999)), _report("a1", EPOCH, 1, _health(9, 1)))
    text = _scrape(store)
    assert sample(text, "precinct_agent_reported_outbox_depth", 'agent="a1"') == 40
    assert sample(text, "precinct_agent_reported_outbox_oldest_age_seconds", 'agent="a1"') == 4
    assert sample(text, "precinct_agent_reported_disk_full", 'agent="a1"') == 0
    taken = sample(text, "precinct_agent_health_timestamp_seconds", 'agent="a1"')
    assert taken == (NOW + timedelta(seconds=3)).timestamp()
    # Report 3 has no certificate: the last report says what is true now.
    assert "precinct_agent_reported_certificate_expiry_timestamp_seconds{" not in text
    # A new session starts its reports from 1 again, and wins.
    _write(store, _birth("a1", EPOCH, 3, _health(1, 7, expires=expires)))
    text = _scrape(store)
    assert sample(text, "precinct_agent_reported_outbox_depth", 'agent="a1"') == 7
    assert (
        sample(text, "precinct_agent_reported_certificate_expiry_timestamp_seconds", 'agent="a1"')
        == expires.timestamp()
    )


def test_a_report_of_an_epoch_that_is_not_current_is_not_kept(store: Path) -> None:
    _write(store, _birth("a1", NEW_EPOCH, 1, _health(1, 5)))
    # The old disk's last words, delivered late; then the new epoch's own report.
    _write(store, _report("a1", EPOCH, 9, _health(50, 123)))
    text = _scrape(store)
    assert sample(text, "precinct_agent_reported_outbox_depth", 'agent="a1"') == 5
    _write(store, _report("a1", NEW_EPOCH, 1, _health(2, 6)))
    assert sample(_scrape(store), "precinct_agent_reported_outbox_depth", 'agent="a1"') == 6


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "bad_json"),
        (b"[]", "bad_json"),
        (b'{"v": 1, "agent": "a1"}', "bad_field"),
        (b'{"v": 1, "agent": "a2", "session": 1}', "agent_mismatch"),
        (b"x" * 70_000, "oversized"),
    ],
)
def test_a_hostile_health_report_is_quarantined_and_counted(
    store: Path, payload: bytes, reason: str
) -> None:
    _write(store, _birth("a1", EPOCH, 1, _health(1, 5)))
    good = json.loads(HealthReport("a1", EPOCH, 1, _health(2, 8)).encode())
    hostile = [
        ("precinct/v1/a1/health", payload),
        ("precinct/v1/a1/health", json.dumps(good | {"outbox_depth": -5}).encode()),
        ("precinct/v1/a1/health", json.dumps(good | {"disk_full": "no"}).encode()),
    ]
    rejected = _write(store, *hostile, ("precinct/v1/a1/health", json.dumps(good).encode()))
    assert rejected == {reason: 1, "bad_field": 2} if reason != "bad_field" else {"bad_field": 3}
    conn = _fleet(store)
    try:
        quarantined = conn.execute(
            "SELECT count(*) FROM quarantine WHERE topic = 'precinct/v1/a1/health'"
        ).fetchone()[0]
        snapshot = read_fleet(conn)
    finally:
        conn.close()
    assert quarantined == 3
    (agent,) = snapshot.agents
    assert agent.health is not None
    assert agent.health.outbox_depth == 8  # the good report of the same batch


def test_booking_answers_are_counted_and_running_sessions_are_rooms_in_use(tmp_path: Path) -> None:
    db = tmp_path / "central.sqlite3"
    registry = CollectorRegistry()
    service = service_with_rooms(db, ROOMS)
    service.metrics = PlanningMetrics.create(registry)
    placed = service.create(request("c1", False).to_record(), "s1", "test", T0)
    # H6: one officer cannot escort two persons; refused unless it asks for the waitlist.
    short = request("c2", False).model_copy(update={"officers": 1})
    with pytest.raises(Exception, match="H6"):
        service.create(short.model_copy(update={"waitlist": False}).to_record(), "s1", "t", T0)
    service.create(short.to_record(), "s1", "test", T0)
    text = generate_latest(registry).decode()
    for outcome in ("placed", "waitlisted", "refused"):
        assert sample(text, "precinct_booking_answers_total", f'outcome="{outcome}"') == 1

    def rooms_in_use() -> dict[str, int]:
        conn = _fleet(db)
        try:
            return dict(read_fleet(conn).rooms_in_use or {})
        finally:
            conn.close()

    assert rooms_in_use() == {"interrogation": 0, "inquiry": 0, "waiting": 0}
    now = T0 + timedelta(minutes=30)
    service.arrived(placed, now)
    service.verified(placed, code_of(db, placed), now)
    service.entered(placed, now)
    service.session_started(placed, "S", now + timedelta(minutes=5))
    running = rooms_in_use()
    assert running["interrogation"] + running["inquiry"] == 1
    assert running["waiting"] == 0
    service.session_ended(placed, "S", now + timedelta(minutes=50))
    assert rooms_in_use() == {"interrogation": 0, "inquiry": 0, "waiting": 0}
