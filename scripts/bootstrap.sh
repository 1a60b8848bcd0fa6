#!/usr/bin/env bash
# Sets up confide on a fresh Debian/Ubuntu machine.
#   scripts/bootstrap.sh run   - a virtualenv (.venv) with confide installed
#   scripts/bootstrap.sh dev   - the same plus the system packages the test suite
#                                needs (scripts/system-packages.txt) and the dev tools
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

if [ "$mode" = dev ]; then
  missing=""
  for pkg in $(grep -v '^\s*#' scripts/system-packages.txt); do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing system packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = dev ]; then
  .venv/bin/python -m pip install -q -e ".[dev]"
else
  .venv/bin/python -m pip install -q -e .
fi
