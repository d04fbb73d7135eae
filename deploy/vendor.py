"""Re-create central/web/static/vendor/ from the npm registry: a developer step, never needed to
install or run Precinct (the files ship inside the package).

    python deploy/vendor.py            # fetch the pinned tarballs, check each against the
                                       # manifest's integrity and sha256, rewrite the tree
    python deploy/vendor.py --update   # after editing a version or file list in MANIFEST.toml:
                                       # record the new tarball, integrity and sha256 there

Needs ``npm`` (``npm pack`` only downloads a tarball; no package scripts run). The tree is built
in a temporary directory and replaces vendor/ only when every check passed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from central.vendor_manifest import (
    MANIFEST,
    VENDOR_DIR,
    VendoredPackage,
    load,
    render,
)

_NPM_TIMEOUT = 300


class VendorError(Exception):
    """A tarball or file that does not match what the manifest pins."""


def _npm(*args: str, cwd: Path) -> object:
    done = subprocess.run(
        ["npm", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=_NPM_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise VendorError(f"npm {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def _integrity(tarball: Path) -> str:
    """The Subresource Integrity string npm records for a tarball (sha512, base64)."""
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def _registry_dist(name: str, version: str, work: Path) -> tuple[str, str]:
    dist = _npm("view", f"{name}@{version}", "dist", cwd=work)
    if not isinstance(dist, dict):
        raise VendorError(f"{name}@{version}: the registry has no such version")
    return str(dist["tarball"]), str(dist["integrity"])


def _pack(name: str, version: str, work: Path) -> Path:
    packed = _npm("pack", f"{name}@{version}", "--pack-destination", str(work), cwd=work)
    if not isinstance(packed, list) or len(packed) != 1:
        raise VendorError(f"{name}@{version}: npm pack gave {packed!r}")
    return work / str(packed[0]["filename"])


def _member(archive: tarfile.TarFile, source: str) -> bytes:
    # npm tarballs keep everything below one top-level "package/" directory.
    try:
        extracted = archive.extractfile(f"package/{source}")
    except KeyError:
        extracted = None
    if extracted is None:
        raise VendorError(f"no regular file package/{source} in the tarball")
    return extracted.read()


def _target(staging: Path, path: str) -> Path:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise VendorError(f"{path}: must stay below vendor/")
    return staging.joinpath(*relative.parts)


def _vendor_one(
    package: VendoredPackage, staging: Path, work: Path, update: bool
) -> VendoredPackage:
    label = f"{package.name}@{package.version}"
    missing = set(package.license_files) - {file.path for file in package.files}
    if missing:
        raise VendorError(f"{label}: license files not among its files: {sorted(missing)}")
    tarball = _pack(package.name, package.version, work)
    integrity = _integrity(tarball)
    if update:
        url, registry_integrity = _registry_dist(package.name, package.version, work)
        if integrity != registry_integrity:
            raise VendorError(f"{label}: the packed tarball is not the registry's")
        package = replace(package, tarball=url, integrity=integrity)
    elif integrity != package.integrity:
        raise VendorError(f"{label}: tarball integrity {integrity} != pinned {package.integrity}")
    files = []
    with tarfile.open(tarball, "r:gz") as archive:
        declared = json.loads(_member(archive, "package.json")).get("license")
        if declared != package.license:
            raise VendorError(f"{label}: package.json says {declared!r}, not {package.license!r}")
        for file in package.files:
            data = _member(archive, file.source)
            digest = hashlib.sha256(data).hexdigest()
            if not update and digest != file.sha256:
                raise VendorError(f"{label}: {file.source} has sha256 {digest} != {file.sha256}")
            target = _target(staging, file.path)
            if target.exists():
                raise VendorError(f"{file.path}: listed twice")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files.append(replace(file, sha256=digest))
    return replace(package, files=tuple(files))


def vendor(update: bool) -> tuple[VendoredPackage, ...]:
    packages = load(MANIFEST)
    with tempfile.TemporaryDirectory(prefix="precinct-vendor-") as temp:
        work = Path(temp) / "npm"
        staging = Path(temp) / "vendor"
        work.mkdir()
        staging.mkdir()
        done = tuple(_vendor_one(package, staging, work, update) for package in packages)
        (staging / MANIFEST.name).write_text(render(done), encoding="utf-8")
        # Only now, with every check passed, replace the shipped tree (stale files go too).
        if VENDOR_DIR.exists():
            shutil.rmtree(VENDOR_DIR)
        shutil.copytree(staging, VENDOR_DIR)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update",
        action="store_true",
        help="record the tarball, integrity and sha256 of the versions now in the manifest",
    )
    args = parser.parse_args(argv)
    try:
        packages = vendor(update=args.update)
    except VendorError as error:
        print(f"vendor: {error}", file=sys.stderr)
        return 1
    for package in packages:
        print(f"{package.name}@{package.version} ({package.license}): {len(package.files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
