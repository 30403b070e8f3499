"""The worker's import refuses a model whose importer loaded a texture from outside the model's folder (FBX texture
paths are read by Blender itself). FBX files are written by Blender in a subprocess, as a downloaded one would be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPT = """
import sys
from pathlib import Path
import bpy
from pgrf.render.blender.importing import ImportFailed, import_files

texture, fbx = sys.argv[1], Path(sys.argv[2])
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_cube_add()
material = bpy.data.materials.new("skin")
material.use_nodes = True
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = bpy.data.images.load(texture)
material.node_tree.links.new(node.outputs["Color"], material.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
bpy.context.active_object.data.materials.append(material)
bpy.ops.export_scene.fbx(filepath=str(fbx), path_mode="RELATIVE")
bpy.ops.wm.read_factory_settings(use_empty=True)
try:
    print("IMPORTED", len(import_files((str(fbx),), (), fbx.parent / "work", fbx.parent)))
except ImportFailed as error:
    print("FAILED", error)
"""


def _import(texture: Path, fbx: Path) -> str:
    fbx.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(texture), str(fbx)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return next(line for line in result.stdout.splitlines() if line.startswith(("IMPORTED", "FAILED")))


def test_an_fbx_whose_texture_lies_outside_the_models_folder_fails_before_rendering(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "private" / "secret.png")
    outcome = _import(tmp_path / "private" / "secret.png", tmp_path / "lib" / "props" / "leaky.fbx")
    assert outcome.startswith("FAILED leaky.fbx: its texture") and "lies outside the model's folder" in outcome
    Image.new("RGB", (4, 4), (0, 255, 0)).save(tmp_path / "lib" / "props" / "skin.png")
    assert _import(tmp_path / "lib" / "props" / "skin.png", tmp_path / "lib" / "props" / "good.fbx") == "IMPORTED 1"
