#!/usr/bin/env bash
# Fresh machine -> the main job on the bundled sample library: make it, render every sample category, pack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pgrf assets make-sample sample-library
.venv/bin/pgrf render -c sample-plants -c sample-food -c sample-models --views 16 --resolution 128 --workers 2
.venv/bin/pgrf pack renders/sample-plants --out shards/sample-plants --resolution 128
