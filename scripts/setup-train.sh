#!/usr/bin/env bash
# Create .venv-train: the train half alone on a CPU machine (torch pinned to the CPU build, numpy 2, no bpy), as a
# GPU node installs it with `pip install "pgrf[train]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv-train/bin/python ] || "$PYTHON" -m venv .venv-train
.venv-train/bin/python -m pip install --quiet --upgrade pip
.venv-train/bin/python -m pip install --quiet "torch==2.13.0"
.venv-train/bin/python -m pip install --quiet -e ".[train,test]" "numpy>=2"
