#!/bin/sh
# The test command: installs what the tests need (Mosquitto from Debian's packages when it is
# missing, the package and its dev tools in .venv), then runs ruff (lint and format), mypy and the
# whole suite.
# Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/sbin"
export PATH
if ! command -v mosquitto >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q mosquitto
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
