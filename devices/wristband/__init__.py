"""BLE wristbands: heart rate, battery, strap/tamper custody state and presence.

One :class:`WristbandFleet` drives all the bands of an agent through one shared scanner; each
reading's ``device`` is the band's id (see :mod:`devices.wristband.driver` for why the fleet,
not the band, is the device). Build it with :func:`create_device` from a ``[[devices]]`` table
(options in :mod:`devices.wristband.config`).

Modules:

- :mod:`~devices.wristband.profile`: UUIDs (the custody service's generated base UUID), company
  id, control point opcodes.
- :mod:`~devices.wristband.codec`: pure codecs for the characteristics and the advertisement
  mirror; :mod:`~devices.wristband.gap`: advertising data parser.
- :mod:`~devices.wristband.alarms`, :mod:`~devices.wristband.presence`,
  :mod:`~devices.wristband.watchdog`: pure state machines taking ``now``.
- :mod:`~devices.wristband.driver`: the fleet on bleak and bleak-retry-connector.
- :mod:`~devices.wristband.bumble_backend`: a bleak backend over bumble;
  :mod:`~devices.wristband.emulator` and :mod:`~devices.wristband.simulator`: emulated bands.
- :mod:`~devices.wristband.cli`: ``precinct wristband simulate``.
"""

from __future__ import annotations

import importlib.util

from devices.base import DeviceConfig, DeviceConfigError
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
    decode_advert_mirror,
    decode_battery_level,
    decode_custody_status,
    decode_heart_rate,
    encode_advert_mirror,
    encode_battery_level,
    encode_custody_status,
    encode_heart_rate,
)
from devices.wristband.config import BandSpec, WristbandSettings, parse_settings
from devices.wristband.driver import WristbandFleet
from devices.wristband.errors import WristbandProtocolError

__all__ = [
    "AdvertMirror",
    "BandSpec",
    "CustodyFlags",
    "CustodyStatus",
    "HeartRateMeasurement",
    "WristbandFleet",
    "WristbandProtocolError",
    "WristbandSettings",
    "create_device",
    "decode_advert_mirror",
    "decode_battery_level",
    "decode_custody_status",
    "decode_heart_rate",
    "encode_advert_mirror",
    "encode_battery_level",
    "encode_custody_status",
    "encode_heart_rate",
]


def create_device(config: DeviceConfig) -> WristbandFleet:
    """The fleet for one ``[[devices]]`` table; raises ``DeviceConfigError`` naming the key."""
    settings = parse_settings(config)
    # An agent installed with only the agent extra has bleak, not bumble: say so at start-up
    # rather than fail at every reconnect.
    if settings.bumble_transport is not None and importlib.util.find_spec("bumble") is None:
        raise DeviceConfigError(
            "backend",
            "the bumble backend needs bumble, which the demo extra installs: "
            "pip install 'precinct[demo]'",
        )
    return WristbandFleet(settings)
