#!/usr/bin/env bash
# Fresh machine -> the main job on the bundled sample library: make it, then render every sample category.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pgrf assets make-sample sample-library
.venv/bin/pgrf render -c sample-plants -c sample-food -c sample-models --views 16 --resolution 128 --workers 2
