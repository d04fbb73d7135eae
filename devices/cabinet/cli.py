"""``precinct cabinet simulate`` and ``precinct cabinet probe``.

Imports stay light here: the central CLI loads this module for every command; the simulators
and drivers are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devices.cabinet.driver import BoardInfo, SlotState, TagRead
    from devices.cabinet.modbus_sim import ModbusBoardModel
    from devices.cabinet.simulator import BoardModel

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

RUNTIME_HELP = """\
The first line on stdout is the port to give a driver or `precinct cabinet probe --port`
(a pty path such as /dev/pts/5; for --protocol modbus a socket:// URL).

While it runs, the board takes commands on stdin, one per line:
  force N          pry door N open while locked (a "forced open" event)
  open N           open door N (a forced open unless it was just unlocked)
  close N          close door N
  tamper           trip the enclosure switch (SCP/1 only)
  power            report a mains power failure (SCP/1 only)
  add N EPC        put an item with RFID tag EPC (hex) into slot N (SCP/1 only)
  remove N EPC     take that item out again (SCP/1 only)
  drop N           drop the next N replies
  corrupt N        corrupt the next N replies (SCP/1 only)
  busy N           answer the next N requests "busy"
  silent | answer  stop answering / answer again
  state            print every slot to stderr
SIGUSR1 forces the lowest-numbered closed door open. Ctrl-C (or SIGTERM) stops it, exit 0.
"""


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"precinct cabinet: {message}", file=sys.stderr)
    return code


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a probability (0..1)")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cabinet`` and its subcommands to the ``precinct`` parser."""
    cabinet = commands.add_parser(
        "cabinet",
        help="smart file cabinets: simulate a lock board, probe one",
        description="Smart file cabinets (SCP/1 or Modbus RTU lock boards).",
    )
    sub = cabinet.add_subparsers(dest="cabinet_command", required=True, metavar="COMMAND")

    simulate = sub.add_parser(
        "simulate",
        help="run a simulated lock board on a pty",
        description="Run a behavioural lock board on a pseudo-terminal (SCP/1) or on a\n"
        "socket (Modbus RTU) until Ctrl-C, injecting faults on request.",
        epilog=RUNTIME_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--slots", type=int, default=8, help="slots (default %(default)s)")
    simulate.add_argument(
        "--addr", type=int, default=1, help="board address 1..247 (default %(default)s)"
    )
    simulate.add_argument(
        "--protocol",
        choices=("scp1", "modbus"),
        default="scp1",
        help="wire protocol (default %(default)s)",
    )
    simulate.add_argument(
        "--drop-rate", type=_rate, default=0.0, metavar="P", help="probability that a reply is lost"
    )
    simulate.add_argument(
        "--corrupt-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="probability that a reply is corrupted (SCP/1)",
    )
    simulate.add_argument(
        "--busy-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help='probability that a request (Modbus: a lock write) is answered "busy"',
    )
    simulate.add_argument("--seed", type=int, help="seed of the fault injection")
    simulate.add_argument(
        "--empty",
        action="store_true",
        help="start with empty slots (default: one tagged item per slot)",
    )
    simulate.add_argument(
        "--tcp-port",
        type=int,
        default=0,
        metavar="PORT",
        help="Modbus only: listen on this TCP port (default: a free one)",
    )
    simulate.set_defaults(handler=_simulate)

    probe = sub.add_parser(
        "probe",
        help="print a board's info, slot status and inventory",
        description="Ask one lock board for its info, slot status and RFID inventory: the "
        "check a technician runs on site. Exit 1 if the board does not answer.",
    )
    probe.add_argument(
        "--port",
        required=True,
        metavar="URL",
        help="serial port path or pyserial URL (/dev/ttyUSB0, socket://h:p)",
    )
    probe.add_argument(
        "--addr", type=int, default=1, help="board address 1..247 (default %(default)s)"
    )
    probe.add_argument(
        "--protocol",
        choices=("scp1", "modbus"),
        default="scp1",
        help="wire protocol (default %(default)s)",
    )
    probe.add_argument("--slots", type=int, help="slot count (required for modbus)")
    probe.add_argument("--baudrate", type=int, default=9600, help="(default %(default)s)")
    probe.add_argument(
        "--timeout",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="deadline of one attempt (default %(default)s)",
    )
    probe.add_argument(
        "--retries",
        type=int,
        default=2,
        help="further attempts after silence (default %(default)s)",
    )
    probe.add_argument("--json", action="store_true", help="print JSON instead of tables")
    probe.add_argument("--verbose", action="store_true", help="log every exchange")
    probe.set_defaults(handler=_probe)


# -- simulate -----------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace) -> int:
    if not 1 <= args.addr <= 247:
        return _fail(f"--addr {args.addr} is outside 1..247")
    if not 1 <= args.slots <= 254:
        return _fail(f"--slots {args.slots} is outside 1..254")
    if not 0 <= args.tcp_port <= 65535:
        return _fail(f"--tcp-port {args.tcp_port} is not a port")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        asyncio.run(_simulate_async(args))
    except OSError as exc:
        return _fail(f"cannot start the simulator: {exc}", EXIT_FAILURE)
    return EXIT_OK


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _simulate_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if args.protocol == "modbus":
            await _simulate_modbus(args, stop)
        else:
            await _simulate_scp1(args, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            loop.remove_signal_handler(signum)


async def _simulate_scp1(args: argparse.Namespace, stop: asyncio.Event) -> None:
    import random

    from devices.cabinet.simulator import BoardModel, Faults, PtyBus

    faults = Faults(
        drop_rate=args.drop_rate,
        corrupt_rate=args.corrupt_rate,
        busy_rate=args.busy_rate,
        rng=random.Random(args.seed),
    )
    board = BoardModel(args.addr, args.slots, faults=faults)
    if not args.empty:
        board.stock()
    async with PtyBus([board]) as bus:
        print(bus.path, flush=True)
        _say(
            f"SCP/1 board {args.addr} ({args.slots} slots) on {bus.path}; "
            "commands on stdin (see --help), Ctrl-C stops"
        )
        await _serve(
            stop, lambda line: _scp1_command(board, line), lambda: _force_first_closed(board)
        )


async def _simulate_modbus(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from devices.cabinet.modbus_sim import ModbusBoardModel, ModbusBoardServer

    board = ModbusBoardModel(args.addr, args.slots)
    board.drop_rate, board.busy_rate = args.drop_rate, args.busy_rate
    if args.seed is not None:
        board.rng.seed(args.seed)
    async with ModbusBoardServer([board], port=args.tcp_port) as server:
        print(server.url, flush=True)
        _say(
            f"Modbus RTU lock board {args.addr} ({args.slots} slots) on {server.url}; "
            "commands on stdin (see --help), Ctrl-C stops"
        )
        await _serve(
            stop,
            lambda line: _modbus_command(board, line),
            lambda: _force_first_closed_modbus(board),
        )


async def _serve(
    stop: asyncio.Event, on_line: Callable[[str], str], on_usr1: Callable[[], str]
) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: _say(on_usr1()))
    pending = bytearray()
    stdin = sys.stdin.fileno()

    def readable() -> None:
        try:
            chunk = os.read(stdin, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(stdin)  # stdin closed: keep running, without commands
            return
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            text = line.decode(errors="replace").strip()
            if text:
                _say(on_line(text))

    try:
        loop.add_reader(stdin, readable)
        reading = True
    except (OSError, ValueError):
        reading = False  # stdin is a regular file or absent: signals only
    try:
        # The simulator runs until Ctrl-C or SIGTERM: that wait has no deadline on purpose.
        await stop.wait()
    finally:
        if reading:
            loop.remove_reader(stdin)


def _force_first_closed(board: BoardModel) -> str:
    for slot, model in board.slots.items():
        if not model.door_open:
            board.force_door(slot)
            return f"SIGUSR1: door {slot} forced open"
    return "SIGUSR1: every door is already open"


def _force_first_closed_modbus(board: ModbusBoardModel) -> str:
    for index, is_open in enumerate(board.doors):
        if not is_open:
            board.force_door(index + 1)
            return f"SIGUSR1: door {index + 1} forced open"
    return "SIGUSR1: every door is already open"


def _scp1_command(board: BoardModel, line: str) -> str:
    words = line.split()
    verb, rest = words[0].lower(), words[1:]
    try:
        if verb in ("force", "open", "close") and len(rest) == 1:
            slot = int(rest[0])
            action = {
                "force": board.force_door,
                "open": board.open_door,
                "close": board.close_door,
            }[verb]
            event = action(slot)
            return f"{verb} {slot}: " + (f"event {event.seq}" if event else "no change")
        if verb == "tamper" and not rest:
            return f"tamper: event {board.tamper().seq}"
        if verb == "power" and not rest:
            return f"power fail: event {board.power_fail().seq}"
        if verb in ("add", "remove") and len(rest) == 2:
            slot, epc = int(rest[0]), bytes.fromhex(rest[1])
            event = board.add_tag(slot, epc) if verb == "add" else board.remove_tag(slot, epc)
            return f"{verb} {slot} {epc.hex().upper()}: " + (
                f"event {event.seq}" if event else "no such tag"
            )
        if verb in ("drop", "corrupt", "busy") and len(rest) <= 1:
            count = int(rest[0]) if rest else 1
            setattr(board.faults, f"{verb}_next", count)
            return f"{verb}: next {count}"
        if verb in ("silent", "answer") and not rest:
            board.faults.silent = verb == "silent"
            return "silent" if board.faults.silent else "answering"
        if verb == "state" and not rest:
            return _scp1_state(board)
    except ValueError as exc:
        return f"{line!r}: {exc}"
    return f"{line!r}: unknown command (see --help)"


def _scp1_state(board: BoardModel) -> str:
    lines = [
        f"board {board.address}: {len(board.events)} events buffered, "
        f"{sum(board.unlocks.values())} unlocks"
    ]
    for slot in board.slots:
        state = board.state(slot)
        tags = ",".join(epc.hex().upper() for epc in board.slots[slot].tags) or "-"
        lines.append(
            f"  {slot:3d} door {'open' if state.door_open else 'closed'}"
            f"{' FORCED' if state.forced else ''}"
            f", {'unlocked' if state.unlocked else 'locked'}, tags {tags}"
        )
    return "\n".join(lines)


def _modbus_command(board: ModbusBoardModel, line: str) -> str:
    words = line.split()
    verb, rest = words[0].lower(), words[1:]
    try:
        if verb in ("force", "open", "close") and len(rest) == 1:
            slot = int(rest[0])
            if not 1 <= slot <= board.slot_count:
                return f"no slot {slot}"
            {"force": board.force_door, "open": board.open_door, "close": board.close_door}[verb](
                slot
            )
            return f"{verb} {slot}"
        if verb in ("drop", "busy") and len(rest) <= 1:
            count = int(rest[0]) if rest else 1
            setattr(board, f"{verb}_next", count)
            return f"{verb}: next {count}"
        if verb in ("silent", "answer") and not rest:
            board.silent = verb == "silent"
            return "silent" if board.silent else "answering"
        if verb == "state" and not rest:
            return "\n".join(
                f"  {n:3d} door {'open' if board.doors[n - 1] else 'closed'}, "
                f"{'unlocked' if board.unlocked(n) else 'locked'}, "
                f"{board.unlocks[n - 1]} unlocks"
                for n in range(1, board.slot_count + 1)
            )
    except ValueError as exc:
        return f"{line!r}: {exc}"
    return f"{line!r}: unknown command (see --help)"


# -- probe --------------------------------------------------------------------------------------


def _probe(args: argparse.Namespace) -> int:
    if not 1 <= args.addr <= 247:
        return _fail(f"--addr {args.addr} is outside 1..247")
    if args.protocol == "modbus" and args.slots is None:
        return _fail("--slots is required for --protocol modbus")
    if args.slots is not None and not 1 <= args.slots <= 254:
        return _fail(f"--slots {args.slots} is outside 1..254")
    if not 0.01 <= args.timeout <= 30 or not 0 <= args.retries <= 10:
        return _fail("--timeout must be 0.01..30 s and --retries 0..10")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # pymodbus logs every unanswered request at ERROR; the summary below says it once.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return asyncio.run(_probe_async(args))


async def _probe_async(args: argparse.Namespace) -> int:
    from devices.cabinet import build_driver
    from devices.cabinet.config import CabinetOptions
    from devices.cabinet.errors import (
        BoardSilentError,
        BoardStatusError,
        CabinetProtocolError,
        TransportError,
    )

    options = CabinetOptions(
        protocol=args.protocol,
        address=args.addr,
        slots=args.slots,
        baudrate=args.baudrate,
        request_timeout=args.timeout,
        retries=args.retries,
        busy_retries=2,
    )
    driver = build_driver(args.port, options)
    try:
        async with driver:
            info = await driver.info()
            slots = await driver.slot_status()
            tags = await driver.inventory() if driver.has_rfid else None
    except BoardSilentError as exc:
        return _fail(f"{exc}; check the address, baud rate and wiring (A/B swapped?)", EXIT_FAILURE)
    except TransportError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except BoardStatusError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except CabinetProtocolError as exc:
        return _fail(f"board {args.addr} answers, but not in {args.protocol}: {exc}", EXIT_FAILURE)
    if args.json:
        print(json.dumps(_report(args, info, slots, tags), indent=2))
    else:
        print(_render(args, info, slots, tags))
    return EXIT_OK


def _report(
    args: argparse.Namespace,
    info: BoardInfo,
    slots: tuple[SlotState, ...],
    tags: tuple[TagRead, ...] | None,
) -> dict[str, Any]:
    from devices.cabinet.device import slot_body, tag_body

    return {
        "port": args.port,
        "address": args.addr,
        "protocol": info.protocol,
        "version": info.version,
        "model": info.model,
        "slot_count": info.slot_count,
        "slots": [slot_body(state) for state in slots],
        "tags": None if tags is None else [tag_body(tag) for tag in tags],
    }


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _render(
    args: argparse.Namespace,
    info: BoardInfo,
    slots: tuple[SlotState, ...],
    tags: tuple[TagRead, ...] | None,
) -> str:
    version = f" v{info.version}" if info.version else ""
    lines = [
        f"board {args.addr} on {args.port}: {info.protocol}{version}, "
        f"model {info.model}, {info.slot_count} slots",
        "",
        "slot  door    lock      item  fault  forced",
    ]
    for state in slots:
        lines.append(
            f"{state.slot:4d}  {'open' if state.door_open else 'closed':6s}  "
            f"{'unlocked' if state.unlocked else 'locked':8s}  "
            f"{_yes(state.item_present):4s}  {_yes(state.fault):5s}  "
            f"{_yes(state.forced)}"
        )
    lines.append("")
    if tags is None:
        lines.append("RFID inventory: not supported by this board")
    else:
        lines.append(f"RFID inventory: {len(tags)} tag{'s' if len(tags) != 1 else ''}")
        if tags:
            lines.append("slot  rssi  epc")
            lines.extend(f"{tag.slot:4d}  {tag.rssi:4d}  {tag.epc.hex().upper()}" for tag in tags)
    return "\n".join(lines)
