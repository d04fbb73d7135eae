"""The shipped systemd units: ``systemd-analyze verify`` accepts them (with Debian's
mosquitto.service for the drop-in), and their key directives hold: a dedicated user, a
read-only system but the data directory that the shipped settings write to, no privileges to
gain, a restart on failure within a start limit, a command the ``precinct`` parser accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edge_agent.command_line import build_parser
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
UNITS = ("precinct-central.service", "precinct-agent.service")
INSTALLED_PRECINCT = "/opt/precinct/bin/precinct"
DEBIAN_MOSQUITTO_UNIT = Path("/lib/systemd/system/mosquitto.service")


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given, in order (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: cannot read {raw!r}"
        assert current is not None, f"{path.name}: {raw!r} before any section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(sections: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = sections.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_systemd_analyze_verify_accepts_the_units_and_the_drop_in(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    # verify checks that ExecStart exists: point it at this environment's precinct.
    precinct = Path(sys.executable).parent / "precinct"
    assert precinct.exists()
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit
        copy.write_text((DEPLOY / unit).read_text().replace(INSTALLED_PRECINCT, str(precinct)))
        copies.append(copy)
    shutil.copytree(DEPLOY / "mosquitto.service.d", tmp_path / "mosquitto.service.d")

    done = _verify(copies)

    assert done.returncode == 0, done.stderr
    # Unknown keys and bad values are only warnings: any line about our files fails.
    assert str(tmp_path) not in done.stdout + done.stderr, done.stdout + done.stderr
    if not DEBIAN_MOSQUITTO_UNIT.exists():
        pytest.skip("no Debian mosquitto.service to verify the drop-in against")
    shutil.copy(DEBIAN_MOSQUITTO_UNIT, tmp_path / "mosquitto.service")
    done = _verify([tmp_path / "mosquitto.service"])
    assert done.returncode == 0, done.stderr
    assert str(tmp_path) not in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_typo_in_a_unit_is_caught(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    unit = tmp_path / "precinct-typo.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nProtectSytem=strict\n")

    done = _verify([unit])

    assert str(tmp_path) in done.stdout + done.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_runs_precinct_as_its_own_user_inside_a_read_only_system(unit: str) -> None:
    sections = directives(DEPLOY / unit)
    service = sections["Service"]

    assert one(sections, "Service", "User") not in ("", "root")
    assert one(sections, "Service", "Group") == one(sections, "Service", "User")
    assert one(sections, "Service", "ProtectSystem") == "strict"
    assert one(sections, "Service", "NoNewPrivileges") == "true"
    assert one(sections, "Service", "PrivateTmp") == "true"
    assert one(sections, "Service", "ProtectHome") == "true"
    assert one(sections, "Service", "CapabilityBoundingSet") == ""
    assert one(sections, "Service", "Restart") == "on-failure"
    assert int(one(sections, "Unit", "StartLimitIntervalSec")) > 0
    assert int(one(sections, "Unit", "StartLimitBurst")) > 0
    assert one(sections, "Service", "RestartPreventExitStatus") == "2"  # bad configuration
    writable = one(sections, "Service", "ReadWritePaths").split()
    assert writable == [f"/var/lib/{one(sections, 'Service', 'StateDirectory')}"]
    assert "ExecStartPre" not in service


@pytest.mark.parametrize(
    ("unit", "command", "shipped_config"),
    [
        ("precinct-central.service", "central", "central.toml"),
        ("precinct-agent.service", "agent", "agent.toml"),
    ],
)
def test_the_command_is_one_precinct_accepts_with_the_shipped_settings(
    unit: str, command: str, shipped_config: str
) -> None:
    sections = directives(DEPLOY / unit)
    argv = shlex.split(one(sections, "Service", "ExecStart"))
    config = Path(argv[argv.index("--config") + 1])

    assert argv[0] == INSTALLED_PRECINCT
    args = build_parser(argv[1:]).parse_args(argv[1:])
    assert args.command == command
    assert config == Path("/etc/precinct") / shipped_config
    assert one(sections, "Service", "ConfigurationDirectory") == "precinct"


def test_the_shipped_settings_write_only_where_their_unit_may() -> None:
    central_dir = Path(one(directives(DEPLOY / UNITS[0]), "Service", "ReadWritePaths"))
    agent_dir = Path(one(directives(DEPLOY / UNITS[1]), "Service", "ReadWritePaths"))
    central = tomllib.loads((DEPLOY / "central.toml").read_text())
    agent = tomllib.loads((DEPLOY / "agent.toml").read_text())

    assert Path(central["db"]).is_relative_to(central_dir)
    assert Path(agent["data_dir"]).is_relative_to(agent_dir)
    for device in agent.get("devices", []):
        if "state_dir" in device:
            assert Path(device["state_dir"]).is_relative_to(agent_dir), device


def test_the_agent_may_open_serial_ports_and_reach_bluez() -> None:
    sections = directives(DEPLOY / "precinct-agent.service")

    groups = one(sections, "Service", "SupplementaryGroups").split()
    assert "dialout" in groups
    assert "bluetooth" in groups
    assert "PrivateDevices" not in sections["Service"]  # it would hide /dev/ttyUSB*
    assert "AF_UNIX" in one(sections, "Service", "RestrictAddressFamilies").split()


def test_the_broker_drop_in_restarts_mosquitto_within_a_limit() -> None:
    sections = directives(DEPLOY / "mosquitto.service.d" / "precinct.conf")

    assert one(sections, "Service", "Restart") == "on-failure"
    assert int(one(sections, "Unit", "StartLimitBurst")) > 0
    assert int(one(sections, "Service", "LimitNOFILE")) >= 4096
