"""Blender scene set-up for rendering: Cycles, colour management, device, world light, camera.

Runs only inside render worker processes (imports bpy).
"""

from __future__ import annotations

import math
import os
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from pgrf.cameras import opencv_to_blender
from pgrf.config import RenderSettings, hdri_file
from pgrf.errors import PgrfError
from pgrf.render.blender.hdri import load_hdri

GPU_BACKENDS = {"optix": ["OPTIX"], "cuda": ["CUDA"], "auto": ["OPTIX", "CUDA"]}
PINNED = "CUDA_VISIBLE_DEVICES"
"""Set by the orchestrator to the GPUs of this worker (pgrf.render.gpus); they are named in the device description."""


def reset() -> None:
    """An empty scene with factory settings, so nothing leaks from one model into the next."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


def configure(settings: RenderSettings, threads: int = 0) -> str:
    """Apply render settings to the current scene (``threads`` CPU threads; 0: as many as the machine has); returns a
    description of the device used."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.samples = settings.samples
    cycles.use_adaptive_sampling = settings.adaptive_threshold > 0
    if settings.adaptive_threshold > 0:
        cycles.adaptive_threshold = settings.adaptive_threshold
    cycles.use_denoising = settings.denoise
    cycles.max_bounces = settings.max_bounces
    cycles.transparent_max_bounces = settings.transparent_bounces
    cycles.seed = 0
    scene.render.resolution_x = scene.render.resolution_y = settings.resolution
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.render.film_transparent = True
    scene.render.use_persistent_data = True
    scene.render.dither_intensity = settings.dither
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    image = scene.render.image_settings
    image.file_format = "PNG"
    image.color_mode = "RGBA"
    image.color_depth = "8"
    image.compression = 15
    layer = scene.view_layers[0]
    layer.use_pass_z = "depth" in settings.passes
    layer.use_pass_normal = "normal" in settings.passes
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    _world(settings)
    return _device(settings.device, bpy.context.preferences.addons["cycles"].preferences)


def _device(requested: str, prefs: Any) -> str:
    """Enable the requested compute device in the Cycles preferences ``prefs``; ``auto`` takes OptiX, then CUDA, then
    the CPU. On a GPU the denoiser runs there too. Returns e.g. ``OPTIX: NVIDIA H100 80GB HBM3 (GPU 3)``, the
    ``CUDA_VISIBLE_DEVICES`` of the worker in brackets, or ``CPU: 8 threads``."""
    cycles = bpy.context.scene.cycles
    for backend in GPU_BACKENDS.get(requested, []):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.refresh_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for device in prefs.devices:
                device.use = device.type == backend
            cycles.device = "GPU"
            cycles.denoising_use_gpu = True
            pinned = f" (GPU {os.environ[PINNED]})" if os.environ.get(PINNED) else ""
            return f"{backend}: " + ", ".join(d.name for d in gpus) + pinned
    if requested not in ("cpu", "auto"):
        raise PgrfError(f"--device {requested}: no {requested.upper()} device found; use --device auto or cpu")
    cycles.device = "CPU"
    cycles.denoising_use_gpu = False
    threads = bpy.context.scene.render.threads
    return f"CPU: {threads} thread{'' if threads == 1 else 's'}"


def _world(settings: RenderSettings) -> None:
    """Even white world light (``hdri = none``), or an HDRI environment turned ``world_rotation`` degrees about +Z."""
    world = bpy.data.worlds.new("pgrf-world")
    bpy.context.scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes.get("Background") or nodes.new("ShaderNodeBackground")
    background.inputs["Strength"].default_value = settings.world_strength
    background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    image = hdri_file(settings.hdri)
    if image is not None:
        environment = nodes.new("ShaderNodeTexEnvironment")
        environment.image = load_hdri(image)
        mapping = nodes.new("ShaderNodeMapping")
        mapping.vector_type = "TEXTURE"  # the inverse transform: the environment itself turns by +rotation
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(settings.world_rotation))
        links.new(nodes.new("ShaderNodeTexCoord").outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], environment.inputs["Vector"])
        links.new(environment.outputs["Color"], background.inputs["Color"])
    output = nodes.get("World Output") or nodes.new("ShaderNodeOutputWorld")
    links.new(background.outputs["Background"], output.inputs["Surface"])


def add_camera(fov: float) -> bpy.types.Object:
    """The scene camera: full-angle ``fov`` on both axes of a square image."""
    data = bpy.data.cameras.new("pgrf-camera")
    data.lens_unit = "FOV"
    data.sensor_fit = "AUTO"
    data.angle = fov
    data.clip_start, data.clip_end = 0.01, 100.0
    camera = bpy.data.objects.new("pgrf-camera", data)
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.scene.camera = camera
    return camera


def place_camera(camera: bpy.types.Object, c2w: np.ndarray) -> None:
    """Put the camera at an OpenCV c2w (converted to Blender's camera frame)."""
    camera.matrix_world = Matrix(opencv_to_blender(c2w).tolist())
