"""The cameras of `pgrf render`: generator rays hit the pixels where Cycles put the object."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.helpers import render_full, run_pgrf, spheres_field


def write_two_spheres(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An OBJ of two overlapping UV spheres (asymmetric, so a flipped camera would be caught)."""
    centres, radii = np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0]]), np.array([1.0, 0.5])
    lat, lon = 24, 48
    theta = np.pi * np.arange(1, lat) / lat
    phi = 2 * np.pi * np.arange(lon) / lon
    ring = np.stack([np.outer(np.sin(theta), np.cos(phi)), np.outer(np.sin(theta), np.sin(phi)),
                     np.outer(np.cos(theta), np.ones(lon))], -1).reshape(-1, 3)
    unit = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]])
    lines, base = [], 1
    for centre, radius in zip(centres, radii):
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in unit * radius + centre]
        last = base + len(unit) - 1
        for j in range(lon):
            nxt = (j + 1) % lon
            lines.append(f"f {base} {base + 1 + j} {base + 1 + nxt}")
            lines.append(f"f {base + 1 + (lat - 2) * lon + j} {last} {base + 1 + (lat - 2) * lon + nxt}")
            for i in range(lat - 2):
                a, b = base + 1 + i * lon + j, base + 1 + i * lon + nxt
                lines += [f"f {a} {a + lon} {b + lon}", f"f {a} {b + lon} {b}"]
        base += len(unit)
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return centres, radii


def test_generator_rays_hit_the_pixels_where_pgrf_render_put_the_object(tmp_path: Path) -> None:
    resolution = 64
    centres, radii = write_two_spheres(tmp_path / "library" / "models" / "shapes" / "balls.obj")
    result = run_pgrf("render", "--category", "sample-models", "--library", str(tmp_path / "library"),
                      "--out", str(tmp_path / "renders"), "--views", "2", "--resolution", str(resolution),
                      "--samples", "4", "--no-denoise")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    model = tmp_path / "renders" / "sample-models" / "shapes_balls"
    document = json.loads((model / "cameras.json").read_text())
    norm = document["normalisation"]
    # the renderer moved the model by `offset` and scaled it by `scale` into [-1, 1]³
    field = spheres_field(torch.tensor((centres + norm["offset"]) * norm["scale"]).float(),
                          torch.tensor(radii * norm["scale"]).float())
    for view in document["views"]:
        alpha = np.asarray(Image.open(model / view["file"]))[..., 3] > 127
        c2w = torch.tensor(view["c2w"])[None].float()
        k = torch.tensor(view["intrinsics"])[None].float()
        ours = (render_full(field, c2w, k, resolution).opacity.reshape(resolution, resolution) > 0.5).numpy()
        iou = (ours & alpha).sum() / (ours | alpha).sum()
        assert iou > 0.9, iou
        # the asymmetric silhouettes also agree in position to a fraction of a pixel
        assert np.allclose(np.argwhere(ours).mean(0), np.argwhere(alpha).mean(0), atol=0.25)
