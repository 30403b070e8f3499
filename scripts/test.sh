#!/usr/bin/env bash
# Fresh machine -> install pgrf with both halves and its test dependencies, lint (ruff) and run the test suite; then
# build the train half alone (.venv-train: numpy 2, no bpy, as `pip install "pgrf[train]"` on a GPU node) and run
# there every test that needs no Blender, and check that the render half's commands name their extra.
# Arguments go to the first pytest run, e.g. `bash scripts/test.sh tests/unit -m "not slow"` for the quick half;
# PGRF_TRAIN_ENV=0 leaves the train-only environment out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
if [[ "${PGRF_TRAIN_ENV:-1}" != "0" ]]; then
    bash scripts/setup-train.sh
    .venv-train/bin/python - <<'PY'
import importlib.util, numpy
assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__
assert importlib.util.find_spec("bpy") is None and importlib.util.find_spec("meshopt") is None
PY
    # Outside the checkout: shards packed by the full install, trained and sampled by the train half alone.
    work=$(mktemp -d)
    here=$PWD
    (cd "$work"
     "$here/.venv/bin/python" -c 'from pathlib import Path; from pgrf.pipeline.synthetic import fake_renders
fake_renders(Path("renders"), "plants", {"a_var1": 0.4, "b_var1": 0.5})'
     "$here/.venv/bin/pgrf" pack --out shards --resolution 16
     "$here/.venv-train/bin/pgrf" train --shards shards --preset tiny --kimg 0.008 --batch 4 --device cpu --workers 0 \
         --tick-kimg 0.004 --snapshot-kimg 0.008 --sample-kimg 0.008
     "$here/.venv-train/bin/pgrf" sample runs/plants-tiny/checkpoints --out samples.png --seeds 0-1 --device cpu
     message=$("$here/.venv-train/bin/pgrf" render -c plants 2>&1 || true)
     grep -q 'pip install "pgrf\[render\]"' <<<"$message" || { echo "pgrf render without bpy said: $message"; exit 1; })
    rm -rf "$work"
    .venv-train/bin/python -m pytest -q tests/unit tests/test_layers.py -m "not render and not pinned"
fi
