"""Broker addresses as URLs: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://`` for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_broker_url(text: str) -> BrokerUrl:
    """Parse a broker URL; raises ``ValueError`` with the reason (the password is never echoed)."""
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("broker URL has an invalid port") from None
    if not parts.hostname:
        raise ValueError("broker URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("broker URL must not have a path or query")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
