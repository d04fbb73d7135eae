"""Fakes for the wristband tests: a recording sink and health, fleet options, a bad controller."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from bumble import ll

from devices.base import DeviceConfig, DeviceReading
from devices.wristband.bumble_backend import EmulatedController
from devices.wristband.config import WristbandSettings, parse_settings
from devices.wristband.driver import WristbandFleet

BAND_ADDRESS = "C0:FF:EE:00:04:17"
BAND_ID = "band-0417"
OTHER_ADDRESS = "C0:FF:EE:00:04:18"
OTHER_ID = "band-0418"

# Emulated radio, test time scale: a band advertises every 20 ms, presence is judged every
# 100 ms and a band is absent after 3 silent intervals.
FAST_OPTIONS: dict[str, Any] = {
    "backend": "bumble:in-process",
    "presence_interval": 0.1,
    "presence_missed": 3,
    "connect_timeout": 2.0,
    "gatt_timeout": 2.0,
    "watchdog_timeout": 5.0,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "heart_rate_alarm_after": 0.2,
}


def fleet_settings(bands: list[tuple[str, str]] | None = None, **options: Any) -> WristbandSettings:
    table = [
        {"id": band_id, "address": address}
        for band_id, address in (bands or [(BAND_ID, BAND_ADDRESS)])
    ]
    return parse_settings(
        DeviceConfig(
            "wristband", "wristbands-test", "ble", {"bands": table, **FAST_OPTIONS, **options}
        )
    )


class RecordingSink:
    """A ``ReadingSink`` that keeps every reading, and checks it as the agent's sink would."""

    def __init__(self) -> None:
        self.readings: list[DeviceReading] = []

    def __call__(self, reading: DeviceReading) -> None:
        # The agent's outbox takes strict JSON bodies and aware times.
        json.dumps(reading.body, allow_nan=False)
        assert reading.time.tzinfo is not None
        self.readings.append(reading)

    def kinds(self, band: str | None = None) -> list[str]:
        return [r.kind for r in self.readings if band is None or r.device == band]

    def find(self, kind: str, **body: Any) -> DeviceReading | None:
        return next(
            (
                r
                for r in self.readings
                if r.kind == kind and all(r.body.get(key) == value for key, value in body.items())
            ),
            None,
        )


class RecordingHealth:
    """A ``DeviceHealth`` that counts frames and errors and keeps availability changes."""

    def __init__(self) -> None:
        self.frames = 0
        self.errors: Counter[str] = Counter()
        self.availability: list[bool] = []

    def frame(self) -> None:
        self.frames += 1

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def available(self, online: bool) -> None:
        self.availability.append(online)


async def wait_until(
    condition: Callable[[], object], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll ``condition`` on the event loop until it is true, or fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    fleet: WristbandFleet, sink: RecordingSink, health: RecordingHealth
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``fleet`` for the duration of the block; a crash of ``run()`` fails the test."""
    task = asyncio.get_running_loop().create_task(fleet.run(sink, health), name="fleet")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class StallingController(EmulatedController):
    """A controller that can stop reporting advertisements silently, as BlueZ sometimes does.

    ``deaf_instances`` says how many controllers, in creation order, are deaf from the start;
    a reset of the radio creates a new controller, so a deaf one is cured only by a reset.
    """

    created: ClassVar[list[StallingController]] = []
    deaf_instances: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deaf = len(StallingController.created) < StallingController.deaf_instances
        StallingController.created.append(self)

    def on_advertising_pdu(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        if self.deaf:
            return
        super().on_advertising_pdu(pdu)

    def stall_scan(self) -> None:
        """Stop delivering reports while the host still believes it is scanning."""
        self.le_scan_enable = False
