"""The device supervisor batches telemetry into one outbox hand-over and never delays an event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from devices.base import DeviceConfig, DeviceHealth, DeviceReading, ReadingRefused, ReadingSink
from edge_agent.device_supervisor import TELEMETRY_BATCH_SECONDS, DeviceSupervisor
from edge_agent.outbox import EventsRefusedError, Reading
from edge_agent.wire import AVAILABILITY_KIND, MessageClass
from monitoring.agent_metrics import AgentMetrics


class ScriptedDevice:
    """Emits the readings it is given, as a driver's callbacks would, then waits."""

    def __init__(self, script: list[DeviceReading | float]) -> None:
        self.script = script
        self.event_taken_at: int | None = None

    @property
    def id(self) -> str:
        return "dev"

    async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
        health.available(True)
        for step in self.script:
            if isinstance(step, float):
                await asyncio.sleep(step)
            else:
                sink(step)
        await asyncio.Event().wait()

    async def command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        return {}


def reading(kind: str, event: bool = False) -> DeviceReading:
    return DeviceReading("dev", kind, datetime.now(UTC), {"k": kind}, event=event)


async def run_for(device: ScriptedDevice, seconds: float) -> list[list[Reading]]:
    batches: list[list[Reading]] = []

    def submit(readings: list[Reading]) -> None:
        batches.append(list(readings))

    config = DeviceConfig("test", "dev", "none")
    supervisor = DeviceSupervisor(
        [(config, device)], AgentMetrics.create(CollectorRegistry()), submit
    )
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    return batches


def kinds(batches: list[list[Reading]]) -> list[list[str]]:
    return [[item.kind for item in batch] for batch in batches]


def test_telemetry_within_the_window_shares_one_submit() -> None:
    device = ScriptedDevice([reading(f"t{n}") for n in range(20)])
    batches = asyncio.run(run_for(device, TELEMETRY_BATCH_SECONDS * 4))
    assert kinds(batches) == [[AVAILABILITY_KIND], [f"t{n}" for n in range(20)]]
    assert all(item.cls is MessageClass.TELEMETRY for item in batches[1])


def test_an_event_goes_at_once_after_the_telemetry_before_it() -> None:
    device = ScriptedDevice(
        [reading("t1"), reading("t2"), reading("door", event=True), reading("t3")]
    )
    batches = asyncio.run(run_for(device, TELEMETRY_BATCH_SECONDS * 4))
    assert kinds(batches) == [[AVAILABILITY_KIND], ["t1", "t2", "door"], ["t3"]]
    assert batches[1][2].cls is MessageClass.EVENT


def test_telemetry_waiting_at_stop_is_not_lost() -> None:
    device = ScriptedDevice([reading("t1")])
    # Stopped well inside the batching window.
    batches = asyncio.run(run_for(device, TELEMETRY_BATCH_SECONDS / 10))
    assert ["t1"] in kinds(batches)


def test_readings_further_apart_than_the_window_go_separately() -> None:
    gap = TELEMETRY_BATCH_SECONDS * 3
    device = ScriptedDevice([reading("t1"), gap, reading("t2")])
    batches = asyncio.run(run_for(device, gap * 3))
    assert kinds(batches) == [[AVAILABILITY_KIND], ["t1"], ["t2"]]


class RefusingOutbox:
    """Refuses every event while ``full``, as the agent's submit does on a spent reserve."""

    def __init__(self) -> None:
        self.full = True
        self.taken: list[Reading] = []

    def __call__(self, readings: list[Reading]) -> None:
        events = [r for r in readings if r.cls is MessageClass.EVENT]
        if self.full and events:
            raise EventsRefusedError(events, len(readings) - len(events))
        self.taken.extend(readings)


def test_a_refused_event_reaches_the_device_and_a_refused_availability_is_kept() -> None:
    outbox = RefusingOutbox()
    refusals: list[str] = []

    class EventDevice(ScriptedDevice):
        async def run(self, sink: ReadingSink, health: DeviceHealth) -> None:
            health.available(True)
            try:
                sink(reading("door", event=True))
            except ReadingRefused:
                refusals.append("door")
            await asyncio.Event().wait()

    async def scenario() -> None:
        config = DeviceConfig("test", "dev", "none")
        supervisor = DeviceSupervisor(
            [(config, EventDevice([]))], AgentMetrics.create(CollectorRegistry()), outbox
        )
        task = asyncio.create_task(supervisor.run())
        await asyncio.sleep(TELEMETRY_BATCH_SECONDS)
        assert refusals == ["door"]
        assert outbox.taken == []
        outbox.full = False
        supervisor.retry()  # the disk has room again
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)

    asyncio.run(scenario())
    assert [(r.kind, r.body_json) for r in outbox.taken] == [
        (AVAILABILITY_KIND, '{"online": true, "class": "test"}')
    ]
