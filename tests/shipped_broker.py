"""The shipped ``deploy/mosquitto.conf`` and ``deploy/precinct.acl`` on a real Mosquitto.

Only the paths, ports and the log destination are rewritten for a test's own directory; every
other line runs as shipped.
"""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

from tests.support import ROOT, Mosquitto, free_port, port_open, wait_until

SHIPPED_PKI_DIR = "/etc/mosquitto/precinct-pki/"


def shipped_config(
    workdir: Path, plain_port: int, tls_port: int, passwd: Path, pki_dir: Path
) -> str:
    """The shipped config with this test's ports and paths."""
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    for needed in ("listener 1883\n", "listener 8883\n", SHIPPED_PKI_DIR):
        assert needed in conf, f"deploy/mosquitto.conf no longer has {needed!r}"
    conf = (
        conf.replace("listener 1883\n", f"listener {plain_port} 127.0.0.1\n")
        .replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
        .replace(SHIPPED_PKI_DIR, f"{pki_dir}/")
        .replace("/etc/mosquitto/precinct.passwd", str(passwd))
        .replace("/etc/mosquitto/precinct.acl", str(ROOT / "deploy" / "precinct.acl"))
        .replace("/var/lib/mosquitto/", f"{workdir}/")
        .replace("log_dest syslog", f"log_dest file {workdir}/mosquitto.log")
    )
    # Started as root, Mosquitto would switch to the "mosquitto" user and fail to read the
    # test's files.
    return conf + f"\nuser {getpass.getuser()}\n"


def make_password_file(path: Path, users: dict[str, str]) -> None:
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )


class ShippedBroker(Mosquitto):
    """A Mosquitto running the shipped config; :attr:`url` is its TLS listener."""

    def __init__(self, workdir: Path, pki_dir: Path) -> None:
        super().__init__(workdir)
        self.tls_port = free_port()
        self.pki_dir = pki_dir
        passwd = workdir / "precinct.passwd"
        if not passwd.exists():
            make_password_file(passwd, {"precinct-central": "unused"})
        self.conf.write_text(shipped_config(workdir, self.port, self.tls_port, passwd, pki_dir))

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        super().start()
        wait_until(lambda: port_open(self.tls_port), 10, "the TLS listener")
