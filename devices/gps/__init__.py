"""GPS in escort vans: NMEA 0183 receivers on a serial port, or gpsd over TCP.

- :mod:`devices.gps.nmea` and :mod:`devices.gps.gpsd`: pure codecs (bytes in, fixes out);
- :mod:`devices.gps.filters`: outlier filters after Traccar's, pure;
- :mod:`devices.gps.driver`: :class:`~devices.gps.driver.GpsDevice`, the async driver;
- :mod:`devices.gps.simulator`: replays a recorded track over a pty, speaking real NMEA;
- :mod:`devices.gps.cli`: ``precinct gps decode`` and ``precinct gps simulate``.

This module stays light (the CLI imports the package to register its subcommands); the
factory and the driver load when a device is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devices.base import DeviceConfig
    from devices.gps.driver import GpsDevice

__all__ = ["create_device"]


def create_device(config: DeviceConfig) -> GpsDevice:
    """Build a GPS driver from a ``[[devices]]`` table; :class:`DeviceConfigError` if it is bad.

    See :mod:`devices.gps.factory` for the options.
    """
    from devices.gps.factory import create_device as build

    return build(config)
