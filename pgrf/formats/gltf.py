"""glTF 2.0 files (.gltf with its buffers, .glb) as pgrf reads them, without Blender.

Discovery reads a file's JSON to list its mesh nodes (LOD index, base mesh, billboard) and the required
extensions Blender 5.0 cannot read; which nodes make a model (``selected``) is decided here, from node names,
so discovery and the render worker agree. The worker's rewrite into a plain GLB is ``pgrf.render.blender.glb``.
Every field pgrf reads is type-checked when the file is loaded: a wrong JSON type is a one-line PgrfError naming
the field, never a traceback later.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgrf import paths
from pgrf.errors import PgrfError

MESHOPT = ("EXT_meshopt_compression", "KHR_meshopt_compression")
"""Buffer-view compression pgrf decodes itself before Blender sees the file."""
BLENDER_READS = frozenset({
    "KHR_materials_pbrSpecularGlossiness", "KHR_lights_punctual", "KHR_materials_unlit", "KHR_texture_transform",
    "KHR_materials_clearcoat", "KHR_mesh_quantization", "EXT_mesh_gpu_instancing", "KHR_draco_mesh_compression",
    "KHR_materials_variants", "KHR_materials_emissive_strength", "KHR_materials_transmission",
    "KHR_materials_specular", "KHR_materials_sheen", "KHR_materials_ior", "KHR_animation_pointer",
    "KHR_materials_volume", "EXT_texture_webp", "KHR_materials_anisotropy",
})
"""Required extensions Blender 5.0's importer accepts (its ``extensions_managed`` list in io_scene_gltf2)."""
BILLBOARD_SUFFIX = "_billboard"
"""Materials whose name ends so (any case) are Megascans/Fab billboard cards, never rendered."""
LOD_NAME = re.compile(r"^(?P<base>.*?)_?LOD(?P<index>\d+)$", re.IGNORECASE)

GLB_MAGIC = b"glTF"
JSON_CHUNK = 0x4E4F534A
BIN_CHUNK = 0x004E4942


OBJECT_ARRAYS = ("nodes", "meshes", "materials", "scenes", "images", "buffers", "bufferViews")
"""Top-level arrays pgrf reads, each of objects."""
STRING_ARRAYS = ("extensionsUsed", "extensionsRequired")
VIEW_INTS = ("buffer", "byteOffset", "byteLength")
MESHOPT_INTS = (*VIEW_INTS, "count", "byteStride")
"""The integers pgrf reads of a buffer view and of its meshopt extension."""


