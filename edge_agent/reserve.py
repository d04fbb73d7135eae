"""Disk space held back for a full disk: a ballast file beside the outbox.

The file takes ``size`` bytes while the disk has room. When the outbox finds its disk full it
deletes the file, and the space it gave back lets the next events (and the ``disk_full`` event
itself) still commit. When the disk has room again the file is written anew. The file survives a
restart, so an agent that starts on a full disk still has its reserve.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

_CHUNK = 1 << 16


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system of ``directory``."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of real blocks (a sparse hole would give nothing back)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    else:
        return
    # A file system without fallocate: write the zeros.
    zeros = bytes(_CHUNK)
    left = size
    while left > 0:
        left -= os.write(fd, zeros[: min(left, _CHUNK)])


class Reserve:
    """One ballast file of ``size`` bytes (0: no reserve)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        """True while the ballast file is on disk at its full size."""
        try:
            return self.path.stat().st_size >= self.size > 0
        except FileNotFoundError:
            return False

    def restore(self) -> bool:
        """Write the ballast file; False when the disk has no room for it (nothing is left)."""
        if self.size <= 0 or self.held:
            return True
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _allocate(fd, self.size)
            finally:
                os.close(fd)
            tmp.replace(self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def release(self) -> int:
        """Delete the ballast file; returns the bytes given back (0 when there was none)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        return size
