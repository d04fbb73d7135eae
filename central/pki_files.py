"""The CA directory written by ``precinct pki``: its layout, its index, and safe writes.

```
DIR/ca.key  ca.crt              the CA (the key never leaves this directory)
DIR/server.key  server.crt      the broker's certificate (copy to Mosquitto)
DIR/crl.pem                     revoked certificates (Mosquitto's crlfile)
DIR/clients/<id>.key  <id>.crt  one per agent, and one for the central service
DIR/index.json                  every certificate issued: serial, name, expiry, revocation
```

Keys are created with mode 0600 (never readable by anyone else, not even for an instant); every
file is written to a temporary name and renamed, so that a crash leaves the old file or the new
one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from central.pki import PkiError, Revoked

KEY_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class IndexEntry:
    name: str
    serial: int
    not_after: datetime
    revoked_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "serial": str(self.serial),
            "not_after": self.not_after.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> IndexEntry:
        revoked = raw.get("revoked_at")
        return cls(
            name=str(raw["name"]),
            serial=int(str(raw["serial"])),
            not_after=datetime.fromisoformat(str(raw["not_after"])),
            revoked_at=datetime.fromisoformat(revoked) if isinstance(revoked, str) else None,
        )


class PkiDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_key = root / "ca.key"
        self.ca_cert = root / "ca.crt"
        self.server_key = root / "server.key"
        self.server_cert = root / "server.crt"
        self.crl = root / "crl.pem"
        self.index_path = root / "index.json"
        self.clients = root / "clients"

    def client_key(self, name: str) -> Path:
        return self.clients / f"{name}.key"

    def client_cert(self, name: str) -> Path:
        return self.clients / f"{name}.crt"

    def has_ca(self) -> bool:
        return self.ca_key.exists() or self.ca_cert.exists()

    def create(self) -> None:
        """Make the directory for a new CA; refuses one that already holds a CA."""
        if self.has_ca():
            raise PkiError(f"{self.root} already holds a CA; refusing to overwrite it")
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.clients.mkdir(mode=DIR_MODE, exist_ok=True)

    def read_ca(self) -> tuple[bytes, bytes]:
        try:
            return self.ca_key.read_bytes(), self.ca_cert.read_bytes()
        except FileNotFoundError:
            raise PkiError(f"{self.root} holds no CA: run precinct pki init first") from None

    def index(self) -> list[IndexEntry]:
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.index_path} cannot be read: {exc}") from None
        try:
            return [IndexEntry.from_json(entry) for entry in raw["certificates"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise PkiError(f"{self.index_path} is damaged: {exc}") from None

    def write_index(self, entries: list[IndexEntry]) -> None:
        body = json.dumps({"certificates": [e.to_json() for e in entries]}, indent=2) + "\n"
        write_file(self.index_path, body.encode(), PUBLIC_MODE)

    def revoke(self, name: str, now: datetime) -> tuple[list[IndexEntry], list[Revoked]]:
        """Mark every unrevoked certificate of ``name`` revoked; (newly revoked, all revoked)."""
        entries = self.index()
        newly = [e for e in entries if e.name == name and e.revoked_at is None]
        updated = [
            replace(e, revoked_at=now) if e.name == name and e.revoked_at is None else e
            for e in entries
        ]
        if newly:
            self.write_index(updated)
        revoked = [Revoked(e.serial, e.revoked_at) for e in updated if e.revoked_at is not None]
        return [replace(e, revoked_at=now) for e in newly], revoked


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, created with ``mode`` from the start."""
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(mode)  # the umask may have taken bits away from a public file
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
