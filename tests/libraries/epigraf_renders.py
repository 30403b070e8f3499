"""EpiGRAF's published renders, made for the tests the way the authors' scripts made them
(github.com/universome/megascans-rendering: ``render_dataset.py``, ``prepare_for_training.py``, ``utils.py``).

- ``render_raw(out)`` (run by ``python tests/libraries/epigraf_renders.py OUT`` in its own process: it imports bpy):
  ``OUT/raw``, a raw dataset rendered with Blender the way ``render_dataset.py`` did: objects scaled to a largest extent of 2
  about their box centre, a camera object named ``Camera`` placed at r·(sinθ cosφ, sinθ sinφ, cosθ) and turned
  with ``to_track_quat('-Z', 'Y')``, RGBA PNGs on transparent film, depth (EXR) and normal (PNG) compositor file
  outputs named ``<NNNNNN>_depth_0001.exr`` / ``<NNNNNN>_normal_0001.png``, one ``metadata.json`` per collection.
  It also writes ``OUT/triangles.json``: each model's world-space triangles, for projection checks.
- ``write_raw(root, …)`` (no bpy): the same layout and metadata.json, with the camera matrix built in numpy as
  ``to_track_quat('-Z', 'Y')`` does and silhouettes drawn from projected points; fast, for the unit tests.
- ``build_processed_zip(raw, zip_path)``: what ``prepare_for_training.py`` makes of a raw dataset: model folders
  flattened into file names, ``camera_angles`` = ``utils.get_euler_angles`` of each transform_matrix under keys
  ``<collection>/<model name>/<NNNNNN>.png`` (the metadata's object name, spaces kept), ``labels`` =
  ``collect_class_labels`` (one class per folder, numbered in set order), zipped under one top folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

RADIUS = 3.5
FOV = math.pi / 4


def authors_angles(views: int, seed: int) -> np.ndarray:
    """``generate_camera_angles(random=True)``: yaw ~ U[-π, π), pitch = arccos(1 − 2u), roll 0 — (views, 3)."""
    rng = np.random.default_rng(seed)
    yaw = rng.random(views) * 2 * np.pi - np.pi
    pitch = np.arccos(1 - 2 * rng.random(views))
    return np.stack([yaw, pitch, np.zeros(views)], axis=1)


def track_quat_matrix(yaw: float, pitch: float, radius: float) -> np.ndarray:
    """The camera's matrix_world after ``rotate_camera``: −Z towards the origin, +Y as close to world +Z as it can."""
    location = radius * np.array([np.sin(pitch) * np.cos(yaw), np.sin(pitch) * np.sin(yaw), np.cos(pitch)])
    z_axis = location / np.linalg.norm(location)
    y_axis = np.array([0.0, 0.0, 1.0]) - z_axis[2] * z_axis
    y_axis /= np.linalg.norm(y_axis)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = np.cross(y_axis, z_axis), y_axis, z_axis, location
    return matrix


def project_blender(points: np.ndarray, matrix: np.ndarray, fov: float, size: int) -> np.ndarray:
    """Pixel coordinates (x right, y down) of world points seen by a Blender camera (looks down −Z, +Y up)."""
    local = (points - matrix[:3, 3]) @ matrix[:3, :3]
    focal = 0.5 / math.tan(fov / 2)
    u = 0.5 + focal * local[:, 0] / -local[:, 2]
    v = 0.5 - focal * local[:, 1] / -local[:, 2]
    return np.stack([u, v], axis=1) * size


def frame(root: Path, collection: str, folder: str, index: int, matrix: np.ndarray, angles: np.ndarray) -> dict:
    """One entry of metadata.json, as ``render_current_view`` returns it."""
    save_path = root / collection / folder / f"{index:06d}"
    return {"file_path": os.path.relpath(save_path, start=root), "transform_matrix": [list(row) for row in matrix.tolist()],
            "camera_angles": angles.tolist(), "camera_radius": RADIUS, "fov": FOV}


