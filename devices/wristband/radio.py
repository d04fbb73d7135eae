"""The adapter as the fleet driver sees it: which bleak backends to use, and how to reset it.

The driver only ever talks bleak (``BleakScanner``, ``establish_connection``, ``BleakClient``).
A :class:`Radio` says which backend classes bleak should use (``None``: the platform's own, BlueZ
on the agents) and knows the last-resort recovery, resetting the adapter, which bleak has no API
for.

- :class:`PlatformRadio`: a real adapter through bleak's platform backend; reset powers the BlueZ
  adapter off and on over D-Bus (``org.bluez.Adapter1.Powered``), as ``bluetoothctl power off``
  followed by ``power on`` would.
- :class:`~devices.wristband.bumble_backend.BumbleRadio`: a bumble host, on a virtual link in
  this process or on a bumble transport to the ``precinct wristband simulate`` process.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

log = logging.getLogger(__name__)

BLUEZ_SERVICE = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
# BlueZ needs a moment between power off and on, or the controller may not re-initialise.
POWER_CYCLE_PAUSE = 1.0


class Radio(abc.ABC):
    """One adapter: bleak backend classes, opening, closing and resetting."""

    name: str

    @property
    @abc.abstractmethod
    def scanner_backend(self) -> type[BaseBleakScanner] | None:
        """Backend for ``BleakScanner(backend=...)``; ``None`` for the platform's."""

    @property
    @abc.abstractmethod
    def client_backend(self) -> type[BaseBleakClient] | None:
        """Backend for ``BleakClient(backend=...)``; ``None`` for the platform's."""

    def scanner_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``BleakScanner`` (the BlueZ adapter, for instance)."""
        return {}

    def client_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``BleakClient``, passed through ``establish_connection``."""
        return {}

    async def open(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Make the adapter ready; raises ``OSError`` or ``BleakError`` if it is not there."""

    async def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release the adapter."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Reset the adapter: the last step of the scan watchdog; the caller bounds the time."""


class PlatformRadio(Radio):
    """A real adapter through bleak's platform backend."""

    def __init__(self, adapter: str | None) -> None:
        self.adapter = adapter
        self.name = adapter or "default"

    @property
    def scanner_backend(self) -> type[BaseBleakScanner] | None:
        return None

    @property
    def client_backend(self) -> type[BaseBleakClient] | None:
        return None

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"bluez": {"adapter": self.adapter}} if self.adapter else {}

    def client_kwargs(self) -> dict[str, Any]:
        return {"bluez": {"adapter": self.adapter}} if self.adapter else {}

    async def reset(self) -> None:
        """Power-cycle the BlueZ adapter over the system D-Bus."""
        from dbus_fast import BusType, Message, MessageType, Variant
        from dbus_fast.aio import MessageBus

        path = f"/org/bluez/{self.adapter or 'hci0'}"
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            for powered in (False, True):
                reply = await bus.call(
                    Message(
                        destination=BLUEZ_SERVICE,
                        path=path,
                        interface="org.freedesktop.DBus.Properties",
                        member="Set",
                        signature="ssv",
                        body=[ADAPTER_INTERFACE, "Powered", Variant("b", powered)],
                    )
                )
                if reply is None or reply.message_type == MessageType.ERROR:
                    detail = reply.body if reply is not None else "no reply"
                    raise OSError(f"setting {path} Powered={powered} failed: {detail}")
                if not powered:
                    await asyncio.sleep(POWER_CYCLE_PAUSE)
        finally:
            bus.disconnect()
        log.warning("adapter %s power-cycled by the scan watchdog", path)
