"""A ``precinct`` command under a CPU-time sampling profiler: where a process's CPU goes.

``python -m bench.devices_sampler --out FILE [--interval SECONDS] [--now] -- COMMAND ARGS…``
runs ``precinct COMMAND ARGS…`` in this process. Sampling starts when the process receives
SIGUSR2 (or at once with ``--now``) and stops at the next SIGUSR2, so that start-up and warm-up
stay out of the figures. While it runs, ``ITIMER_PROF`` is armed: every ``interval`` of CPU the
process uses (user and system, all threads), SIGPROF makes the main thread record its Python
stack. Samples therefore follow CPU time, not wall time: an agent waiting in epoll is not
sampled, a frame that waits in a C call (SQLite, a socket write) is charged for it. When the
command returns (SIGTERM stops an agent cleanly), the stacks go to FILE as JSON.

Used by ``precinct bench devices --profile``; the figures it prints are shares of samples.
Cost: one handler call per sample, a few microseconds: well under 1 % of the profiled process's
CPU. The kernel checks the timer at clock ticks, so samples may come further apart than
``interval`` (4 ms with HZ=250); the bench prints the spacing it got.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import sysconfig
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, FrameType

DEFAULT_INTERVAL = 0.002
_ROOT = Path(__file__).resolve().parents[1]
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def frame_key(code: CodeType, names: dict[CodeType, str]) -> str:
    """``origin:path:function`` where origin is ``project``, ``site`` or ``stdlib``."""
    key = names.get(code)
    if key is None:
        path = Path(code.co_filename)
        text = str(path)
        if "site-packages" in path.parts:
            origin = "site"
            text = "/".join(path.parts[path.parts.index("site-packages") + 1 :])
        elif path.is_absolute() and path.resolve().is_relative_to(_ROOT):
            origin = "project"
            text = str(path.resolve().relative_to(_ROOT))
        elif path.is_absolute() and path.resolve().is_relative_to(_STDLIB):
            origin = "stdlib"
            text = str(path.resolve().relative_to(_STDLIB))
        else:
            origin = "other"
        key = names[code] = f"{origin}:{text}:{code.co_qualname}"
    return key


class Sampler:
    """Counts the main thread's stacks at SIGPROF."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stacks: Counter[tuple[CodeType, ...]] = Counter()
        self.missed = 0
        self.running = False

    def _on_signal(self, _signum: int, frame: FrameType | None) -> None:
        if frame is None:
            self.missed += 1
            return
        codes = []
        while frame is not None:
            codes.append(frame.f_code)
            frame = frame.f_back
        self.stacks[tuple(codes)] += 1

    def install(self, *, now: bool) -> None:
        """Handle SIGPROF and SIGUSR2; sample from now on, or from the first SIGUSR2."""
        signal.signal(signal.SIGPROF, self._on_signal)
        signal.signal(signal.SIGUSR2, self._toggle)
        # Restart interrupted system calls instead of failing them with EINTR.
        signal.siginterrupt(signal.SIGPROF, False)
        signal.siginterrupt(signal.SIGUSR2, False)
        if now:
            self._arm(True)

    def _arm(self, on: bool) -> None:
        self.running = on
        seconds = self.interval if on else 0.0
        signal.setitimer(signal.ITIMER_PROF, seconds, seconds)

    def _toggle(self, _signum: int, _frame: FrameType | None) -> None:
        self._arm(not self.running)

    def stop(self) -> None:
        self._arm(False)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)

    def dump(self, path: Path) -> None:
        names: dict[CodeType, str] = {}
        stacks = [
            [count, [frame_key(code, names) for code in codes]]
            for codes, count in self.stacks.most_common()
        ]
        path.write_text(
            json.dumps(
                {
                    "interval": self.interval,
                    "missed": self.missed,
                    "samples": sum(self.stacks.values()),
                    "stacks": stacks,
                }
            )
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.devices_sampler",
        description="Run a precinct command under a CPU-time sampling profiler.",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the stacks")
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        help="CPU seconds between samples (%(default)s)",
    )
    parser.add_argument(
        "--now", action="store_true", help="sample from the start instead of from the first SIGUSR2"
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="the precinct command and its arguments, after --"
    )
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    from edge_agent.command_line import main as precinct

    sampler = Sampler(args.interval)
    sampler.install(now=args.now)
    try:
        return precinct(command)
    finally:
        sampler.stop()
        sampler.dump(args.out)


if __name__ == "__main__":
    sys.exit(main())