def asymmetric_points(scale: float = 1.0) -> np.ndarray:
    """A point cloud without mirror symmetry (an L of boxes and a mast), largest extent 2·scale."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 7)] * 3, indexing="ij"), -1).reshape(-1, 3)
    parts = [grid * [1.0, 0.3, 0.3], grid * [0.3, 0.5, 0.3] + [0.7, 0.5, 0.0], grid * [0.1, 0.1, 0.6] + [-0.8, -0.5, 0.4]]
    return np.concatenate(parts) * scale


def write_raw(root: Path, models: dict[str, list[str]], views: int = 4, size: int = 32, seed: int = 0,
              passes: bool = True) -> dict[str, np.ndarray]:
    """A raw dataset without Blender: ``models`` maps collection names to Blender object names (spaces allowed).
    Returns each model folder's points (collection/folder → (N, 3))."""
    points_of = {}
    for c, (collection, names) in enumerate(sorted(models.items())):
        collection_dir = root / collection.replace(" ", "_")
        metadata = {}
        for m, name in enumerate(names):
            folder = name.replace(" ", "_")
            (collection_dir / folder).mkdir(parents=True, exist_ok=True)
            points = asymmetric_points(0.4 + 0.6 * ((c + m) % 2))
            points_of[f"{collection_dir.name}/{folder}"] = points
            frames = []
            for i, angles in enumerate(authors_angles(views, seed + 100 * c + m)):
                matrix = track_quat_matrix(angles[0], angles[1], RADIUS)
                rgba = np.zeros((size, size, 4), np.uint8)
                pixels = np.floor(project_blender(points, matrix, FOV, size)).astype(int)
                inside = (pixels >= 0).all(1) & (pixels < size).all(1)
                rgba[pixels[inside, 1], pixels[inside, 0]] = [200, 60 + 40 * c, 30, 255]
                stem = collection_dir / folder / f"{i:06d}"
                Image.fromarray(rgba, "RGBA").save(f"{stem}.png")
                if passes:
                    Path(f"{stem}_depth_0001.exr").write_bytes(b"v/1\x01 not a real EXR")
                    Image.fromarray(rgba[..., :3]).save(f"{stem}_normal_0001.png")
                frames.append(frame(root, collection_dir.name, folder, i, matrix, angles))
            metadata[name] = frames
        (collection_dir / "metadata.json").write_text(json.dumps(metadata, indent=4))
    return points_of


def get_euler_angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """megascans-rendering ``utils.get_euler_angles``, as written there."""
    yaw = np.arctan2(matrix[1, 0], matrix[0, 0]).item()
    pitch = np.arctan2(matrix[2, 1], matrix[2, 2]).item()
    if pitch < 0:
        pitch = abs(pitch)
    roll = np.arctan2(-matrix[2, 0], np.sqrt(matrix[2, 1] ** 2 + matrix[2, 2] ** 2)).item()
    return yaw, pitch, roll


def build_processed_zip(raw: Path, zip_path: Path, work: Path) -> Path:
    """``prepare_for_training.py --save_as_zip`` of a raw dataset; returns the zip."""
    dst = work / zip_path.stem
    files = sorted(os.path.relpath(Path(r) / f, raw) for r, _, fs in os.walk(raw) for f in fs)
    files = [f for f in files if not (f.endswith(".json") or "_depth_" in f or "_normal_" in f)]
    for file in files:  # copy_files(flatten_parent_dir=True)
        parent = os.path.dirname(file)
        target = dst / os.path.dirname(parent) / f"{os.path.basename(parent)}_{os.path.basename(file)}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw / file, target)
    transforms = {}
    for collection in sorted(os.listdir(raw)):
        metadata = json.loads((raw / collection / "metadata.json").read_text())
        transforms.update({os.path.join(collection, model, os.path.basename(t["file_path"])): t["transform_matrix"]
                           for model in metadata for t in metadata[model]})
    camera_angles = {f"{f}.png": get_euler_angles(np.array(t)) for f, t in transforms.items()}
    images = sorted(os.path.relpath(Path(r) / f, dst) for r, _, fs in os.walk(dst) for f in fs)
    parents = sorted({os.path.dirname(f) for f in images}, reverse=True)  # the authors numbered a set: any order
    labels = {f: parents.index(os.path.dirname(f)) for f in images}
    (dst / "dataset.json").write_text(json.dumps({"camera_angles": camera_angles, "labels": labels}))
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:  # shutil.make_archive(base_dir=dst.name)
        for path in sorted(dst.rglob("*")):
            archive.write(path, str(path.relative_to(work)))
    return zip_path


