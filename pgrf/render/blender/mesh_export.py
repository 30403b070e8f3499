"""Write meshes to FBX / GLB / glTF / OBJ with Blender's own exporters (runs in a bpy subprocess).

Used by the sample library so its files are real, importer-tested formats. Invoked as
``python -m pgrf.render.blender.mesh_export JOB.json``; the job lists files, each with objects built from
``.npz`` arrays (vertices, faces, uvs) and an optional RGBA base-colour texture whose alpha cuts out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pgrf.errors import PgrfError


def export_files(job: dict[str, Any], job_file: Path) -> None:
    """Run the export job in a fresh Python process that imports bpy (keeps bpy out of the caller)."""
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the FBX exporter derives object UUIDs from hash()
    command = [sys.executable, "-m", "pgrf.render.blender.mesh_export", str(job_file)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PgrfError(f"Blender export of {job_file} failed: {tail[0]}")


def _build_object(spec: dict[str, Any]) -> Any:
    import bpy
    import numpy as np

    arrays = np.load(spec["mesh"])
    mesh = bpy.data.meshes.new(spec["name"])
    mesh.from_pydata(arrays["vertices"].tolist(), [], arrays["faces"].tolist())
    uv_layer = mesh.uv_layers.new(name="UVMap")
    loop_vertices = np.zeros(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loop_vertices)
    uv_layer.data.foreach_set("uv", arrays["uvs"][loop_vertices].ravel())
    mesh.validate()
    obj = bpy.data.objects.new(spec["name"], mesh)
    bpy.context.scene.collection.objects.link(obj)
    mesh.materials.append(_material(spec["material"]))
    return obj


def _material(spec: dict[str, Any]) -> Any:
    import bpy

    material = bpy.data.materials.get(spec["name"])
    if material is not None:
        return material
    material = bpy.data.materials.new(spec["name"])
    bsdf = material.node_tree.nodes["Principled BSDF"]
    if spec.get("texture"):
        image = bpy.data.images.load(spec["texture"])
        texture = material.node_tree.nodes.new("ShaderNodeTexImage")
        texture.image = image
        material.node_tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
        if spec.get("alpha"):
            material.node_tree.links.new(texture.outputs["Alpha"], bsdf.inputs["Alpha"])
    return material


def _fix_fbx_timestamp() -> None:
    """Blender's FBX exporter stamps files with now(); pin it so the sample library is byte-identical."""
    import datetime
    import functools

    from io_scene_fbx import export_fbx_bin

    original = export_fbx_bin.fbx_header_elements
    if not isinstance(original, functools.partial):
        export_fbx_bin.fbx_header_elements = functools.partial(original, time=datetime.datetime(2022, 11, 28))


def _export(path: str, fmt: str) -> None:
    import bpy

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "fbx":
        _fix_fbx_timestamp()
        bpy.ops.export_scene.fbx(filepath=path, use_selection=True, path_mode="STRIP", object_types={"MESH"})
    elif fmt in ("glb", "gltf"):
        bpy.ops.export_scene.gltf(filepath=path, use_selection=True, export_format="GLB" if fmt == "glb" else "GLTF_SEPARATE")
    elif fmt == "obj":
        bpy.ops.wm.obj_export(filepath=path, export_selected_objects=True, export_materials=True, path_mode="COPY")
    else:
        raise ValueError(f"unknown format {fmt}")


def main(job_file: str) -> None:
    import bpy

    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    for item in job["files"]:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        objects = [_build_object(spec) for spec in item["objects"]]
        for obj in objects:
            obj.select_set(True)
        bpy.context.view_layer.objects.active = objects[0]
        _export(item["path"], item["format"])


if __name__ == "__main__":
    main(sys.argv[1])
