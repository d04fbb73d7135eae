"""A small certificate authority for the broker: every agent's identity is a certificate.

Mosquitto's TLS listener (``require_certificate true``, ``use_identity_as_username true``) takes
the client certificate's common name as the MQTT user name, and the ACL's ``%u`` patterns confine
that name to its own topics; so the common name is the agent id. This module is the certificate
logic only: PEM bytes in and out, ``now`` as an argument, no files (those are
:mod:`central.pki_files`).

Keys are ECDSA P-256, which every TLS stack on the path (OpenSSL under Mosquitto and Python)
accepts. The CRL is valid as long as the CA: OpenSSL refuses every client once the CRL a broker
holds is past its next update, and a broker that is not reloaded keeps the CRL it read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_agent.tls import key_matches

# Issued certificates start a little in the past so that a peer whose clock runs behind does not
# see them as not yet valid.
_BACKDATE = timedelta(minutes=5)


class PkiError(ValueError):
    """A key or certificate that cannot be used (malformed, not matching, not ours)."""


@dataclass(frozen=True, slots=True)
class Issued:
    key_pem: bytes
    cert_pem: bytes
    serial: int
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class _Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Precinct"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load_authority(ca_key_pem: bytes, ca_cert_pem: bytes) -> _Authority:
    try:
        key = serialization.load_pem_private_key(ca_key_pem, password=None)
        cert = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError as exc:
        raise PkiError(f"the CA key or certificate cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not key_matches(cert, key):
        raise PkiError("the CA key does not belong to the CA certificate")
    return _Authority(key, cert)


def new_authority(name: str, now: datetime, days: int) -> Issued:
    """A self-signed CA that may sign end-entity certificates and CRLs only."""
    if days < 1:
        raise PkiError("a CA must be valid for at least one day")
    key = _new_key()
    subject = _name(name)
    not_after = now + timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(
        _key_pem(key),
        cert.public_bytes(serialization.Encoding.PEM),
        cert.serial_number,
        cert.not_valid_after_utc,
    )


def _subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() or c in "/@:" for c in host):
                raise PkiError(f"{host!r} is neither a host name nor an IP address") from None
            names.append(x509.DNSName(host))
    return names


def _issue(
    authority: _Authority,
    common_name: str,
    not_before: datetime,
    days: float,
    usage: x509.ObjectIdentifier,
    alternative_names: list[x509.GeneralName],
) -> Issued:
    if days <= 0:
        raise PkiError("a certificate must be valid for more than zero days")
    key = _new_key()
    not_after = not_before + timedelta(days=days)
    ca_not_after = authority.cert.not_valid_after_utc
    if not_after > ca_not_after:
        raise PkiError(
            f"the certificate would outlive the CA (valid until {ca_not_after:%Y-%m-%d})"
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    cert = builder.sign(authority.key, hashes.SHA256())
    return Issued(
        _key_pem(key),
        cert.public_bytes(serialization.Encoding.PEM),
        cert.serial_number,
        cert.not_valid_after_utc,
    )


def issue_server(
    ca_key_pem: bytes, ca_cert_pem: bytes, hosts: Sequence[str], now: datetime, days: float
) -> Issued:
    """The broker's certificate, for every host name and address clients connect to."""
    if not hosts:
        raise PkiError("the broker certificate needs at least one host name or address")
    authority = _load_authority(ca_key_pem, ca_cert_pem)
    return _issue(
        authority,
        hosts[0],
        now - _BACKDATE,
        days,
        ExtendedKeyUsageOID.SERVER_AUTH,
        _subject_alternative_names(hosts),
    )


def issue_client(
    ca_key_pem: bytes,
    ca_cert_pem: bytes,
    common_name: str,
    not_before: datetime,
    days: float,
) -> Issued:
    """A client certificate whose common name is the broker user name (an agent id)."""
    authority = _load_authority(ca_key_pem, ca_cert_pem)
    return _issue(authority, common_name, not_before, days, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def build_crl(
    ca_key_pem: bytes, ca_cert_pem: bytes, revoked: Sequence[Revoked], now: datetime, number: int
) -> bytes:
    """The CA's revocation list, valid until the CA itself expires."""
    authority = _load_authority(ca_key_pem, ca_cert_pem)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(authority.cert.not_valid_after_utc)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .build()
        )
    crl = builder.sign(authority.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)
