"""``precinct pki``: the CA, agents' certificates and the CRL, made by the real command."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from central import pki
from edge_agent.tls import check_client_tls
from edge_agent.wire import is_valid_name
from tests.support import run_precinct


def precinct_pki(*args: str) -> subprocess.CompletedProcess[str]:
    return run_precinct("pki", *args)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    result = precinct_pki("init", "--dir", str(directory), "--host", "broker.example")
    assert result.returncode == 0, result.stderr
    return directory


def test_init_writes_a_ca_a_broker_certificate_and_an_empty_crl(ca_dir: Path) -> None:
    ca = _cert(ca_dir / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = _cert(ca_dir / "server.crt")
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert len(crl) == 0
    assert crl.next_update_utc == ca.not_valid_after_utc  # an expired CRL refuses everyone
    for key in ("ca.key", "server.key"):
        assert (ca_dir / key).stat().st_mode & 0o777 == 0o600


def test_init_defaults_to_localhost_and_loopback(tmp_path: Path) -> None:
    assert precinct_pki("init", "--dir", str(tmp_path / "p")).returncode == 0
    server = _cert(tmp_path / "p" / "server.crt")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_init_refuses_to_overwrite_an_existing_ca(ca_dir: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes()
    result = precinct_pki("init", "--dir", str(ca_dir))
    assert result.returncode == 2
    assert "already holds a CA" in result.stderr
    assert ((ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes()) == before


def test_issue_names_the_agent_and_expires_as_asked(ca_dir: Path) -> None:
    started = datetime.now(UTC)
    result = precinct_pki("issue", "--dir", str(ca_dir), "station-01-gate", "--days", "90")
    assert result.returncode == 0, result.stderr
    key_path = ca_dir / "clients" / "station-01-gate.key"
    cert_path = ca_dir / "clients" / "station-01-gate.crt"
    assert key_path.stat().st_mode & 0o777 == 0o600
    cert = _cert(cert_path)
    cert.verify_directly_issued_by(_cert(ca_dir / "ca.crt"))
    assert _common_name(cert) == "station-01-gate"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    expected = started + timedelta(days=90)
    assert abs((cert.not_valid_after_utc - expected).total_seconds()) < 60
    info = check_client_tls(ca_dir / "ca.crt", cert_path, key_path)
    assert info is not None
    assert info.common_name == "station-01-gate"
    index = json.loads((ca_dir / "index.json").read_text())["certificates"]
    assert [(e["name"], int(e["serial"])) for e in index] == [
        ("station-01-gate", cert.serial_number)
    ]


def test_issue_with_a_start_in_the_past_gives_an_expired_certificate(ca_dir: Path) -> None:
    result = precinct_pki(
        "issue", "--dir", str(ca_dir), "old", "--not-before", "2020-01-01T00:00:00Z", "--days", "30"
    )
    assert result.returncode == 0, result.stderr
    cert = _cert(ca_dir / "clients" / "old.crt")
    assert cert.not_valid_after_utc == datetime(2020, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["a/b", "a b", "", "x" * 65, "a+b", "#"])
def test_issue_and_revoke_refuse_bad_ids(ca_dir: Path, bad: str) -> None:
    for command in ("issue", "revoke"):
        result = precinct_pki(command, "--dir", str(ca_dir), bad)
        assert result.returncode == 2
        assert "not a valid agent id" in result.stderr
        assert "Traceback" not in result.stderr
    assert list((ca_dir / "clients").iterdir()) == []


def test_issue_without_a_ca_is_a_clear_error(tmp_path: Path) -> None:
    result = precinct_pki("issue", "--dir", str(tmp_path / "none"), "a1")
    assert result.returncode == 2
    assert "run precinct pki init first" in result.stderr


def test_revoke_lists_every_certificate_of_the_agent_in_the_crl(ca_dir: Path) -> None:
    serials = []
    for _ in range(2):  # issued, then renewed
        assert precinct_pki("issue", "--dir", str(ca_dir), "a1").returncode == 0
        serials.append(_cert(ca_dir / "clients" / "a1.crt").serial_number)
    assert precinct_pki("issue", "--dir", str(ca_dir), "a2").returncode == 0
    kept = _cert(ca_dir / "clients" / "a2.crt").serial_number
    result = precinct_pki("revoke", "--dir", str(ca_dir), "a1")
    assert result.returncode == 0, result.stderr
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.is_signature_valid(_cert(ca_dir / "ca.crt").public_key())  # type: ignore[arg-type]
    assert sorted(r.serial_number for r in crl) == sorted(serials)
    assert crl.get_revoked_certificate_by_serial_number(kept) is None
    again = precinct_pki("revoke", "--dir", str(ca_dir), "a1")
    assert again.returncode == 0
    assert "no certificate left" in again.stdout
    assert len(x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())) == 2


def test_revoke_of_an_id_never_issued_is_a_clear_error(ca_dir: Path) -> None:
    result = precinct_pki("revoke", "--dir", str(ca_dir), "nobody")
    assert result.returncode == 2
    assert "no certificate was issued" in result.stderr


NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
_AUTHORITY = pki.new_authority("test CA", NOW, 3650)
_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"


@settings(max_examples=25, deadline=None)
@given(name=st.from_regex(_NAME_PATTERN, fullmatch=True), days=st.floats(0.01, 3000))
def test_a_client_certificate_carries_exactly_the_name_and_validity_asked_for(
    name: str, days: float
) -> None:
    assert is_valid_name(name)
    issued = pki.issue_client(_AUTHORITY.key_pem, _AUTHORITY.cert_pem, name, NOW, days)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert _common_name(cert) == name
    assert cert.not_valid_before_utc == NOW
    # X.509 times have whole seconds.
    assert abs((cert.not_valid_after_utc - (NOW + timedelta(days=days))).total_seconds()) < 1
    assert issued.not_after == cert.not_valid_after_utc


def test_a_certificate_may_not_outlive_its_ca() -> None:
    with pytest.raises(pki.PkiError, match="outlive the CA"):
        pki.issue_client(_AUTHORITY.key_pem, _AUTHORITY.cert_pem, "a1", NOW, 4000)


def test_a_ca_key_of_another_ca_is_refused() -> None:
    other = pki.new_authority("other", NOW, 10)
    with pytest.raises(pki.PkiError, match="does not belong"):
        pki.issue_client(other.key_pem, _AUTHORITY.cert_pem, "a1", NOW, 1)
