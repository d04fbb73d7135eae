"""Fakes that ship as test code: a recording sink and health, a running device, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.base import DeviceReading, ReadingRefused
from devices.cabinet.bus import BusRegistry
from devices.cabinet.config import CabinetOptions
from devices.cabinet.cursor import EventCursor
from devices.cabinet.device import CabinetDevice
from devices.cabinet.scp1_driver import Scp1Driver

# Deadlines on a test's time scale: a pty answers in well under a millisecond.
REQUEST_TIMEOUT = 0.1
POLL_INTERVAL = 0.02


class RecordingSink:
    """Keeps every reading; ``fail_after`` makes it fail, ``refuse_events`` refuse every event
    as the agent does when its disk is full."""

    def __init__(self) -> None:
        self.readings: list[DeviceReading] = []
        self.fail_after: int | None = None
        self.refuse_events = False
        self.refused = 0

    def __call__(self, reading: DeviceReading) -> None:
        if self.fail_after is not None and len(self.readings) >= self.fail_after:
            raise RuntimeError("sink refuses the reading")
        if self.refuse_events and reading.event:
            self.refused += 1
            raise ReadingRefused("disk full")
        self.readings.append(reading)

    def kinds(self, kind: str) -> list[DeviceReading]:
        return [r for r in self.readings if r.kind == kind]

    def events(self) -> list[DeviceReading]:
        return [r for r in self.readings if r.event]


class RecordingHealth:
    """Counts frames and errors by kind, and keeps the availability changes in order."""

    def __init__(self) -> None:
        self.frames = 0
        self.errors: dict[str, int] = {}
        self.availability: list[bool] = []

    def frame(self) -> None:
        self.frames += 1

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def available(self, online: bool) -> None:
        self.availability.append(online)


async def eventually(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Wait until ``condition()`` holds, or fail after ``within`` seconds."""
    step = 0.005
    for _ in range(int(within / step)):
        if condition():
            return
        await asyncio.sleep(step)
    if not condition():
        pytest.fail(f"timed out after {within} s waiting for {what}")


def make_driver(
    port: str, buses: BusRegistry, address: int = 1, *, retries: int = 2, busy_retries: int = 2
) -> Scp1Driver:
    """An SCP/1 driver with test-sized deadlines."""
    return Scp1Driver(
        port,
        address,
        request_timeout=REQUEST_TIMEOUT,
        retries=retries,
        busy_retries=busy_retries,
        busy_delay=0.01,
        open_timeout=2.0,
        buses=buses,
    )


def make_device(
    port: str,
    buses: BusRegistry,
    state_dir: Path,
    *,
    device_id: str = "cab-1",
    address: int = 1,
    retries: int = 2,
    inventory_interval: float = 30.0,
    status_interval: float = 60.0,
) -> CabinetDevice:
    """A cabinet polling every 20 ms, its cursor in ``state_dir``."""
    options = CabinetOptions(
        protocol="scp1",
        address=address,
        poll_interval=POLL_INTERVAL,
        request_timeout=REQUEST_TIMEOUT,
        retries=retries,
        busy_delay=0.01,
        inventory_interval=inventory_interval,
        status_interval=status_interval,
        state_dir=state_dir,
    )
    driver = make_driver(port, buses, address, retries=retries)
    return CabinetDevice(device_id, options, driver, EventCursor(state_dir, device_id, address))


class Running:
    """A device's ``run`` as a task, with its sink and health; stopped by cancelling."""

    def __init__(self, device: CabinetDevice) -> None:
        self.device = device
        self.sink = RecordingSink()
        self.health = RecordingHealth()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Running:
        self.task = asyncio.create_task(
            self.device.run(self.sink, self.health), name=f"device-{self.device.id}"
        )
        return self

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        async with asyncio.timeout(5):
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    async def __aenter__(self) -> Running:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