def render_raw(out: Path) -> None:
    """Render a tiny raw dataset with bpy, as ``render_dataset.py`` did (see the module docstring)."""
    import bpy
    from mathutils import Vector

    from pgrf.config import RenderSettings
    from pgrf.render.blender import materials, scene

    scene.reset()
    scene.configure(RenderSettings(resolution=64, samples=4, adaptive_threshold=0.0, denoise=False, device="cpu",
                                   hdri="none", passes=["depth", "normal"]))
    bpy.context.scene.render.dither_intensity = 0.0
    camera_data = bpy.data.cameras.new("Camera")
    camera = bpy.data.objects.new("Camera", camera_data)
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.scene.camera = camera
    camera.rotation_mode, camera_data.lens_unit, camera_data.angle = "XYZ", "FOV", FOV
    tree = bpy.data.node_groups.new("outputs", "CompositorNodeTree")  # Blender 5.0: the compositor is a node group
    bpy.context.scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    outputs = {}
    for name, file_format in (("depth", "OPEN_EXR"), ("normal", "PNG")):
        node = tree.nodes.new("CompositorNodeOutputFile")
        node.format.media_type = "IMAGE"  # Blender 5.0: one image per item, not a multilayer EXR
        node.format.file_format = file_format
        node.file_output_items.new("FLOAT" if name == "depth" else "VECTOR", name)
        tree.links.new(layers.outputs[name.capitalize()], node.inputs[0])
        outputs[name] = node
    collections = {"Coll A": [("Thing 1", 1.0)], "collB": [("Other_LOD0", -1.0)]}
    triangles, seed, root = {}, 0, out / "raw"
    for collection, models in collections.items():
        collection_dir = root / collection.replace(" ", "_")
        metadata = {}
        for name, flip in models:
            obj = _asymmetric_object(name, flip, materials)
            scale = 2.0 / max(obj.dimensions)  # normalize_object: scale, then centre the vertices' box
            obj.scale *= scale
            coords = np.array([v.co for v in obj.data.vertices])
            centre = Vector((coords.max(0) + coords.min(0)) / 2.0)
            for v in obj.data.vertices:
                v.co -= centre
            bpy.context.view_layer.update()
            folder = name.replace(" ", "_")
            obj.data.calc_loop_triangles()
            corners = [list(obj.matrix_world @ v.co) for v in obj.data.vertices]
            triangles[f"{collection_dir.name}/{folder}"] = [[corners[i] for i in t.vertices] for t in obj.data.loop_triangles]
            frames = []
            for i, angles in enumerate(authors_angles(3, seed)):
                yaw, pitch = float(angles[0]), float(angles[1])
                camera.location = Vector([RADIUS * np.sin(pitch) * np.cos(yaw), RADIUS * np.sin(pitch) * np.sin(yaw),
                                          RADIUS * np.cos(pitch)])
                camera.rotation_euler = (-camera.location).to_track_quat("-Z", "Y").to_euler()
                save_path = collection_dir / folder / f"{i:06d}"
                for kind, node in outputs.items():
                    node.directory, node.file_name = str(save_path.parent), f"{save_path.name}_{kind}_"
                bpy.context.scene.render.filepath = str(save_path)
                bpy.ops.render.render(write_still=True)
                _authors_names(save_path)
                frames.append(frame(root, collection_dir.name, folder, i, np.array(camera.matrix_world), angles))
            metadata[name] = frames
            seed += 1
            bpy.data.objects.remove(obj, do_unlink=True)
        (collection_dir / "metadata.json").write_text(json.dumps(metadata, indent=4))
    (out / "triangles.json").write_text(json.dumps(triangles))


def _authors_names(save_path: Path) -> None:
    """Blender 2.93 named a file output slot ``<path>_depth_0001.exr``; 5.0 adds the item name: rename to 2.93's."""
    for kind, ext in (("depth", "exr"), ("normal", "png")):
        target = save_path.parent / f"{save_path.name}_{kind}_0001.{ext}"
        found = sorted(p for p in save_path.parent.glob(f"{save_path.name}_{kind}_*.{ext}") if p != target)
        if found:
            found[0].rename(target)


def _asymmetric_object(name: str, flip: float, materials) -> object:
    """Cube, sphere and cone joined into one mesh object, arranged without mirror symmetry (``flip`` mirrors it in y)."""
    import bpy

    shapes = [(bpy.ops.mesh.primitive_cube_add, {"size": 0.7, "location": (0.5, 0.35 * flip, 0.0)}, (1.0, 0.1, 0.1)),
              (bpy.ops.mesh.primitive_uv_sphere_add, {"radius": 0.4, "segments": 16, "ring_count": 8,
                                                      "location": (-0.45, -0.5 * flip, 0.25)}, (0.1, 0.9, 0.1)),
              (bpy.ops.mesh.primitive_cone_add, {"radius1": 0.35, "depth": 0.8, "location": (0.0, 0.55 * flip, -0.5)},
               (0.1, 0.2, 1.0))]
    parts = []
    for i, (add, kwargs, color) in enumerate(shapes):
        add(**kwargs)
        part = bpy.context.active_object
        part.data.materials.append(materials.emission_material(f"{name}{i}", color))
        parts.append(part)
    bpy.ops.object.select_all(action="DESELECT")
    for part in parts:
        part.select_set(True)
    bpy.context.view_layer.objects.active = parts[0]
    bpy.ops.object.join()
    obj = bpy.context.active_object
    obj.name = name
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    return obj


if __name__ == "__main__":
    render_raw(Path(sys.argv[1]))
