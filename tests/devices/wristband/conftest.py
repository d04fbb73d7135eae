"""Emulated bands and a bumble radio on one virtual link, torn down after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bumble.link import LocalLink

from devices.wristband.bumble_backend import BumbleRadio
from devices.wristband.emulator import EmulatedBand, new_link
from tests.devices.wristband.support import (
    BAND_ADDRESS,
    BAND_ID,
    OTHER_ADDRESS,
    OTHER_ID,
    StallingController,
)


@pytest.fixture
async def link() -> LocalLink:
    return new_link()


@pytest.fixture
async def band(link: LocalLink) -> AsyncIterator[EmulatedBand]:
    emulated = EmulatedBand(link, BAND_ADDRESS, BAND_ID, advertising_interval_ms=20)
    await emulated.start()
    yield emulated
    await emulated.stop()


@pytest.fixture
async def other_band(link: LocalLink) -> AsyncIterator[EmulatedBand]:
    emulated = EmulatedBand(
        link, OTHER_ADDRESS, OTHER_ID, advertising_interval_ms=20, heart_rate=64, battery=55
    )
    await emulated.start()
    yield emulated
    await emulated.stop()


@pytest.fixture
async def radio(link: LocalLink) -> AsyncIterator[BumbleRadio]:
    """A radio for tests that drive bleak directly; the fleet opens its own."""
    bumble_radio = BumbleRadio.on_link(link)
    await bumble_radio.open()
    yield bumble_radio
    await bumble_radio.close()


@pytest.fixture
def stalling() -> type[StallingController]:
    StallingController.created = []
    StallingController.deaf_instances = 0
    return StallingController
