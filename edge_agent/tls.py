"""A client's TLS files (CA, certificate, key), checked at start-up, and its certificate's expiry.

Both the agent and the central service connect to the broker with a certificate of their own
(``mqtts://``); a wrong path, a key of another certificate or an unreadable file would otherwise
show up only as a refused handshake on every reconnect. :func:`check_client_tls` raises
``ValueError("<key>: <reason>")``, which the settings loader turns into a configuration error
naming the key.

cryptography is imported only when a certificate is read: an agent without TLS does not load it
(about 80 ms and several MB at start-up).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

# A file larger than this is not a certificate or a key (bounds what start-up reads).
_MAX_PEM_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    common_name: str
    serial: int
    not_before: datetime
    not_after: datetime


def check_tls_keys(broker_tls: bool, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """The TLS keys of a settings object agree with each other and with the broker URL."""
    if any((ca, cert, key)) and not broker_tls:
        raise ValueError("tls_cert: TLS files are set but the broker URL is not mqtts://")
    if (cert is None) != (key is None):
        raise ValueError("tls_key: give both tls_cert and tls_key, or neither")


def key_matches(cert: x509.Certificate, key: object) -> bool:
    """Whether ``key`` is the private key of ``cert``."""
    from cryptography.hazmat.primitives import serialization

    public_key = getattr(key, "public_key", None)
    if public_key is None:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours: bytes = public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == cert.public_key().public_bytes(serialization.Encoding.DER, spki)


def describe(cert: x509.Certificate) -> CertificateInfo:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return CertificateInfo(
        value if isinstance(value, str) else value.decode(errors="replace"),
        cert.serial_number,
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
    )


def _read(path: Path, key: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_PEM_BYTES:
            raise ValueError(f"{key}: {path} is too large for a PEM file")
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{key}: no such file {path}") from None
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {path}: {exc.strerror}") from None


def read_certificate(path: Path, key: str = "tls_cert") -> CertificateInfo:
    """The identity and validity of the PEM certificate at ``path``."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(_read(path, key))
    except ValueError as exc:
        if str(exc).startswith(f"{key}:"):
            raise
        raise ValueError(f"{key}: {path} is not a PEM certificate") from None
    return describe(cert)


def check_client_tls(
    ca: Path | None, cert_path: Path | None, key_path: Path | None
) -> CertificateInfo | None:
    """Check the files a TLS client will use; the client certificate's details, if any."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if (cert_path is None) != (key_path is None):
        raise ValueError("tls_key: give both tls_cert and tls_key, or neither")
    if ca is not None:
        _read(ca, "tls_ca")
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(ca))
        except ssl.SSLError:
            raise ValueError(f"tls_ca: {ca} holds no PEM CA certificate") from None
    if cert_path is None or key_path is None:
        return None
    cert_pem = _read(cert_path, "tls_cert")
    key_pem = _read(key_path, "tls_key")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError(f"tls_cert: {cert_path} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ValueError(f"tls_key: {key_path} is encrypted; keys must be unencrypted") from None
    except ValueError:
        raise ValueError(f"tls_key: {key_path} is not a PEM private key") from None
    if not key_matches(cert, key):
        raise ValueError(f"tls_key: {key_path} is not the key of the certificate {cert_path}")
    return describe(cert)


class CertificateWatch:
    """Re-reads the client certificate (it may be renewed in place) and warns as expiry nears."""

    def __init__(self, path: Path, warn_before: timedelta, warn_every: timedelta) -> None:
        self.path = path
        self.warn_before = warn_before
        self.warn_every = warn_every
        self._warned_at: datetime | None = None

    def check(self, now: datetime) -> datetime | None:
        """The certificate's expiry (None if it cannot be read now); warns when it is near."""
        try:
            info = read_certificate(self.path)
        except ValueError as exc:
            log.warning("client certificate: %s", exc)
            return None
        left = info.not_after - now
        if left < self.warn_before and (
            self._warned_at is None or now - self._warned_at >= self.warn_every
        ):
            self._warned_at = now
            if left <= timedelta(0):
                log.error(
                    "client certificate %s (%s) expired at %s: the broker refuses it; "
                    "issue a new one (precinct pki issue)",
                    self.path,
                    info.common_name,
                    f"{info.not_after:%Y-%m-%d %H:%M} UTC",
                )
            else:
                log.warning(
                    "client certificate %s (%s) expires in %.1f days (%s)",
                    self.path,
                    info.common_name,
                    left.total_seconds() / 86400,
                    f"{info.not_after:%Y-%m-%d %H:%M} UTC",
                )
        return info.not_after
