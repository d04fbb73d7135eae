"""Who holds the store file: every running central holds a shared ``flock`` on it for its whole
life, a restore takes it exclusively, so that a restore never replaces a store under a running
central and a central never starts on a store half restored.

SQLite's own locks cannot tell: a central holds no SQLite lock while it is idle. ``flock`` is
separate from the POSIX record locks SQLite uses, so the two never interfere; the descriptor
is closed only when the holder is done with the store (closing a descriptor of a file drops
that process's POSIX locks on it, SQLite's among them).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StoreBusyError(Exception):
    """Another process holds the store in a way that conflicts with this one."""


@contextmanager
def _flock(path: Path, operation: int, busy: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreBusyError(f"{path}: {busy}") from None
        yield
    finally:
        os.close(fd)


@contextmanager
def held_by_central(path: Path) -> Iterator[None]:
    """Held while a central runs on the store at ``path`` (which exists: migrate made it)."""
    with _flock(path, fcntl.LOCK_SH, "a restore is replacing this store; start again after it"):
        yield


@contextmanager
def held_for_restore(path: Path) -> Iterator[None]:
    """Held while a restore replaces the store at ``path``; refused while a central runs."""
    with _flock(path, fcntl.LOCK_EX, "in use by a running central; stop it first"):
        yield
