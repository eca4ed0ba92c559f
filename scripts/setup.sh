#!/usr/bin/env bash
# Creates .venv and installs pocketbnn with its training and test extras, from scratch.
# torch is pinned to the CPU build (a bare `torch` requirement would pull a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet ".[torch,test]"
