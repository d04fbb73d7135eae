"""``/static``: files shipped inside the package (``central/web/static/``, the vendored libraries
under ``vendor/`` among them), for the pages and ``/docs``. No token: they hold no data.

Caching: a URL made by :meth:`Assets.url` carries the first hex digits of the file's sha256
(``/static/vendor/htmx/htmx.min.js?v=d6fdc75f204e``), so a browser may keep that answer for a
year without asking again, and an upgrade that changes the file changes its URL. Any other
request for the file (no ``v``, or an old one) is answered ``no-cache``: the browser
revalidates with the ETag every time, a 304 when nothing changed, and never runs a stale
library against new pages.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from central.vendor_manifest import STATIC_DIR

STATIC_PREFIX = "/static"
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
# 48 bits of the digest: enough to tell versions of one file apart, short enough to read.
_VERSION_CHARS = 12


class Assets:
    """The digests of the static files, computed on first use and again when a file changes (an
    editable install during development); a packaged install never changes them."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root.resolve()
        self._digests: dict[Path, tuple[int, int, str]] = {}

    def version(self, path: Path) -> str:
        stat = path.stat()
        known = self._digests.get(path)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:_VERSION_CHARS]
        self._digests[path] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest

    def url(self, relative: str) -> str:
        """The cacheable URL of a file below ``static/``: ``url("vendor/htmx/htmx.min.js")``."""
        parts = PurePosixPath(relative).parts
        path = self.root.joinpath(*parts)
        if PurePosixPath(relative).is_absolute() or ".." in parts or not path.is_file():
            raise FileNotFoundError(f"no static file {relative!r} in {self.root}")
        return f"{STATIC_PREFIX}/{'/'.join(parts)}?v={self.version(path)}"


class StaticAssets(StaticFiles):
    """Starlette's static files with the cache policy of the module docstring."""

    def __init__(self, assets: Assets) -> None:
        super().__init__(directory=assets.root)
        self.assets = assets

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        current = query.get("v") == [self.assets.version(Path(full_path))]
        response.headers["Cache-Control"] = _IMMUTABLE if current else _REVALIDATE
        return response
