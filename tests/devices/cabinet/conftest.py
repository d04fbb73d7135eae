"""Fixtures: a simulated board on a real pty, and a bus registry per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devices.cabinet.bus import BusRegistry
from devices.cabinet.simulator import BoardModel, PtyBus


@pytest.fixture
def buses() -> BusRegistry:
    """A bus registry of the test's own, so tests never share a port by accident."""
    return BusRegistry()


@pytest.fixture
def board() -> BoardModel:
    model = BoardModel(address=1, slots=4)
    model.stock()
    return model


@pytest.fixture
async def pty_bus(board: BoardModel) -> AsyncIterator[PtyBus]:
    async with PtyBus([board]) as bus:
        yield bus
