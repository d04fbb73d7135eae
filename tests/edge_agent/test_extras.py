"""The extras read from the installed metadata: the Requires-Dist parser (vectors as setuptools
writes them, round trips, arbitrary text) and what each extra of this install needs."""

from __future__ import annotations

from importlib import metadata

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.extras import (
    Requirement,
    missing_for,
    normalise,
    parse_requirement,
    requirements_of,
)

# Lines as setuptools writes them for this project's pyproject.toml.
METADATA = [
    "aiomqtt<3,>=2.5",
    "cryptography<51,>=42",
    'pyserial<4,>=3.5; extra == "agent"',
    'pymodbus<3.17,>=3.16; extra == "agent"',
    'fastapi<1,>=0.115; extra == "central"',
    'uvicorn[standard]<1,>=0.30; extra == "central"',
    'sqlite-utils<4,>=3.37; extra == "central"',
    'precinct[agent,central]; extra == "demo"',
    'bumble<0.0.240,>=0.0.236; extra == "demo"',
    'precinct[demo]; extra == "dev"',
    'pytest<10,>=8; extra == "dev"',
]

names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True)
extra_names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
specifiers = st.sampled_from(["", ">=1", "<2,>=1.0", "==3.16.*", "~=0.12"])


def test_vectors_as_setuptools_writes_them() -> None:
    assert parse_requirement('uvicorn[standard]<1,>=0.30; extra == "central"') == Requirement(
        "uvicorn", ("standard",), "central"
    )
    assert parse_requirement("aiomqtt<3,>=2.5") == Requirement("aiomqtt", (), None)
    assert parse_requirement("precinct[agent, central] ; extra == 'demo'") == Requirement(
        "precinct", ("agent", "central"), "demo"
    )
    assert parse_requirement('SQLite_Utils>=3; python_version >= "3.11"') == Requirement(
        "sqlite-utils", (), None
    )
    assert parse_requirement("") is None
    assert parse_requirement("; extra == 'x'") is None


def test_an_extra_made_of_others_needs_all_of_theirs() -> None:
    agent = requirements_of("agent", METADATA)
    demo = requirements_of("demo", METADATA)
    dev = requirements_of("dev", METADATA)

    assert agent == {"aiomqtt", "cryptography", "pyserial", "pymodbus"}
    assert demo == agent | {"fastapi", "uvicorn", "sqlite-utils", "bumble"}
    assert dev == demo | {"pytest"}
    assert "precinct" not in dev


def test_an_extra_that_names_itself_does_not_loop() -> None:
    lines = ['precinct[a]; extra == "b"', 'precinct[b]; extra == "a"', 'x; extra == "a"']

    assert requirements_of("b", lines) == {"x"}


@given(names, st.lists(extra_names, max_size=3), specifiers, st.none() | extra_names)
def test_a_written_requirement_reads_back(
    name: str, extras: list[str], specifier: str, for_extra: str | None
) -> None:
    line = name + (f"[{','.join(extras)}]" if extras else "") + specifier
    if for_extra is not None:
        line += f'; extra == "{for_extra}"'

    assert parse_requirement(line) == Requirement(normalise(name), tuple(extras), for_extra)


@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_without_an_error(line: str) -> None:
    parsed = parse_requirement(line)

    assert parsed is None or parsed.name == normalise(parsed.name)


def test_this_development_install_has_every_extra() -> None:
    for extra in ("agent", "central", "demo", "dev"):
        assert missing_for(extra) == [], extra
    assert "precinct[demo]" in "".join(metadata.requires("precinct") or [])
