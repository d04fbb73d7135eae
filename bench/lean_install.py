"""A virtual environment with only what ``pip install precinct[agent]`` brings: the package
(editable, from this source tree) and the agent extra's requirements, from the configured
package index (a local one works offline)."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from edge_agent.extras import normalise

ROOT = Path(__file__).resolve().parent.parent
# A cold pip resolving a dozen wheels from a local index takes 10-20 s here.
INSTALL_TIMEOUT_SECONDS = 600.0


class InstallError(Exception):
    """pip could not install the extra; the message ends with pip's output."""


def make_venv(into: Path, extra: str, source: Path = ROOT) -> Path:
    """Create a venv at ``into`` with ``precinct[extra]`` installed; its python."""
    venv.create(into, with_pip=True)
    python = into / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{source}[{extra}]"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise InstallError(f"pip install -e .[{extra}] failed ({done.returncode}):\n{done.stderr}")
    return python


def installed_distributions(python: Path) -> set[str]:
    """The normalised names of the distributions installed in ``python``'s environment."""
    script = (
        "from importlib import metadata\n"
        "for d in metadata.distributions(): print(d.metadata['Name'])\n"
    )
    done = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return {normalise(line) for line in done.stdout.split()}
