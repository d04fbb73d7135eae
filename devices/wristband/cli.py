"""``precinct wristband …``: subcommands of the BLE wristband device class."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2

_SIMULATE_DESCRIPTION = """\
Run emulated BLE wristbands (bumble peripherals: Heart Rate, Battery and the custody service,
advertising the custody mirror) on a virtual radio in this process, until Ctrl-C.

There is no Bluetooth adapter involved. For each --hci transport the simulator serves one
emulated HCI controller whose radio is the bands' virtual link; an agent reaches the bands by
giving its wristband device the bumble backend with the matching client transport, e.g.
  --hci tcp-server:127.0.0.1:9110   ->  backend = "bumble:tcp-client:127.0.0.1:9110"
  --hci unix-server:/tmp/bands.sock ->  backend = "bumble:unix-client:/tmp/bands.sock"
One agent per --hci. The [[devices]] table to use is printed at start-up.

Bands notify a heart rate every --heart-rate-period seconds (a seeded random walk with rare
excursions); straps open at --open-strap times, at random (--strap-open-every), or when the
process receives SIGUSR1 (the next band in turn), and close again after --reclose-after.
"""


def _open_strap(text: str) -> tuple[int, float]:
    band, sep, at = text.partition("@")
    try:
        parsed = int(band), float(at)
    except ValueError:
        parsed = None
    if not sep or parsed is None:
        raise argparse.ArgumentTypeError(f"expected BAND@SECONDS (e.g. 2@30), got {text!r}")
    return parsed


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``wristband`` and its subcommands to the ``precinct`` parser."""
    wristband = commands.add_parser(
        "wristband",
        help="BLE wristbands",
        description="BLE wristbands: heart rate, strap, presence.",
    )
    sub = wristband.add_subparsers(dest="wristband_command", required=True, metavar="COMMAND")
    simulate = sub.add_parser(
        "simulate",
        help="run emulated wristbands for the demo (no adapter needed)",
        description=_SIMULATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument(
        "--bands", type=int, default=3, metavar="N", help="number of bands (default %(default)s)"
    )
    simulate.add_argument(
        "--hci",
        action="append",
        metavar="TRANSPORT",
        help="bumble transport serving a controller to one agent; repeatable "
        "(default tcp-server:127.0.0.1:9110)",
    )
    simulate.add_argument("--seed", type=int, help="seed for heart rates and random openings")
    simulate.add_argument(
        "--heart-rate-period",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between heart rate notifications (default %(default)s)",
    )
    simulate.add_argument(
        "--advertising-interval",
        type=float,
        default=500.0,
        metavar="MS",
        help="advertising interval in ms (default %(default)s)",
    )
    simulate.add_argument(
        "--open-strap",
        type=_open_strap,
        action="append",
        default=[],
        metavar="BAND@SECONDS",
        help="open band BAND's strap (1-based) SECONDS after start; repeatable",
    )
    simulate.add_argument(
        "--strap-open-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="mean seconds between random strap openings (default 0: never)",
    )
    simulate.add_argument(
        "--reclose-after",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="an opened strap closes again after this long (default %(default)s)",
    )
    simulate.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this long (default: until Ctrl-C)",
    )
    simulate.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="warning"
    )
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from devices.wristband.simulator import DEFAULT_HCI, SimulationPlan, Simulator

    try:
        plan = SimulationPlan(
            bands=args.bands,
            hci=tuple(args.hci or (DEFAULT_HCI,)),
            seed=args.seed,
            heart_rate_period=args.heart_rate_period,
            advertising_interval_ms=args.advertising_interval,
            strap_open_every=args.strap_open_every,
            reclose_after=args.reclose_after,
            open_strap=tuple(args.open_strap),
            duration=args.duration,
        )
    except ValueError as exc:
        print(f"precinct wristband simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    def report(line: str) -> None:
        print(line, flush=True)

    async def main() -> None:
        simulator = Simulator(plan, report)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, simulator.request_strap_open)
        report("agent configuration:\n" + plan.agent_config())
        try:
            await simulator.run(stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                loop.remove_signal_handler(signum)
        report("simulation stopped")

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"precinct wristband simulate: {exc}", file=sys.stderr)
        return 1
    return 0
