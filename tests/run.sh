#!/bin/sh
# The test command: installs what the tests need (Mosquitto, Chromium, a Chinese font and
# Prometheus with promtool from Debian's packages when they are missing, the package and its dev tools in .venv), then runs ruff (lint and
# format), mypy and the whole suite.
# The browser tests drive Debian's Chromium through Playwright for Python; Playwright's own
# browser download ("playwright install") is never used.
# Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/sbin"
export PATH
missing=""
if ! command -v mosquitto >/dev/null 2>&1; then missing="$missing mosquitto"; fi
if [ ! -x /usr/bin/chromium ]; then missing="$missing chromium"; fi
# A Chinese font, so that the pages' screenshots show the Chinese they are read in.
if [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  missing="$missing fonts-wqy-microhei"
fi
# promtool checks and unit-tests the alert rules; a real Prometheus evaluates them in a test.
if ! command -v promtool >/dev/null 2>&1; then missing="$missing prometheus"; fi
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
