"""TLS settings of the agent and the central: checked at start-up, with the key named."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central import pki
from central.settings import CentralSettings
from edge_agent.settings import AgentSettings
from edge_agent.settings_source import ConfigError, load
from edge_agent.tls import CertificateWatch

NOW = datetime.now(UTC)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A CA and certificates for a1 and a2, written as ``precinct pki`` would."""
    ca = pki.new_authority("test CA", NOW, 30)
    paths = {"ca": tmp_path / "ca.crt"}
    paths["ca"].write_bytes(ca.cert_pem)
    for name in ("a1", "a2"):
        issued = pki.issue_client(ca.key_pem, ca.cert_pem, name, NOW, 10)
        paths[f"{name}.crt"] = tmp_path / f"{name}.crt"
        paths[f"{name}.key"] = tmp_path / f"{name}.key"
        paths[f"{name}.crt"].write_bytes(issued.cert_pem)
        paths[f"{name}.key"].write_bytes(issued.key_pem)
    return paths


def _agent(tmp_path: Path, **env: str) -> AgentSettings:
    environ = {f"PRECINCT_{k.upper()}": v for k, v in env.items()}
    settings = load(AgentSettings, None, {"id": "a1", "data_dir": str(tmp_path / "d")}, environ)
    settings.check_files()
    return settings


def test_an_agent_with_its_own_certificate_loads(tmp_path: Path, files: dict[str, Path]) -> None:
    settings = _agent(
        tmp_path,
        broker="mqtts://127.0.0.1:8883",
        tls_ca=str(files["ca"]),
        tls_cert=str(files["a1.crt"]),
        tls_key=str(files["a1.key"]),
    )
    assert settings.tls_cert == files["a1.crt"]


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"tls_cert": "missing.crt"}, "tls_cert", "no such file"),
        ({"tls_ca": "missing.crt"}, "tls_ca", "no such file"),
        ({"tls_key": "a2.key"}, "tls_key", "is not the key of the certificate"),
        ({"tls_cert": "a2.crt", "tls_key": "a2.key"}, "tls_cert", "is for 'a2', not for"),
        ({"tls_key": ""}, "tls_key", "give both tls_cert and tls_key"),
        ({"tls_cert": "a1.key"}, "tls_cert", "is not a PEM certificate"),
        ({"tls_key": "a1.crt"}, "tls_key", "is not a PEM private key"),
        ({"tls_ca": "a1.key"}, "tls_ca", "holds no PEM CA certificate"),
        ({"broker": "mqtt://127.0.0.1:1883"}, "tls_cert", "not mqtts://"),
    ],
)
def test_bad_tls_settings_are_configuration_errors_naming_the_key(
    tmp_path: Path, files: dict[str, Path], overrides: dict[str, str], key: str, message: str
) -> None:
    values = {
        "broker": "mqtts://127.0.0.1:8883",
        "tls_ca": str(files["ca"]),
        "tls_cert": str(files["a1.crt"]),
        "tls_key": str(files["a1.key"]),
    }
    for name, value in overrides.items():
        if name != "broker" and value:
            value = str(files[value]) if value in files else str(tmp_path / value)
        values[name] = value
    with pytest.raises(ConfigError) as caught:
        _agent(tmp_path, **values)
    assert caught.value.key == key
    assert message in str(caught.value)


def test_the_central_checks_its_tls_files_too(tmp_path: Path, files: dict[str, Path]) -> None:
    environ = {
        "PRECINCT_BROKER": "mqtts://127.0.0.1:8883",
        "PRECINCT_TLS_CA": str(files["ca"]),
        "PRECINCT_TLS_CERT": str(files["a1.crt"]),
        "PRECINCT_TLS_KEY": str(files["a2.key"]),
    }
    with pytest.raises(ConfigError) as caught:
        load(CentralSettings, None, {"db": str(tmp_path / "c.db")}, environ).check_files()
    assert caught.value.key == "tls_key"
    environ["PRECINCT_TLS_KEY"] = str(files["a1.key"])
    settings = load(CentralSettings, None, {"db": str(tmp_path / "c.db")}, environ)
    settings.check_files()
    assert settings.tls_key == files["a1.key"]


def test_the_certificate_watch_warns_as_expiry_nears(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    watch = CertificateWatch(files["a1.crt"], timedelta(days=30), timedelta(hours=6))
    caplog.set_level(logging.WARNING, logger="edge_agent.tls")
    expiry = watch.check(NOW)
    assert expiry is not None
    assert abs((expiry - (NOW + timedelta(days=10))).total_seconds()) < 1
    assert "expires in 10.0 days" in caplog.text
    caplog.clear()
    watch.check(NOW + timedelta(hours=1))
    assert caplog.text == ""  # once per warn_every, not on every check
    watch.check(NOW + timedelta(days=11))
    assert "expired at" in caplog.text
    quiet = CertificateWatch(files["a1.crt"], timedelta(days=5), timedelta(hours=6))
    caplog.clear()
    assert quiet.check(NOW) == expiry
    assert caplog.text == ""
