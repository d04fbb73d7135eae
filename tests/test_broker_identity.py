"""Every agent proves its id at the broker: the shipped TLS listener with certificates made by
``precinct pki``, a real Mosquitto, a real central and real agents."""

from __future__ import annotations

import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion

from central.auth import Role
from edge_agent.outbox import Outbox, Reading
from edge_agent.wire import MessageClass
from tests.conftest import Deployment
from tests.shipped_broker import ShippedBroker
from tests.support import (
    agent_last_seq,
    http_get,
    metric_value,
    run_precinct,
    stored_seqs,
    wait_until,
)

# MQTT 3.1.1 CONNECT: clean session, keepalive 60, empty client id (the broker assigns one).
_CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 60, 0, 0])
_CONNACK_ACCEPTED = bytes([0x20, 2, 0, 0])


def precinct_pki(*args: str) -> str:
    result = run_precinct("pki", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class Identities:
    """A CA directory made by ``precinct pki`` and the broker that trusts it."""

    pki: Path
    broker: ShippedBroker
    system: Deployment

    def issue(self, name: str, *extra: str) -> None:
        precinct_pki("issue", "--dir", str(self.pki), name, *extra)

    def revoke(self, name: str) -> None:
        precinct_pki("revoke", "--dir", str(self.pki), name)

    def cert(self, name: str) -> Path:
        return self.pki / "clients" / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / "clients" / f"{name}.key"

    def env(self, name: str | None) -> dict[str, str]:
        env = {"PRECINCT_TLS_CA": str(self.pki / "ca.crt")}
        if name is not None:
            env |= {
                "PRECINCT_TLS_CERT": str(self.cert(name)),
                "PRECINCT_TLS_KEY": str(self.key(name)),
            }
        return env

    def start(self) -> None:
        """The broker (it reads the CRL now), then the central with its own certificate."""
        self.broker.start()
        self.system.start_central(env=self.env("precinct-central"))

    def agent_metrics(self, agent_id: str) -> str:
        status, text = http_get(f"http://127.0.0.1:{self.system.metrics_ports[agent_id]}/metrics")
        return text if status == 200 and isinstance(text, str) else ""

    def mqtt_connect(self, name: str) -> bool:
        """Whether the broker accepts an MQTT connection made with ``name``'s certificate."""
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(self.cert(name), self.key(name))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.broker.tls_port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(_CONNECT)
                return tls.recv(4) == _CONNACK_ACCEPTED
        except (ssl.SSLError, OSError):
            return False


@pytest.fixture
def identities(tmp_path: Path) -> Iterator[Identities]:
    pki = tmp_path / "pki"
    precinct_pki("init", "--dir", str(pki))
    broker = ShippedBroker(tmp_path / "broker", pki)
    system = Deployment(tmp_path, broker)
    made = Identities(pki, broker, system)
    made.issue("precinct-central")
    yield made
    system.close()
    broker.kill()


def _refused(identities: Identities, agent_id: str, broker_says: str, agent_sees: str) -> None:
    """The agent runs and retries, the broker refuses it, the centre never hears of it."""
    system = identities.system
    agent = system.agents[agent_id]
    before = identities.broker.log_text().count(broker_says)

    def refused_twice() -> bool:
        assert agent.alive(), agent.output()
        return identities.broker.log_text().count(broker_says) >= before + 2

    wait_until(refused_twice, 30, f"the broker to refuse {agent_id} twice ({broker_says})")
    wait_until(lambda: identities.agent_metrics(agent_id) != "", 10, "the agent's metrics")
    metrics = identities.agent_metrics(agent_id)
    assert metric_value(metrics, "precinct_agent_connected") == 0
    assert metric_value(metrics, "precinct_agent_reconnects_total") >= 1
    assert f"u'{agent_id}'" not in identities.broker.log_text()  # never a session
    token = system.token(Role.ADMIN)
    assert http_get(f"{system.base}/api/v1/agents/{agent_id}", token)[0] == 404
    assert stored_seqs(system.db, agent_id) == []
    assert agent_last_seq(system.agent_dir(agent_id)) > 0  # it kept what it could not send
    assert agent_sees in agent.output()  # the TLS alert the broker sent names the reason


def test_an_agent_with_its_own_certificate_delivers_through_the_tls_listener(
    identities: Identities,
) -> None:
    identities.issue("a1", "--days", "90")
    identities.start()
    system = identities.system
    token = system.token(Role.ADMIN)
    system.start_agent(
        "a1",
        synthetic=100,
        env={**identities.env("a1"), "PRECINCT_TLS_EXPIRY_WARNING_DAYS": "120"},
    )

    def delivering() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/a1", token)
        return status == 200 and body["received"] >= 100

    wait_until(delivering, 30, "readings from a1 through TLS")
    # The broker knows the agent by its certificate's name: no password was given.
    assert "u'a1'" in identities.broker.log_text()
    assert "u'precinct-central'" in identities.broker.log_text()
    expiry = x509.load_pem_x509_certificate(identities.cert("a1").read_bytes()).not_valid_after_utc
    metrics = identities.agent_metrics("a1")
    assert metric_value(metrics, "precinct_agent_connected") == 1
    assert (
        metric_value(metrics, "precinct_agent_certificate_expiry_timestamp_seconds")
        == expiry.timestamp()
    )
    assert "expires in 90.0 days" in system.agents["a1"].output()

    # Through the shipped ACL: the agent's health reaches the centre, and the centre reads $SYS.
    def central_metric(name: str, labels: str = "") -> float | None:
        status, text = http_get(f"{system.base}/metrics")
        wanted = f"{name}{{{labels}}} " if labels else f"{name} "
        if status != 200 or wanted not in text:
            return None
        return metric_value(text, name, labels)

    expiry_at_centre = "precinct_agent_reported_certificate_expiry_timestamp_seconds"
    wait_until(
        lambda: central_metric(expiry_at_centre, 'agent="a1"') == expiry.timestamp(),
        20,
        "a1's certificate expiry at the centre",
    )
    # Mosquitto's default sys_interval is 10 s.
    wait_until(
        lambda: (central_metric("precinct_broker_clients_connected") or 0) >= 2,
        25,
        "the broker's $SYS at the centre",
    )
    assert system.agents["a1"].stop() == 0
    last = agent_last_seq(system.agent_dir("a1"))

    def complete() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/a1", token)
        return status == 200 and body["received"] == last

    wait_until(complete, 30, f"all {last} readings stored")
    assert stored_seqs(system.db, "a1") == list(range(1, last + 1))


def test_an_agent_without_a_certificate_is_refused(identities: Identities) -> None:
    identities.start()
    identities.system.start_agent("a1", synthetic=20, env=identities.env(None))
    _refused(identities, "a1", "peer did not return a certificate", "alert certificate required")


def test_a_revoked_certificate_is_refused(identities: Identities) -> None:
    identities.issue("a1")
    identities.revoke("a1")
    identities.start()
    identities.system.start_agent("a1", synthetic=20, env=identities.env("a1"))
    _refused(identities, "a1", "certificate verify failed", "alert certificate revoked")


def test_an_expired_certificate_is_refused(identities: Identities) -> None:
    identities.issue("a1", "--not-before", "2020-01-01T00:00:00Z", "--days", "30")
    identities.start()
    agent = identities.system.start_agent("a1", synthetic=20, env=identities.env("a1"))
    _refused(identities, "a1", "certificate verify failed", "alert certificate expired")
    assert "expired at 2020-01-31" in agent.output()  # and the agent says why
    # Renewed in place, the certificate is picked up at the next attempt, without a restart,
    # and what the agent kept meanwhile is delivered.
    identities.issue("a1")
    system = identities.system
    token = system.token(Role.ADMIN)

    def delivered() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/a1", token)
        return status == 200 and body["received"] > 0

    wait_until(delivered, 60, "the renewed certificate to be used")
    assert agent.alive()


def test_a_revocation_reaches_new_connections_at_sighup(identities: Identities) -> None:
    """Mosquitto 2.0.11 reads the CRL again on SIGHUP; a connection already open stays open."""
    identities.issue("a1")
    identities.broker.start()
    assert identities.mqtt_connect("a1")
    context = ssl.create_default_context(cafile=str(identities.pki / "ca.crt"))
    context.load_cert_chain(identities.cert("a1"), identities.key("a1"))
    with (
        socket.create_connection(("127.0.0.1", identities.broker.tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as held,
    ):
        held.sendall(_CONNECT)
        assert held.recv(4) == _CONNACK_ACCEPTED
        identities.revoke("a1")
        assert identities.mqtt_connect("a1")  # the broker still holds the old CRL
        assert identities.broker.process is not None
        identities.broker.process.send_signal(signal.SIGHUP)
        wait_until(lambda: not identities.mqtt_connect("a1"), 10, "the CRL to be read again")
        held.sendall(bytes([0xC0, 0]))  # PINGREQ on the connection opened before
        assert held.recv(2) == bytes([0xD0, 0])


def _client_with(identities: Identities, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
    client.tls_set(
        ca_certs=str(identities.pki / "ca.crt"),
        certfile=str(identities.cert(name)),
        keyfile=str(identities.key(name)),
    )
    client.connect("127.0.0.1", identities.broker.tls_port)
    client.loop_start()
    wait_until(client.is_connected, 10, f"a client with {name}'s certificate to connect")
    return client


def _payloads(data_dir: Path, agent_id: str) -> list[bytes]:
    """Real envelopes for ``agent_id``, made by an outbox of that name."""
    data_dir.mkdir(parents=True)
    box = Outbox(data_dir / "outbox.sqlite3", agent_id, max_rows=100)
    try:
        box.put([Reading("door", "opened", MessageClass.EVENT, datetime.now(UTC), '{"door":1}')])
        return [item.payload for item in box.fetch(after=0, limit=10)]
    finally:
        box.close()


def test_a_certificate_cannot_publish_under_another_agents_prefix(
    identities: Identities, tmp_path: Path
) -> None:
    identities.issue("a1")
    identities.issue("a2")
    identities.start()
    system = identities.system
    forged = _payloads(tmp_path / "forged", "a2")
    own = _payloads(tmp_path / "own", "a1")
    # Mosquitto 2.0.11 acknowledges a denied QoS 1 publish and then drops the connection.
    intruder = _client_with(identities, "a1")
    try:
        for payload in forged:
            intruder.publish("precinct/v1/a2/event", payload, qos=1).wait_for_publish(10)
        wait_until(lambda: not intruder.is_connected(), 10, "the broker to drop the intruder")
    finally:
        intruder.disconnect()
        intruder.loop_stop()
    # The same certificate under its own prefix, after the forgery has been dealt with: once
    # this is stored, the forgery would have been too.
    own_client = _client_with(identities, "a1")
    try:
        for payload in own:
            own_client.publish("precinct/v1/a1/event", payload, qos=1).wait_for_publish(10)
    finally:
        own_client.disconnect()
        own_client.loop_stop()
    token = system.token(Role.ADMIN)

    def own_stored() -> bool:
        status, body = http_get(f"{system.base}/api/v1/agents/a1", token)
        return status == 200 and body["received"] == len(own)

    wait_until(own_stored, 20, "a1's own event at the centre")
    assert http_get(f"{system.base}/api/v1/agents/a2", token)[0] == 404
    assert stored_seqs(system.db, "a2") == []
    status, page = http_get(f"{system.base}/api/v1/events?agent=a2", token)
    assert (status, page["items"]) == (200, [])
    assert "Bad socket read/write on client intruder" in identities.broker.log_text()
