#!/usr/bin/env bash
# Creates .venv and installs pocketbnn with its training and test extras, from scratch.
# torch is pinned to the CPU build (a bare `torch` requirement would pull a CUDA build).
# Fashion-MNIST comes from Debian's dataset-fashion-mnist package when apt is usable; without
# it the demo trains on scikit-learn's bundled digits instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }; } \
    >/dev/null 2>&1 || echo "note: could not install dataset-fashion-mnist; the demo will use the bundled digits"
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet ".[torch,test]"
