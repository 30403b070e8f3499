"""Import model files into the scene and normalise them into [-1, 1]^3 (docs/cameras.md).

Runs only inside render worker processes (imports bpy).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from pgrf import paths
from pgrf.cameras import SCENE_BOUND
from pgrf.errors import PgrfError
from pgrf.formats import obj as obj_format
from pgrf.formats.renders import Normalisation
from pgrf.render.blender import glb


class ImportFailed(Exception):
    """A model file that Blender could not turn into mesh geometry."""


def import_files(files: tuple[str, ...], objects: tuple[str, ...], scratch: Path, root: Path) -> list[bpy.types.Object]:
    """Import every file of a model; returns the new mesh objects (error if there are none, or if an importer loaded
    an image from outside ``root``: FBX texture paths are read by Blender itself).

    A glTF is first rewritten into ``scratch`` when Blender cannot take it as it is (meshopt compression) or when
    only some of its nodes form the model (``objects``, else LOD0 without billboards; see formats/gltf.py);
    of other formats only the mesh objects named in ``objects`` are kept (``split_objects``).
    """
    before, images = set(bpy.data.objects), set(bpy.data.images)
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ImportFailed(f"{path}: file not found")
        suffix = path.suffix.lower()
        try:
            source = glb.importable(path, objects, scratch) if suffix in (".glb", ".gltf") else path
            if suffix == ".obj":
                obj_format.check(path)  # Blender's importer reads the .mtl files and maps it names by itself
        except PgrfError as exc:
            raise ImportFailed(str(exc)) from None
        try:
            if suffix == ".fbx":
                bpy.ops.import_scene.fbx(filepath=str(path))
            elif suffix == ".obj":
                bpy.ops.wm.obj_import(filepath=str(path))
            elif suffix in (".glb", ".gltf"):
                bpy.ops.import_scene.gltf(filepath=str(source))
            elif suffix == ".abc":
                bpy.ops.wm.alembic_import(filepath=str(path))
            else:
                raise ImportFailed(f"{path}: unsupported format {suffix}")
        except RuntimeError as exc:
            raise ImportFailed(f"{path.name}: Blender could not import it ({operator_error(str(exc))})") from None
    _check_images(set(bpy.data.images) - images, root, Path(files[0]))
    meshes = [o for o in set(bpy.data.objects) - before if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        raise ImportFailed(f"{Path(files[0]).name}: no mesh geometry in the file")
    for obj in set(bpy.data.objects) - before:
        if obj.type in ("LIGHT", "CAMERA"):  # lights and cameras shipped inside files must not render
            bpy.data.objects.remove(obj)
    meshes = sorted(meshes, key=lambda o: o.name)
    if any(Path(name).suffix.lower() not in (".glb", ".gltf") for name in files):
        meshes = keep_only(meshes, objects)  # a glTF's nodes were chosen before the import, other formats' here
    return meshes


def _check_images(images: set[bpy.types.Image], root: Path, path: Path) -> None:
    """Fail the model when an importer loaded an image file from outside ``root`` (packed images are the file's own)."""
    for image in images:
        if image.source != "FILE" or image.packed_file is not None or not image.filepath:
            continue
        file = Path(bpy.path.abspath(image.filepath))
        if file.is_file() and not paths.is_under(root, file):
            raise ImportFailed(f"{path.name}: its texture {file} lies outside the model's folder {root}; "
                               "copy the texture beside the model and point the file at it")


def operator_error(text: str) -> str:
    """The line of a failed operator's error that says what went wrong: the exception line of an importer's
    traceback, without the ``Error:`` prefix and the ``Location: …/bpy/ops.py`` line bpy adds."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Location:")]
    return lines[-1].removeprefix("Error: ") if lines else "importer error"


def keep_only(objects: list[bpy.types.Object], names: tuple[str, ...]) -> list[bpy.types.Object]:
    """The objects named in ``names`` (all when empty); the others are deleted, the kept ones unparented in place."""
    if not names:
        return objects
    kept = [o for o in objects if o.name in names]
    missing = sorted(set(names) - {o.name for o in kept})
    if missing:
        raise ImportFailed(f"no mesh object {', '.join(missing)} in the file; run pgrf assets list again to refresh the model list")
    for obj in kept:
        world = obj.matrix_world.copy()
        obj.parent = None
        obj.matrix_world = world
    for obj in objects:
        if obj not in kept:
            bpy.data.objects.remove(obj)
    return kept


def world_vertices(objects: list[bpy.types.Object]) -> np.ndarray:
    """All evaluated vertices of the objects in world space, (N, 3)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    chunks = []
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        coords = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", coords)
        evaluated.to_mesh_clear()
        matrix = np.array(obj.matrix_world)
        chunks.append(coords.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3])
    return np.concatenate(chunks)


def normalise(objects: list[bpy.types.Object]) -> Normalisation:
    """Centre the bounding box of all objects at the origin and scale its largest extent to 2·SCENE_BOUND."""
    bpy.context.view_layer.update()
    vertices = world_vertices(objects)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    extent = high - low
    if not np.all(np.isfinite(extent)) or extent.max() <= 0:
        raise ImportFailed("the model has no extent (all vertices coincide)")
    scale = 2 * SCENE_BOUND / float(extent.max())
    offset = -(low + high) / 2
    transform = Matrix.Diagonal((scale, scale, scale, 1.0)) @ Matrix.Translation(offset.tolist())
    roots = {_root(o) for o in objects}
    for root in roots:
        root.matrix_world = transform @ root.matrix_world
    bpy.context.view_layer.update()
    dims = (extent * scale).tolist()
    return Normalisation(scale=scale, offset=offset.tolist(), dims=dims, dims_product=float(np.prod(dims)))


def _root(obj: bpy.types.Object) -> bpy.types.Object:
    while obj.parent is not None:
        obj = obj.parent
    return obj
