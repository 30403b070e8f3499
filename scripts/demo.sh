#!/usr/bin/env bash
# Fresh machine -> the main job on the bundled sample library: make it, render every sample category,
# pack and check the plants, print their statistics, train the small preset briefly on CPU, sample it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pgrf=.venv/bin/pgrf
$pgrf assets make-sample sample-library
$pgrf render -c sample-plants -c sample-food -c sample-models --views 16 --resolution 128 --workers 2
$pgrf pack renders/sample-plants --out shards/sample-plants --resolution 64 --workers 2
$pgrf verify shards/sample-plants
$pgrf stats shards/sample-plants --plots stats/sample-plants
resume=()
if [[ -f runs/sample-plants-demo/checkpoints/latest.pt ]]; then resume=(--resume latest); fi
$pgrf train --shards shards/sample-plants --name sample-plants-demo --preset small --kimg 0.4 --batch 8 \
    --device cpu --workers 1 --tick-kimg 0.04 --sample-kimg 0.2 --snapshot-kimg 0.2 "${resume[@]}"
$pgrf sample runs/sample-plants-demo/checkpoints --out runs/sample-plants-demo/samples.png --seeds 0-7 --device cpu
