"""Render models with the worker's own ``render_model``, for the glTF tests:
``python tests/blender/gltf_render.py JOBS.json OUT`` where JOBS.json is a list of ModelSpec fields; each model is
rendered into ``OUT/<category>/<model_id>/`` with tiny settings (2 views, 48 px, 4 samples, no denoiser)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pgrf.config import RenderSettings
from pgrf.formats.catalog import ModelSpec
from pgrf.render.blender.job import RenderJob
from pgrf.render.blender.model import render_model

SETTINGS = RenderSettings(views=2, resolution=48, samples=4, denoise=False, min_dim_product=0.0)


def main(jobs: Path, out: Path) -> None:
    for fields in json.loads(jobs.read_text()):
        spec = ModelSpec(**{**fields, "files": tuple(fields["files"]), "objects": tuple(fields.get("objects", ()))})
        record = render_model(RenderJob(spec, SETTINGS, str(out / spec.category), min_mean_alpha=0.0))
        print(spec.category, spec.model_id, record.status.value, record.reason, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
