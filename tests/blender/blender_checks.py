"""Checks that need Blender, run by the tests in a subprocess: ``python tests/blender/blender_checks.py CHECK OUT``.

Each check writes its measurements as JSON to OUT; the assertions live in the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector
from PIL import Image

from pgrf import cameras
from pgrf.config import RenderSettings
from pgrf.render.blender import materials, scene


def camera_agreement(out: Path) -> None:
    """Blender's own look-at (Track To constraint and to_track_quat) vs pgrf's c2w, many angles."""
    scene.reset()
    target = bpy.data.objects.new("target", None)
    bpy.context.scene.collection.objects.link(target)
    camera = scene.add_camera(np.pi / 4)
    constraint = camera.constraints.new("TRACK_TO")
    constraint.target, constraint.track_axis, constraint.up_axis = target, "TRACK_NEGATIVE_Z", "UP_Y"
    rng = np.random.default_rng(0)
    yaw, pitch = cameras.sample_angles(300, rng)
    poles = np.array([1e-3, 1e-2, np.pi - 1e-2, np.pi - 1e-3])
    yaw = np.concatenate([yaw, rng.uniform(-np.pi, np.pi, len(poles))])
    pitch = np.concatenate([pitch, poles])
    rows = []
    for y, p in zip(yaw, pitch):
        ours = cameras.look_at_origin(y, p, 3.5)
        position = cameras.camera_position(y, p, 3.5)
        camera.location = position.tolist()
        bpy.context.view_layer.update()
        constrained = cameras.blender_to_opencv(np.array(camera.matrix_world))
        rotation = (-Vector(position)).to_track_quat("-Z", "Y").to_matrix()
        tracked = np.eye(4)
        tracked[:3, :3], tracked[:3, 3] = np.array(rotation), position
        tracked = cameras.blender_to_opencv(tracked)
        camera.constraints[0].mute = True
        scene.place_camera(camera, ours)
        bpy.context.view_layer.update()
        placed = cameras.blender_to_opencv(np.array(camera.matrix_world))
        camera.constraints[0].mute = False
        rows.append({"yaw": float(y), "pitch": float(p),
                     "track_to": float(np.abs(constrained - ours).max()),
                     "track_quat": float(np.abs(tracked - ours).max()),
                     "placed": float(np.abs(placed - ours).max())})
    out.write_text(json.dumps(rows))


def _asymmetric_scene() -> bpy.types.Object:
    """Three emission-coloured primitives under one empty, arranged without any mirror symmetry."""
    root = bpy.data.objects.new("root", None)
    bpy.context.scene.collection.objects.link(root)
    shapes = [
        (bpy.ops.mesh.primitive_cube_add, {"size": 0.7, "location": (0.5, 0.35, 0.0)}, (1.0, 0.1, 0.1)),
        (bpy.ops.mesh.primitive_uv_sphere_add, {"radius": 0.4, "location": (-0.45, -0.5, 0.25)}, (0.1, 0.9, 0.1)),
        (bpy.ops.mesh.primitive_cone_add, {"radius1": 0.35, "depth": 0.8, "location": (0.0, 0.55, -0.5)}, (0.1, 0.2, 1.0)),
    ]
    for i, (add, kwargs, color) in enumerate(shapes):
        add(**kwargs)
        obj = bpy.context.active_object
        obj.data.materials.append(materials.emission_material(f"m{i}", color))
        obj.parent = root
    return root


def _render(path: Path, camera: bpy.types.Object, c2w: np.ndarray) -> np.ndarray:
    scene.place_camera(camera, c2w)
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGBA"), dtype=np.float64) / 255.0


def mirror_render(out: Path) -> None:
    """Render views, then the XZ-reflected scene from the mirrored cameras; save both for comparison."""
    scene.reset()
    scene.configure(RenderSettings(resolution=64, samples=256, adaptive_threshold=0.0, denoise=False, device="cpu"))
    root = _asymmetric_scene()
    camera = scene.add_camera(np.pi / 4)
    views = cameras.sample_views("mirror", "mirror", 0, 3, 3.5, np.pi / 4)
    originals = [_render(out.parent / f"orig{i}.png", camera, v.c2w) for i, v in enumerate(views)]
    root.scale = (1.0, -1.0, 1.0)  # S: reflect the world across the XZ plane
    mirrored = [_render(out.parent / f"mirr{i}.png", camera, cameras.mirror_c2w(v.c2w)) for i, v in enumerate(views)]
    np.savez(out, originals=np.stack(originals), mirrored=np.stack(mirrored))


if __name__ == "__main__":
    {"camera_agreement": camera_agreement, "mirror_render": mirror_render}[sys.argv[1]](Path(sys.argv[2]))
