"""Emulated wristbands for end-to-end tests: ``precinct wristband simulate`` in its own process,
and the ``[[devices]]`` table of an agent whose fleet hears them (its scanner covering a room)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from devices.wristband.simulator import band_address, band_id
from tests.support import Child, free_port, wait_until


@dataclass
class EmulatedBands:
    simulator: Child
    hci: str
    count: int

    def agent_config(self, path: Path, fleet: str, room: str | None) -> Path:
        """An agent configuration whose one wristband fleet hears every band (presence every
        0.5 s), its scanner covering ``room``."""
        bands = ", ".join(
            f'{{ id = "{band_id(n)}", address = "{band_address(n)}" }}'
            for n in range(1, self.count + 1)
        )
        path.write_text(
            f'[[devices]]\nkind = "wristband"\nid = "{fleet}"\ntransport = "ble"\n'
            "[devices.options]\n"
            f'backend = "bumble:{self.hci.replace("tcp-server", "tcp-client")}"\n'
            + (f'room = "{room}"\n' if room is not None else "")
            + f"presence_interval = 0.5\npresence_missed = 3\nbands = [{bands}]\n"
        )
        return path

    def open_next_strap(self) -> None:
        """SIGUSR1: the simulator opens the next band's strap, band 1 first."""
        self.simulator.process.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        self.simulator.stop()


def start_bands(root: Path, count: int, reclose_after: float | None = None) -> EmulatedBands:
    """``count`` bands on a virtual radio served on a free loopback port, heart rates every
    0.2 s; an opened strap closes again after ``reclose_after`` seconds (the simulator's default
    when None)."""
    hci = f"tcp-server:127.0.0.1:{free_port()}"
    args = ["wristband", "simulate", "--bands", str(count), "--hci", hci, "--seed", "3"]
    args += ["--advertising-interval", "50", "--heart-rate-period", "0.2"]
    if reclose_after is not None:
        args += ["--reclose-after", str(reclose_after)]
    simulator = Child(args, root / "bands.log")
    wait_until(lambda: "serving an HCI controller" in simulator.output(), 20, "the bands")
    return EmulatedBands(simulator, hci, count)
