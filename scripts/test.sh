#!/usr/bin/env bash
# Installs what the tests need and runs them: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh alsa-utils ffmpeg openjdk-17-jre-headless chromium
export HF_HOME="$PWD/.hf_home" HF_HUB_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
