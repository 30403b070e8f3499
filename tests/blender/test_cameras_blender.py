"""The camera convention (docs/cameras.md) against Blender: its look-at and a render from a mirrored camera."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers import blender_check


def test_blender_look_at_equals_ours(tmp_path) -> None:
    rows = json.loads(blender_check("camera_agreement", tmp_path / "cameras.json").read_text())
    assert len(rows) == 304
    near_pole = [r for r in rows if min(r["pitch"], np.pi - r["pitch"]) < 0.05]
    assert len(near_pole) >= 4
    for row in rows:
        assert row["track_to"] < 1e-4, row  # Blender's Track To constraint
        assert row["track_quat"] < 1e-4, row  # mathutils to_track_quat('-Z', 'Y')
        assert row["placed"] < 1e-5, row  # what the renderer sets is what Blender uses


def test_blender_render_of_reflected_scene_from_mirrored_camera_is_the_flipped_image(tmp_path) -> None:
    data = np.load(blender_check("mirror_render", tmp_path / "mirror.npz"))
    originals, mirrored = data["originals"], data["mirrored"]

    def premultiplied(images: np.ndarray) -> np.ndarray:
        return np.concatenate([images[..., :3] * images[..., 3:], images[..., 3:]], axis=-1)

    flipped = premultiplied(originals[:, :, ::-1])
    mirrored = premultiplied(mirrored)
    assert originals[..., 3].mean() > 0.05  # the objects are in view
    assert np.abs(flipped - mirrored).mean() < 0.01
    assert np.abs(premultiplied(originals) - mirrored).mean() > 10 * np.abs(flipped - mirrored).mean()
    a, b = flipped[..., 3] > 0.5, mirrored[..., 3] > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.98
