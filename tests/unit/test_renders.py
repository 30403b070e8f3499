"""The lighting in cameras.json: recorded with its resolved file, older files still valid, and part of the
"rendered with other settings" check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pgrf.config import RenderSettings, hdri_file
from pgrf.formats import renders as records
from pgrf.pipeline.synthetic import fake_renders

pytestmark = pytest.mark.render

LIGHTING_KEYS = ("hdri_file", "world_strength", "world_rotation", "dither")


def _model(tmp_path: Path) -> Path:
    return fake_renders(tmp_path, "plants", {"a_var1": 0.5}, views=2, resolution=16, hdri="studio") / "a_var1"


def test_cameras_json_records_the_light_name_and_its_file(tmp_path: Path) -> None:
    render = json.loads((_model(tmp_path) / records.CAMERAS_FILE).read_text())["render"]
    assert render["hdri"] == "studio" and render["hdri_file"] == str(hdri_file("studio"))
    assert (render["world_strength"], render["world_rotation"], render["dither"]) == (1.0, 0.0, 0.0)


def test_older_cameras_json_without_lighting_fields_still_validates(tmp_path: Path) -> None:
    model = _model(tmp_path)
    doc = json.loads((model / records.CAMERAS_FILE).read_text())
    doc["render"] = {key: value for key, value in doc["render"].items() if key not in LIGHTING_KEYS} | {"hdri": None}
    (model / records.CAMERAS_FILE).write_text(json.dumps(doc))
    render = records.read_cameras(model).render
    assert (render.hdri, render.hdri_file, render.world_strength, render.world_rotation) == (None, None, 1.0, 0.0)
    assert render.dither == 1.0  # rendered before dither was set: Blender's default
    old_look = RenderSettings(views=2, resolution=16, hdri="none")
    assert not records.read_cameras(model).settings_differ(old_look)
    assert records.read_cameras(model).settings_differ(RenderSettings(views=2, resolution=16))  # now studio-lit
    assert not records.read_cameras(model).settings_differ(replace(old_look, world_rotation=45.0))  # even light has no turn


def test_other_lighting_counts_as_other_settings_but_noise_settings_do_not(tmp_path: Path) -> None:
    cameras = records.read_cameras(_model(tmp_path))
    same = RenderSettings(views=2, resolution=16)
    assert not cameras.settings_differ(same)
    assert not cameras.settings_differ(replace(same, dither=1.0, samples=128, denoise=False))
    for other in (replace(same, hdri="forest"), replace(same, hdri="none"), replace(same, world_rotation=90.0),
                  replace(same, world_strength=2.0)):
        assert cameras.settings_differ(other), other