@dataclass(frozen=True)
class _Index:
    """An integer field: an index into the top-level array ``of``, or (``of`` empty) any non-negative integer."""

    of: str = ""
    length: int = 2**53

    def holds(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < self.length

    def __str__(self) -> str:
        if not self.of:
            return "a non-negative integer"
        return f"an index of '{self.of}' (0 to {self.length - 1})" if self.length else f"an index of '{self.of}', which is empty"


NATURAL = _Index()
TYPE_NAMES = {dict: "an object", list: "an array", str: "a string"}


@dataclass(frozen=True)
class MeshNode:
    """A node with a mesh: its name, LOD index (None: the file names no LOD), base mesh and billboard flag."""

    index: int
    name: str
    lod: int | None
    mesh: str
    billboard: bool


@dataclass(frozen=True)
class Gltf:
    """A glTF document with where it came from and, for a GLB, its binary chunk."""

    path: Path
    doc: dict[str, Any]
    binary: bytes = b""


def load(path: Path) -> Gltf:
    """Read a .gltf or .glb; a file that is not glTF 2.0 is a PgrfError naming it."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PgrfError(f"{path}: cannot read it ({error.strerror})") from None
    binary = b""
    if data[:4] == GLB_MAGIC:
        try:
            version, length = struct.unpack_from("<II", data, 4)
            json_length, json_type = struct.unpack_from("<II", data, 12)
            text = data[20:20 + json_length]
            if version != 2 or json_type != JSON_CHUNK:
                raise ValueError("not a glTF 2.0 GLB")
            offset = 20 + json_length
            if offset + 8 <= min(length, len(data)):
                bin_length, bin_type = struct.unpack_from("<II", data, offset)
                if bin_type == BIN_CHUNK:
                    binary = data[offset + 8:offset + 8 + bin_length]
        except (struct.error, ValueError) as error:
            raise PgrfError(f"{path}: not a readable GLB ({error}); re-export or re-download it") from None
    else:
        text = data
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("top level is not an object")
    except (ValueError, UnicodeDecodeError) as error:
        raise PgrfError(f"{path}: glTF JSON does not parse ({error}); re-export or re-download it") from None
    wrong = _wrong_type(doc)
    if wrong:
        raise PgrfError(f"{path}: glTF field {wrong}; re-export or re-download it")
    return Gltf(path, doc, binary)


def uris(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(kind, uri)`` of every buffer and image that names its data by uri (``data:`` uris included)."""
    return [(kind, item["uri"]) for kind, key in (("buffer", "buffers"), ("image", "images"))
            for item in doc.get(key) or [] if isinstance(item, dict) and isinstance(item.get("uri"), str)]


def uri_path(gltf: Gltf, kind: str, uri: str) -> Path:
    """Where a buffer's or image's (non-``data:``) uri points: a file in the glTF's folder, or a PgrfError naming
    the uri when it leads out of that folder (``..``, absolute, ``file:``, a drive, a link out)."""
    return paths.uri_inside(gltf.path.parent, uri, f"{gltf.path}: {kind} uri",
                            "embed it in the file or keep it beside the glTF, then re-export", "the glTF's folder")


def check_uris(gltf: Gltf) -> None:
    """Refuse a document whose uris lead out of its folder: Blender's importer would read those files itself."""
    for kind, uri in uris(gltf.doc):
        if not uri.startswith("data:"):
            uri_path(gltf, kind, uri)


def _wrong_type(doc: dict[str, Any]) -> str | None:
    """The first field pgrf reads whose JSON type is wrong, as ``'name' must be …; got …``, or None. Only what
    pgrf itself reads is checked (Blender's importer checks the rest)."""
    for name, value, expected in _fields(doc):
        if not (expected.holds(value) if isinstance(expected, _Index) else isinstance(value, expected)):
            return f"'{name}' must be {expected if isinstance(expected, _Index) else TYPE_NAMES[expected]}; " \
                   f"got {json.dumps(value)[:40]}"
    return None


def _fields(doc: dict[str, Any]) -> Iterator[tuple[str, Any, type | _Index]]:
    """(name, value, expected type) of every field pgrf reads, each holder before what it holds, so that a field
    is only reached once its holder has the right type."""
    yield "asset", doc.get("asset", {}), dict
    for name, kind in (*((n, dict) for n in OBJECT_ARRAYS), *((n, str) for n in STRING_ARRAYS)):
        yield name, doc.get(name, []), list
        for i, item in enumerate(doc.get(name, [])):
            yield f"{name}[{i}]", item, kind
    for i, mesh in enumerate(doc.get("meshes", [])):
        yield f"meshes[{i}].primitives", mesh.get("primitives", []), list
        for j, primitive in enumerate(mesh.get("primitives", [])):
            yield f"meshes[{i}].primitives[{j}]", primitive, dict
    for i, node in enumerate(doc.get("nodes", [])):
        if "mesh" in node:
            yield f"nodes[{i}].mesh", node["mesh"], _Index("meshes", len(doc.get("meshes", [])))
    for name in ("images", "buffers"):
        for i, item in enumerate(doc.get(name, [])):
            if "uri" in item:
                yield f"{name}[{i}].uri", item["uri"], str
    for i, view in enumerate(doc.get("bufferViews", [])):
        yield from ((f"bufferViews[{i}].{key}", view[key], NATURAL) for key in VIEW_INTS if key in view)
        yield f"bufferViews[{i}].extensions", view.get("extensions", {}), dict
        for name in MESHOPT:
            if name in view.get("extensions", {}):
                where, compressed = f"bufferViews[{i}].extensions.{name}", view["extensions"][name]
                yield where, compressed, dict
                yield from ((f"{where}.{key}", compressed[key], NATURAL) for key in MESHOPT_INTS if key in compressed)


def unreadable_extensions(doc: dict[str, Any]) -> list[str]:
    """Required extensions that neither Blender 5.0 nor pgrf can read."""
    return sorted(set(doc.get("extensionsRequired") or []) - BLENDER_READS - set(MESHOPT))


def problem(path: Path) -> str | None:
    """Why a glTF file cannot be rendered (unreadable, or an extension nothing here reads), or None; the caller
    names the file."""
    try:
        document = load(path)
        check_uris(document)
    except PgrfError as error:
        return str(error).removeprefix(f"{path}: ")
    missing = unreadable_extensions(document.doc)
    if missing:
        return (f"requires glTF extension {', '.join(missing)}, which Blender 5.0 cannot read; "
                "re-export it without (e.g. gltf-transform with PNG/JPEG textures)")
    return None


def mesh_nodes(doc: dict[str, Any]) -> list[MeshNode]:
    """Every node with a mesh. LOD and base mesh from ``extras.lod = {index, mesh}``, else from a ``_LOD<n>`` name."""
    materials = doc.get("materials") or []
    meshes = doc.get("meshes") or []
    found = []
    for index, node in enumerate(doc.get("nodes") or []):
        if not isinstance(node.get("mesh"), int) or node["mesh"] >= len(meshes):
            continue
        name = str(node.get("name") or f"node{index}")
        extras = node.get("extras") if isinstance(node.get("extras"), dict) else {}
        lod_info = extras.get("lod")
        named = LOD_NAME.match(name)
        if isinstance(lod_info, dict) and isinstance(lod_info.get("index"), int):
            lod, mesh = lod_info["index"], str(lod_info.get("mesh") or (named["base"] if named else name))
        elif named:
            lod, mesh = int(named["index"]), named["base"]
        else:
            lod, mesh = None, name
        primitives = meshes[node["mesh"]].get("primitives") or []
        billboard = bool(primitives) and all(is_billboard(p, materials) for p in primitives)
        found.append(MeshNode(index, name, lod, mesh, billboard))
    return found


def is_billboard(primitive: dict[str, Any], materials: list[dict[str, Any]]) -> bool:
    """Whether a primitive's material is a billboard card (its name ends in ``BILLBOARD_SUFFIX``)."""
    material = primitive.get("material")
    if not isinstance(material, int) or material >= len(materials):
        return False
    return str(materials[material].get("name") or "").lower().endswith(BILLBOARD_SUFFIX)


def lod0(nodes: list[MeshNode]) -> list[MeshNode]:
    """The nodes a model is made of: billboards dropped and, when any node names a LOD, LOD0 only."""
    kept = [n for n in nodes if not n.billboard]
    if any(n.lod is not None for n in kept):
        kept = [n for n in kept if n.lod == 0]
    return kept


def selected(nodes: list[MeshNode], objects: tuple[str, ...], path: Path) -> list[MeshNode]:
    """The nodes named by ``objects`` (ModelSpec.objects), or the LOD0 rule when it is empty."""
    if not objects:
        return lod0(nodes)
    chosen = [n for n in nodes if n.name in objects and not n.billboard]
    missing = set(objects) - {n.name for n in chosen}
    if missing:
        raise PgrfError(f"{path}: no mesh node named {', '.join(sorted(missing))}; re-run discovery")
    return chosen
