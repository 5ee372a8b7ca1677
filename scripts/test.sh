#!/usr/bin/env bash
# Installs what the tests need and runs them: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh alsa-utils ffmpeg openjdk-17-jre-headless
# the listening report's browser tests open the page in headless Chromium; where the package cannot be had they
# are skipped, and say so, rather than failing the whole run
if ! dpkg -s chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "chromium could not be installed: the listening report's browser tests will be skipped"
fi
export HF_HOME="$PWD/.hf_home" HF_HUB_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
