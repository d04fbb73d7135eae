"""The event cursor on disk: the sequence number of the last board event the agent accepted.

One small JSON file per board, replaced atomically (write a temporary file, fsync, rename,
fsync the directory), so that after a crash or power cut the file holds either the old cursor
or the new one, never a torn one. A restart then asks the board for events after the cursor:
nothing accepted is repeated and nothing buffered is lost.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_VERSION = 1


def _parse(raw: bytes) -> int:
    try:
        document = json.loads(raw)
        seq = document["last_seq"]
        version = document.get("version")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a cursor document: {exc}") from exc
    if (
        version != _VERSION
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or not 0 <= seq <= 0xFFFF
    ):
        raise ValueError(f"unexpected content {document!r}")
    return seq


class EventCursor:
    """The cursor of one board, in ``state_dir``."""

    def __init__(self, state_dir: Path, device_id: str, address: int) -> None:
        name = _SAFE.sub("_", device_id) or "cabinet"
        self.path = Path(state_dir) / f"cabinet-{name}-{address}.cursor.json"
        self._saved: int | None = None

    def load(self) -> int | None:
        """The saved cursor, or None when there is none (a new board, or an unreadable file)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            seq = _parse(raw)
        except ValueError as exc:
            # Starting from scratch repeats buffered events rather than losing any.
            log.warning("ignoring unreadable event cursor %s: %s", self.path, exc)
            return None
        self._saved = seq
        return seq

    def save(self, seq: int) -> None:
        """Replace the cursor with ``seq`` (synchronously: see the device for why)."""
        if seq == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps({"version": _VERSION, "last_seq": seq}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._saved = seq
