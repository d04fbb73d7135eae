"""Emulated bands for the demo: ``precinct wristband simulate``.

The bands are :class:`~devices.wristband.emulator.EmulatedBand` peripherals on one bumble
virtual link (``LocalLink``) in this process. An agent in *another* process reaches them
through a bumble HCI transport: for every ``--hci`` spec, the simulator puts one more bumble
``Controller`` on the link and serves its HCI on that transport. The agent's bumble backend opens
the matching client transport (``backend = "bumble:tcp-client:127.0.0.1:9110"``), its host talks
HCI to that controller as it would to a USB dongle, and the controller's radio is the link the
bands are on. This is bumble's own arrangement (``bumble-controllers``), so it needs no adapter,
no root and no kernel module.

Why TCP by default: ``tcp-server:`` works on every machine, needs no file to clean up, and is
what bumble's tools use. A ``unix-server:PATH`` socket works too. Each HCI transport serves
one host at a time: one ``--hci`` per agent. A host that disconnects and reconnects meets the
same controller (its HCI reset does not clear bumble's emulated controller state).

While running, every band notifies a heart rate every ``heart_rate_period`` (a random walk
around a resting rate, with an occasional excursion), and straps open at scheduled times
(``--open-strap BAND@SECONDS``), on SIGUSR1 (the next band in turn), or at random (mean gap
``--strap-open-every``); an opened strap closes again after ``--reclose-after`` seconds.
Randomness comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from bumble.transport import open_transport
from bumble.transport.common import Transport

from devices.wristband.bumble_backend import EmulatedController
from devices.wristband.emulator import EmulatedBand, new_link

log = logging.getLogger(__name__)

DEFAULT_HCI = "tcp-server:127.0.0.1:9110"
RESTING_RANGE = (55, 95)


def band_id(index: int) -> str:
    """The id of the ``index``-th simulated band (1-based): ``band-001``."""
    return f"band-{index:03d}"


def band_address(index: int) -> str:
    """The address of the ``index``-th simulated band: a random static address (top bits 11)."""
    return f"C0:FF:EE:00:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}"


def client_spec(server_spec: str) -> str:
    """The bumble transport an agent opens to reach a controller served on ``server_spec``."""
    scheme, _, rest = server_spec.partition(":")
    if scheme == "tcp-server":
        host, _, port = rest.rpartition(":")
        return f"tcp-client:{'127.0.0.1' if host in ('_', '', '0.0.0.0') else host}:{port}"  # noqa: S104 - mapping a wildcard to loopback
    if scheme == "unix-server":
        return f"unix-client:{rest}"
    return server_spec


@dataclass(frozen=True, slots=True)
class SimulationPlan:
    """What to simulate."""

    bands: int = 3
    hci: tuple[str, ...] = (DEFAULT_HCI,)
    seed: int | None = None
    heart_rate_period: float = 1.0
    advertising_interval_ms: float = 500.0
    strap_open_every: float = 0.0
    reclose_after: float = 20.0
    open_strap: tuple[tuple[int, float], ...] = ()
    duration: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.bands <= 0xFFFF:
            raise ValueError("bands must be 1-65535")
        for index, _at in self.open_strap:
            if not 1 <= index <= self.bands:
                raise ValueError(f"--open-strap names band {index}, but there are {self.bands}")

    def agent_config(self, fleet: str = "wristbands-sim") -> str:
        """A ``[[devices]]`` table an agent can use to reach these bands (first transport)."""
        bands = ",\n             ".join(
            f'{{ id = "{band_id(i)}", address = "{band_address(i)}" }}'
            for i in range(1, self.bands + 1)
        )
        backend = f"bumble:{client_spec(self.hci[0])}" if self.hci else "bleak"
        return (
            f'[[devices]]\nkind = "wristband"\nid = "{fleet}"\ntransport = "ble"\n'
            f'[devices.options]\nbackend = "{backend}"\nbands = [{bands}]\n'
        )


class Simulator:
    """Bands on a virtual link, controllers served to agents, and the scenario that drives them."""

    def __init__(self, plan: SimulationPlan, report: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.report = report
        self.rng = random.Random(plan.seed)
        self.link = new_link()
        self.bands: list[EmulatedBand] = []
        self._transports: list[Transport] = []
        self._next_band = 0
        self._requests: asyncio.Queue[int] = asyncio.Queue()

    def request_strap_open(self) -> None:
        """Open the next band's strap (round robin); safe to call from a signal handler."""
        self._next_band = self._next_band % self.plan.bands + 1
        self._requests.put_nowait(self._next_band)

    async def start(self) -> None:
        """Serve the controllers and power the bands on."""
        for number, spec in enumerate(self.plan.hci, start=1):
            transport = await open_transport(spec)
            self._transports.append(transport)
            EmulatedController(
                f"agent-{number}",
                host_source=transport.source,
                host_sink=transport.sink,
                link=self.link,
                public_address=f"F0:F0:F0:00:00:{number & 0xFF:02X}",
            )
            self.report(
                f"serving an HCI controller on {spec} (agent backend: bumble:{client_spec(spec)})"
            )
        for index in range(1, self.plan.bands + 1):
            band = EmulatedBand(
                self.link,
                band_address(index),
                band_id(index),
                advertising_interval_ms=self.plan.advertising_interval_ms,
                heart_rate=self.rng.randint(*RESTING_RANGE),
                battery=self.rng.randint(40, 100),
            )
            await band.start()
            self.bands.append(band)
            self.report(f"{band.name} advertising as {band.address}")

    async def stop(self) -> None:
        """Power the bands off and close the transports."""
        for band in self.bands:
            await band.stop()
        for transport in self._transports:
            await transport.close()
        self._transports.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Run the scenario until ``stop`` is set (or the plan's duration ends)."""
        await self.start()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._heartbeat(band), name=f"sim-hr-{band.name}")
                    for band in self.bands
                ]
                tasks.append(group.create_task(self._straps(), name="sim-straps"))
                for index, at in self.plan.open_strap:
                    tasks.append(
                        group.create_task(self._open_later(index, at), name=f"sim-open-{index}")
                    )
                if self.plan.duration is not None:
                    try:
                        async with asyncio.timeout(self.plan.duration):
                            await stop.wait()
                    except TimeoutError:
                        pass
                else:
                    await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            await asyncio.shield(self.stop())

    async def _heartbeat(self, band: EmulatedBand) -> None:
        while True:
            await asyncio.sleep(self.plan.heart_rate_period)
            rate = band.heart_rate + self.rng.randint(-3, 3)
            if self.rng.random() < 0.01:
                # An excursion: a panic attack or a faint, the thing the alarm exists for.
                rate = self.rng.choice((35, 170))
                self.report(f"{band.name} heart rate jumps to {rate}")
            elif not RESTING_RANGE[0] <= rate <= RESTING_RANGE[1]:
                rate = max(RESTING_RANGE[0], min(RESTING_RANGE[1], rate))
            await band.notify_heart_rate(rate)

    async def _straps(self) -> None:
        every = self.plan.strap_open_every
        async with asyncio.TaskGroup() as group:
            group.create_task(self._serve_requests(group), name="sim-requests")
            while every > 0:
                await asyncio.sleep(self.rng.expovariate(1.0 / every))
                group.create_task(self._open(self.rng.randint(1, self.plan.bands)))

    async def _serve_requests(self, group: asyncio.TaskGroup) -> None:
        while True:
            index = await self._requests.get()
            group.create_task(self._open(index), name=f"sim-open-{index}")

    async def _open_later(self, index: int, at: float) -> None:
        await asyncio.sleep(at)
        await self._open(index)

    async def _open(self, index: int) -> None:
        band = self.bands[index - 1]
        if not band.status.strap_closed:
            return
        await band.open_strap()
        self.report(f"{band.name} strap OPENED (event_seq {band.event_seq})")
        await asyncio.sleep(self.plan.reclose_after)
        await band.close_strap()
        self.report(f"{band.name} strap closed again (event_seq {band.event_seq})")
