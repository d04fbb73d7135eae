"""Smart file cabinets: lock boards with doors, item sensors and RFID, on RS-232/RS-485.

Two wire protocols sit behind one driver interface (:class:`CabinetDriver`): SCP/1
(:mod:`devices.cabinet.scp1`, pure codec; :mod:`devices.cabinet.scp1_driver`) and Modbus RTU
lock boards (:mod:`devices.cabinet.modbus_driver`, through pymodbus). :class:`CabinetDevice`
polls a board, keeps the event cursor on disk and carries out ``unlock``. The simulators
(:mod:`devices.cabinet.simulator`, :mod:`devices.cabinet.modbus_sim`) speak the same bytes and
back the tests and ``precinct cabinet simulate``.
"""

from __future__ import annotations

from devices.base import DeviceConfig, DeviceConfigError
from devices.cabinet.config import CabinetOptions, parse_options
from devices.cabinet.cursor import EventCursor
from devices.cabinet.device import CabinetDevice
from devices.cabinet.driver import BoardInfo, CabinetDriver
from devices.cabinet.errors import (
    BoardSilentError,
    BoardStatusError,
    CabinetError,
    CabinetProtocolError,
    TransportError,
)

__all__ = [
    "BoardInfo",
    "BoardSilentError",
    "BoardStatusError",
    "CabinetDevice",
    "CabinetDriver",
    "CabinetError",
    "CabinetOptions",
    "CabinetProtocolError",
    "TransportError",
    "build_driver",
    "create_device",
]


def build_driver(transport: str, options: CabinetOptions) -> CabinetDriver:
    """The driver for ``options.protocol`` on ``transport`` (a serial path or pyserial URL)."""
    if options.protocol == "modbus":
        # pymodbus is imported only for Modbus cabinets.
        from devices.cabinet.modbus_driver import ModbusDriver

        if options.slots is None:
            raise DeviceConfigError("slots", "a Modbus lock board needs its slot count")
        return ModbusDriver(
            transport,
            options.address,
            slots=options.slots,
            baudrate=options.baudrate,
            request_timeout=options.request_timeout,
            retries=options.retries,
            busy_retries=options.busy_retries,
            busy_delay=options.busy_delay,
            open_timeout=options.open_timeout,
        )
    from devices.cabinet.scp1_driver import Scp1Driver

    return Scp1Driver(
        transport,
        options.address,
        baudrate=options.baudrate,
        request_timeout=options.request_timeout,
        retries=options.retries,
        busy_retries=options.busy_retries,
        busy_delay=options.busy_delay,
        open_timeout=options.open_timeout,
    )


def create_device(config: DeviceConfig) -> CabinetDevice:
    """Build a cabinet from its ``[[devices]]`` table; raises ``DeviceConfigError``."""
    options = parse_options(config)
    driver = build_driver(config.transport, options)
    cursor = None
    if driver.buffered_events and options.state_dir is not None:
        cursor = EventCursor(options.state_dir, config.id, options.address)
    return CabinetDevice(config.id, options, driver, cursor)
