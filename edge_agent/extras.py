"""Which of the package's extras (``precinct[agent]``, ``[central]``, ``[demo]``, ``[dev]``) are
installed, read from the installed distribution's metadata.

The parsing is pure: it reads ``Requires-Dist`` lines as setuptools writes them for
pyproject.toml (``fastapi<1,>=0.115; extra == "central"``, ``precinct[agent,central]; extra ==
"demo"`` for an extra made of others), so the extras are declared once, in pyproject.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

DISTRIBUTION = "precinct"

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*(['"])([A-Za-z0-9._-]+)\1""")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``Requires-Dist`` line: the distribution, the extras it asks of it, and the extra of
    ours that brings it in (``None``: every install)."""

    name: str
    extras: tuple[str, ...]
    for_extra: str | None


def normalise(name: str) -> str:
    """PEP 503 form, so that ``sqlite_utils``, ``sqlite-utils`` and ``SQLite.Utils`` match."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(line: str) -> Requirement | None:
    """The requirement a metadata line states, or ``None`` for a line this reader cannot use."""
    spec, _, marker = line.partition(";")
    match = _NAME.match(spec)
    if match is None:
        return None
    extras = tuple(
        normalise(part.strip()) for part in (match.group(2) or "").split(",") if part.strip()
    )
    extra_match = _EXTRA_MARKER.search(marker)
    for_extra = normalise(extra_match.group(2)) if extra_match else None
    return Requirement(normalise(match.group(1)), extras, for_extra)


def requirements_of(extra: str, lines: Iterable[str]) -> frozenset[str]:
    """Every distribution that installing ``precinct[extra]`` pulls in directly, with the extras
    it names of this distribution itself (``demo`` = ``agent`` + ``central`` + …) expanded."""
    parsed = [req for req in (parse_requirement(line) for line in lines) if req is not None]
    wanted = {normalise(extra)}
    names: set[str] = set()
    frontier = [normalise(extra)]
    while frontier:
        current = frontier.pop()
        for req in parsed:
            if req.for_extra not in (None, current):
                continue
            if req.name == DISTRIBUTION:
                for nested in req.extras:
                    if nested not in wanted:
                        wanted.add(nested)
                        frontier.append(nested)
            else:
                names.add(req.name)
    return frozenset(names)


def missing_for(extra: str) -> list[str] | None:
    """The distributions ``precinct[extra]`` needs that are not installed here, sorted; ``None``
    when that cannot be known (the package runs from a source tree without being installed)."""
    try:
        lines = metadata.requires(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    missing = []
    for name in requirements_of(extra, lines or ()):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return sorted(missing)


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, quoted for a shell."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"
