"""Settings from file, environment and flags, and the errors people see for bad ones."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from central.settings import CentralSettings
from devices.backoff import Backoff
from edge_agent.settings import AgentSettings
from edge_agent.settings_source import ConfigError, load
from tests.support import ROOT


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'id = "from-file"\ndata-dir = "/var/lib/x"\nsynthetic = 5\nbroker = "mqtt://file:1883"\n'
    )
    env = {"PRECINCT_SYNTHETIC": "7.5", "PRECINCT_BROKER": "mqtt://env:1883"}
    settings = load(AgentSettings, config, {"broker": "mqtt://flag:1884"}, env)
    assert settings.id == "from-file"
    assert settings.data_dir == Path("/var/lib/x")
    assert settings.synthetic == 7.5
    assert settings.broker_url.host == "flag"
    assert settings.broker_url.port == 1884


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('id = "a"\ndata_dir = "/x"\nsynthtic = 1\n', "synthtic", "unknown setting"),
        ('id = "a"\ndata_dir = "/x"\nsynthetic = "fast"\n', "synthetic", "expected float"),
        ('id = "a"\ndata_dir = "/x"\noutbox_max = true\n', "outbox_max", "expected int"),
        ('id = "a/b"\ndata_dir = "/x"\n', "id", "must be"),
        ('data_dir = "/x"\n', "id", "required"),
        ('id = "a"\ndata_dir = "/x"\nbroker = "http://x"\n', "broker", "mqtt://"),
        ('id = "a"\ndata_dir = "/x"\noutbox_max = 0\n', "outbox_max", "greater than 0"),
        ('id = "a"\ndata_dir = "/x"\nreplay_keep_bytes = -1\n', "replay_keep_bytes", "negative"),
        ('id = "a"\ndata_dir = "/x"\ndisk_reserve_bytes = -1\n', "disk_reserve_bytes", "negative"),
        ('id = "a"\ndata_dir = "/x"\nwal_max_bytes = 0\n', "wal_max_bytes", "greater than 0"),
        (
            'id = "a"\ndata_dir = "/x"\ndisk_check_interval = 0.0\n',
            "disk_check_interval",
            "greater than 0",
        ),
        ("id = [", None, "not valid TOML"),
    ],
)
def test_bad_file_names_file_and_key(
    tmp_path: Path, text: str, key: str | None, message: str
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(AgentSettings, config, {}, {})
    assert caught.value.source == str(config)
    assert caught.value.key == key
    assert message in str(caught.value)


def test_bad_environment_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load(CentralSettings, None, {"db": "x.sqlite3"}, {"PRECINCT_BATCH_MAX": "many"})
    assert caught.value.source == "environment"
    assert caught.value.key == "PRECINCT_BATCH_MAX"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["agent", "--config", "{dir}/missing.toml"], "missing.toml: no such file"),
        (["agent", "--config", "{dir}/bad.toml"], "bad.toml: colour: unknown setting"),
        (["central", "--db", "{dir}/c.sqlite3", "--listen", "nowhere"], "listen"),
        (["central", "--db", "{dir}/notsqlite.sqlite3"], "not a usable SQLite file"),
        (
            ["agent", "--config", "{dir}/devices.toml"],
            "devices.toml: devices[1].kind: unknown device class 'toaster'",
        ),
        (["agent", "--config", "{dir}/nokind.toml"], "nokind.toml: devices[0].kind: a non-empty"),
    ],
)
def test_cli_stops_with_exit_2_and_a_message(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "bad.toml").write_text('id = "a1"\ndata_dir = "/tmp/x"\ncolour = "blue"\n')
    (tmp_path / "notsqlite.sqlite3").write_bytes(b"this is not a database" * 100)
    (tmp_path / "devices.toml").write_text(
        'id = "a1"\ndata_dir = "/tmp/x"\n[[devices]]\nkind = "gps"\nid = "g1"\n'
        'transport = "/dev/null"\n[[devices]]\nkind = "toaster"\nid = "t1"\n'
        'transport = "/dev/null"\n'
    )
    (tmp_path / "nokind.toml").write_text(
        'id = "a1"\ndata_dir = "/tmp/x"\n[[devices]]\nid = "g1"\ntransport = "/dev/x"\n'
    )
    argv = [a.format(dir=tmp_path) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent.command_line", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_every_subcommand_has_help() -> None:
    for argv in (
        ["--help"],
        ["agent", "--help"],
        ["central", "--help"],
        ["central", "token", "create", "--help"],
        ["demo", "--help"],
        ["bench", "ingest", "--help"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "edge_agent.command_line", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, argv
        assert "usage: precinct" in done.stdout


def test_backoff_is_capped_exponential_with_bounded_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    bases = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for delay, base in zip(delays, bases, strict=True):
        assert base <= delay <= base * 1.5
    backoff.reset()
    assert backoff.next_delay() <= 0.75


def test_shipped_example_configs_load() -> None:
    agent = load(AgentSettings, ROOT / "deploy" / "agent.toml", {}, {})
    assert agent.id == "station-01-gate"
    central = load(CentralSettings, ROOT / "deploy" / "central.toml", {}, {})
    assert central.shared_subscription


def test_device_options_may_sit_beside_the_common_keys_or_in_a_subtable(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'id = "a1"\ndata_dir = "/x"\n'
        '[[devices]]\nkind = "cabinet"\nid = "c1"\ntransport = "/dev/ttyUSB0"\naddress = 2\n'
        '[[devices]]\nkind = "gps"\nid = "g1"\ntransport = "/dev/ttyUSB1"\n'
        "[devices.options]\nbaudrate = 4800\n"
    )
    settings = load(AgentSettings, config, {}, {})
    assert [(d.kind, d.id, dict(d.options)) for d in settings.devices] == [
        ("cabinet", "c1", {"address": 2}),
        ("gps", "g1", {"baudrate": 4800}),
    ]
    config.write_text(
        'id = "a1"\ndata_dir = "/x"\n[[devices]]\nkind = "gps"\nid = "g1"\n'
        'transport = "/dev/x"\nbaudrate = 1\n[devices.options]\nbaudrate = 2\n'
    )
    with pytest.raises(ConfigError, match=r"devices\[0\]\.baudrate: given twice"):
        load(AgentSettings, config, {}, {})
    config.write_text(
        'id = "a1"\ndata_dir = "/x"\n[[devices]]\nkind = "gps"\nid = "g1"\n'
        'transport = "/dev/x"\n[[devices]]\nkind = "gps"\nid = "g1"\n'
        'transport = "/dev/y"\n'
    )
    with pytest.raises(ConfigError, match="used twice"):
        load(AgentSettings, config, {}, {})


def test_shipped_agent_example_builds_its_devices() -> None:
    from edge_agent.device_supervisor import build_devices

    settings = load(AgentSettings, ROOT / "deploy" / "agent.toml", {}, {})
    built = build_devices(settings.devices)
    assert [(config.kind, device.id) for config, device in built] == [
        ("cabinet", "cabinet-01"),
        ("wristband", "wristbands-gate"),
    ]


def test_legal_limits_and_clock_thresholds_come_from_config(tmp_path: Path) -> None:
    from scheduling.model import LegalBasis

    config = tmp_path / "central.toml"
    config.write_text(
        'db = "c.sqlite3"\nlimit_administrative = 24.0\n'
        'custody_yellow_fraction = 0.4\ntimezone = "Asia/Shanghai"\n'
    )
    settings = load(CentralSettings, config, {}, {"PRECINCT_EXIT_MINUTES": "45"})
    policy = settings.policy()
    assert policy.limit_minutes(LegalBasis.ADMINISTRATIVE) == 24 * 60
    assert policy.limit_minutes(LegalBasis.CRIMINAL_SUMMONS) == 12 * 60
    assert policy.limit_minutes(LegalBasis.VOLUNTARY) is None
    assert policy.exit_minutes == 45
    assert settings.thresholds().yellow_fraction == 0.4
    for bad, key in (
        ("custody_yellow_fraction = 0.9", "custody_yellow_fraction"),
        ("limit_administrative = 0", "limit_administrative"),
        ('timezone = "Mars/Olympus"', "timezone"),
    ):
        config.write_text(f'db = "c.sqlite3"\n{bad}\n')
        with pytest.raises(ConfigError) as caught:
            load(CentralSettings, config, {}, {})
        assert key in str(caught.value)
