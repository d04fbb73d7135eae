"""The vendored front-end files against their manifest, and nothing of ours naming an outside
host: the centre's network reaches nothing outside it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from central.api.routes.docs import swagger_page
from central.static_files import Assets
from central.vendor_manifest import (
    MANIFEST,
    STATIC_DIR,
    VENDOR_DIR,
    VendoredPackage,
    load,
    parse,
    render,
    sha256_of,
)
from tests.support import ROOT

# The licences the centre has accepted for front-end code, each with a phrase of its text: the
# shipped licence file must be the licence the manifest names.
ACCEPTED_LICENCES = {
    "0BSD": "Permission to use, copy, modify, and/or distribute this software for any purpose",
    "BSD-2-Clause": "Redistribution and use in source and binary forms",
    "MIT": "Permission is hereby granted, free of charge",
    "Apache-2.0": "Apache License",
}
# The majors the pages and /docs are written against (Swagger UI 4 cannot render FastAPI's
# OpenAPI 3.1: "Unable to render this definition").
PINNED = {"htmx.org": r"2\.0\.\d+", "leaflet": r"1\.9\.4", "swagger-ui-dist": r"5\.\d+\.\d+"}
_URL = re.compile(r"\b(?:https?|wss?)://(\[[0-9A-Fa-f:]*\]|[^/\s\"'`)<>:]*)", re.IGNORECASE)
_LOCAL = {"127.0.0.1", "localhost", "[::1]"}
_TEXT_SUFFIXES = {".html", ".jinja", ".j2", ".js", ".mjs", ".css", ".svg", ".json", ".txt", ".py"}


def _packages() -> tuple[VendoredPackage, ...]:
    return load(MANIFEST)


def _on_disk() -> set[str]:
    return {
        path.relative_to(VENDOR_DIR).as_posix()
        for path in VENDOR_DIR.rglob("*")
        if path.is_file() and path != MANIFEST
    }


def test_every_vendored_file_is_listed_with_its_sha256() -> None:
    listed = {file.path: file.sha256 for package in _packages() for file in package.files}
    assert sorted(_on_disk() - set(listed)) == [], "files not in MANIFEST.toml"
    assert sorted(set(listed) - _on_disk()) == [], "MANIFEST.toml entries with no file"
    changed = [path for path, digest in listed.items() if sha256_of(VENDOR_DIR / path) != digest]
    assert changed == [], "files whose sha256 is not the manifest's"
    assert {"htmx/htmx.min.js", "leaflet/leaflet.js", "swagger-ui/swagger-ui-bundle.js"} <= set(
        listed
    )


def test_every_package_is_pinned_to_a_registry_tarball() -> None:
    packages = _packages()
    assert {package.name for package in packages} == set(PINNED)
    for package in packages:
        assert re.fullmatch(PINNED[package.name], package.version), package
        basename = package.name.rsplit("/", 1)[-1]
        tarball = f"https://registry.npmjs.org/{package.name}/-/{basename}-{package.version}.tgz"
        assert package.tarball == tarball
        # The registry's integrity string: sha512 of the tarball, base64.
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", package.integrity), package.name


def test_every_package_ships_the_licence_it_declares() -> None:
    for package in _packages():
        assert package.license in ACCEPTED_LICENCES, (package.name, package.license)
        assert package.license_files, (package.name, "no licence file")
        paths = {file.path for file in package.files}
        for licence in package.license_files:
            assert licence in paths, (package.name, licence, "not among its files")
        texts = [(VENDOR_DIR / p).read_text(encoding="utf-8") for p in package.license_files]
        # The phrase may wrap across lines in the licence file.
        flat = " ".join(" ".join(texts).split())
        assert ACCEPTED_LICENCES[package.license] in flat, (package.name, package.license)


def test_the_manifest_is_in_the_form_the_vendor_script_writes() -> None:
    packages = _packages()
    assert parse(render(packages)) == packages
    assert MANIFEST.read_text(encoding="utf-8") == render(packages)


def outside_hosts(text: str) -> list[str]:
    """The hosts other than the loopback that a text names in a URL."""
    return [match[0] for match in _URL.finditer(text) if match[1].lower() not in _LOCAL]


def test_outside_hosts_are_found_and_the_loopback_is_not() -> None:
    text = (
        '<script src="https://cdn.jsdelivr.net/npm/htmx.org@2/dist/htmx.min.js"></script>\n'
        "L.tileLayer('http://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png')\n"
        "new WebSocket('wss://example.org/socket');"
        'fetch("http://127.0.0.1:8000/api/v1/alarms"); fetch("/static/vendor/x.js");'
        "fetch('http://[::1]:8000/healthz'); fetch('http://localhost/readyz')"
    )
    assert outside_hosts(text) == [
        "https://cdn.jsdelivr.net",
        "http://{s}.tile.openstreetmap.org",
        "wss://example.org",
    ]


def _own_web_files() -> list[Path]:
    # Vendored library code holds URLs as data (spec links, licence headers): checked by hash.
    return [
        path
        for path in STATIC_DIR.parent.rglob("*")
        if path.is_file() and VENDOR_DIR not in path.parents and path.suffix in _TEXT_SUFFIXES
    ]


def test_our_pages_and_static_files_name_no_outside_host() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): hosts
        for path in _own_web_files()
        if (hosts := outside_hosts(path.read_text(encoding="utf-8", errors="replace")))
    }
    assert found == {}


def test_the_docs_page_loads_swagger_ui_from_the_package() -> None:
    assets = Assets()
    html = bytes(swagger_page(assets, "/openapi.json", "Precinct central").body).decode()
    assert outside_hosts(html) == []
    # FastAPI's own page names a CDN and an outside favicon: none of that here.
    assert "cdn.jsdelivr.net" not in html
    assert "fastapi.tiangolo.com" not in html
    assert '"validatorUrl": null' in html
    named = re.findall(r'(?:src|href)="/static/([^"?]+)\?v=([0-9a-f]{12})"', html)
    assert {path for path, _ in named} == {
        "vendor/swagger-ui/swagger-ui-bundle.js",
        "vendor/swagger-ui/swagger-ui.css",
        "vendor/swagger-ui/favicon-32x32.png",
    }
    for path, version in named:
        assert sha256_of(STATIC_DIR / path).startswith(version), path


def test_an_asset_url_refuses_a_file_outside_static() -> None:
    assets = Assets()
    for wrong in ("../vendor_manifest.py", "/etc/passwd", "vendor/htmx/nope.js", "vendor/htmx"):
        with pytest.raises(FileNotFoundError):
            assets.url(wrong)


def test_a_wheel_ships_every_vendored_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("edge_agent", "central", "devices", "scheduling", "monitoring", "bench"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), source],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("precinct-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            name.removeprefix("central/web/static/vendor/")
            for name in archive.namelist()
            if name.startswith("central/web/static/vendor/")
        }
    assert shipped == _on_disk() | {MANIFEST.name}
