#!/usr/bin/env bash
# Fresh machine -> install pgrf with its test dependencies, lint (ruff) and run the test suite.
# Arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -m "not slow"` for the quick half.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
