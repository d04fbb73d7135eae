"""``precinct agent``: registered by the agent package itself; the agent's imports happen only
when it runs, so that ``precinct --help`` loads none of them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edge_agent.command_line import flags_given
from edge_agent.settings_source import ConfigError, load
from monitoring.logs import LOG_FORMATS, setup_logging

_AGENT_FLAGS = (
    "id",
    "broker",
    "data_dir",
    "metrics_listen",
    "synthetic",
    "station",
    "log_level",
    "log_format",
)


def _run_agent(args: argparse.Namespace) -> int:
    import asyncio

    from edge_agent.app import run_agent
    from edge_agent.device_supervisor import DeviceSetupError, build_devices
    from edge_agent.settings import AgentSettings

    settings = load(AgentSettings, args.config, flags_given(args, _AGENT_FLAGS), os.environ)
    try:
        devices = build_devices(settings.devices)
    except DeviceSetupError as exc:
        raise ConfigError(str(args.config), exc.key, exc.message) from None
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(run_agent(settings, devices))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent`` to the ``precinct`` parser."""
    agent = commands.add_parser(
        "agent",
        help="run an edge agent",
        description="Run an edge agent: devices, durable outbox, MQTT.",
    )
    agent.add_argument("--id", help="agent id (its MQTT topic level)")
    agent.add_argument("--broker", metavar="URL", help="mqtt://[user:pass@]host[:port]")
    agent.add_argument("--data-dir", type=Path, metavar="DIR", help="outbox and state directory")
    agent.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    agent.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve /metrics here")
    agent.add_argument(
        "--synthetic",
        type=float,
        metavar="RATE",
        help="add a synthetic source of RATE telemetry readings per second",
    )
    agent.add_argument("--station", metavar="ID", help="station this agent belongs to")
    agent.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    agent.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json lines")
    agent.set_defaults(handler=_run_agent)
