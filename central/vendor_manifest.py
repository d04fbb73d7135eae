"""The record of every third-party front-end file shipped in the package.

The centre runs on a closed network, so the pages load htmx, Leaflet and Swagger UI from
``central/web/static/vendor/`` and nothing from outside. ``MANIFEST.toml`` there is the one
place that says what each file is: the npm package and pinned version it came from, the
package's licence (an SPDX id) and licence files, the registry tarball and its ``integrity``
(the registry's own sha512), and the sha256 of every file as shipped. ``deploy/vendor.py``
writes the files and the manifest (a developer step with npm; nothing here needs Node), and
``tests/central/test_vendor.py`` checks the tree against it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.toml"

_HEADER = """\
# Every third-party file under central/web/static/vendor/, one [[package]] per npm package.
# Written by deploy/vendor.py, checked by tests/central/test_vendor.py: to add a file or change a
# version, edit name, version, license, license_files or a file's path/from here, then run
# `python deploy/vendor.py --update` (needs npm) to record the tarball, integrity and sha256.
"""


@dataclass(frozen=True, slots=True)
class VendoredFile:
    path: str  # under vendor/, as served below /static/vendor/
    source: str  # inside the npm tarball, below its top-level package/ directory
    sha256: str


@dataclass(frozen=True, slots=True)
class VendoredPackage:
    name: str  # on the npm registry
    version: str
    license: str  # SPDX id, as the package's package.json declares it
    license_files: tuple[str, ...]  # paths under vendor/, each also one of files
    tarball: str  # the registry's URL of the packed version
    integrity: str  # the registry's Subresource Integrity string of that tarball
    files: tuple[VendoredFile, ...]


class ManifestError(ValueError):
    """The manifest is not the shape this module writes."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {key!r} must be a string")
    return value


def _file(table: object, where: str) -> VendoredFile:
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: a file must be a table")
    return VendoredFile(
        path=_text(table, "path", where),
        source=_text(table, "from", where),
        sha256=_text(table, "sha256", where),
    )


def _package(table: object, index: int) -> VendoredPackage:
    if not isinstance(table, dict):
        raise ManifestError(f"package {index}: must be a table")
    where = f"package {table.get('name', index)!s}"
    files = table.get("file", [])
    licences = table.get("license_files", [])
    if not isinstance(files, list) or not isinstance(licences, list):
        raise ManifestError(f"{where}: 'file' and 'license_files' must be arrays")
    if not all(isinstance(name, str) for name in licences):
        raise ManifestError(f"{where}: 'license_files' must hold strings")
    return VendoredPackage(
        name=_text(table, "name", where),
        version=_text(table, "version", where),
        license=_text(table, "license", where),
        license_files=tuple(licences),
        tarball=_text(table, "tarball", where),
        integrity=_text(table, "integrity", where),
        files=tuple(_file(entry, f"{where} file {n}") for n, entry in enumerate(files)),
    )


def parse(text: str) -> tuple[VendoredPackage, ...]:
    packages = tomllib.loads(text).get("package", [])
    if not isinstance(packages, list):
        raise ManifestError("'package' must be an array of tables")
    return tuple(_package(table, index) for index, table in enumerate(packages))


def load(path: Path = MANIFEST) -> tuple[VendoredPackage, ...]:
    return parse(path.read_text(encoding="utf-8"))


def _string(value: str) -> str:
    # A JSON string of printable ASCII is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def render(packages: tuple[VendoredPackage, ...]) -> str:
    """The manifest as TOML, in the order given; ``parse(render(p)) == p``."""
    lines = [_HEADER]
    for package in packages:
        lines += [
            "[[package]]",
            f"name = {_string(package.name)}",
            f"version = {_string(package.version)}",
            f"license = {_string(package.license)}",
            f"license_files = [{', '.join(_string(p) for p in package.license_files)}]",
            f"tarball = {_string(package.tarball)}",
            f"integrity = {_string(package.integrity)}",
            "",
        ]
        for file in package.files:
            lines += [
                "[[package.file]]",
                f"path = {_string(file.path)}",
                f"from = {_string(file.source)}",
                f"sha256 = {_string(file.sha256)}",
                "",
            ]
    return "\n".join(lines)
