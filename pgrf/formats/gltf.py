"""glTF 2.0 files (.gltf with its buffers, .glb) read and rewritten without Blender.

Discovery reads a file's JSON to list its mesh nodes (LOD index, base mesh, billboard) and the required
extensions Blender 5.0 cannot read; the render worker writes a plain GLB that Blender can import:
meshopt-compressed buffer views decoded (``EXT_meshopt_compression``/``KHR_meshopt_compression``, with the
``meshopt`` package), external images embedded, and only the chosen nodes' meshes kept.

Node selection is done here, by pruning the GLB before import, not by deleting Blender objects afterwards:
the choice then does not depend on how Blender names objects or keeps extras, and discovery and render read
the same node names. A pruned node keeps its place in the hierarchy (its transform still applies to its
children) but loses its mesh.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import meshopt
import numpy as np

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
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


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
    return Gltf(path, doc, binary)


def unreadable_extensions(doc: dict[str, Any]) -> list[str]:
    """Required extensions that neither Blender 5.0 nor pgrf can read."""
    return sorted(set(doc.get("extensionsRequired") or []) - BLENDER_READS - set(MESHOPT))


def problem(path: Path) -> str | None:
    """Why a glTF file cannot be rendered (unreadable, or an extension nothing here reads), or None; the caller
    names the file."""
    try:
        doc = load(path).doc
    except PgrfError as error:
        return str(error).removeprefix(f"{path}: ")
    missing = unreadable_extensions(doc)
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
        billboard = bool(primitives) and all(_billboard(p, materials) for p in primitives)
        found.append(MeshNode(index, name, lod, mesh, billboard))
    return found


def _billboard(primitive: dict[str, Any], materials: list[dict[str, Any]]) -> bool:
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


def importable(path: Path, objects: tuple[str, ...], folder: Path) -> Path:
    """The file Blender should import for a model: ``path`` itself when it needs nothing, else a plain GLB in ``folder``
    (meshopt decoded, images embedded, only the selected nodes' meshes, billboard primitives dropped)."""
    gltf = load(path)
    nodes = mesh_nodes(gltf.doc)
    keep = selected(nodes, objects, path)
    compressed = set(gltf.doc.get("extensionsUsed") or []) & set(MESHOPT)
    billboards = any(_billboard(p, gltf.doc.get("materials") or [])
                     for n in keep for p in gltf.doc["meshes"][gltf.doc["nodes"][n.index]["mesh"]].get("primitives") or [])
    if not compressed and not billboards and len(keep) == len(nodes):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.glb"
    write_glb(target, plain_document(gltf, {n.index for n in keep}))
    return target


def plain_document(gltf: Gltf, keep: set[int]) -> tuple[dict[str, Any], bytes]:
    """The document rewritten onto one binary buffer: meshopt decoded, images embedded, only ``keep``'s meshes."""
    doc = copy.deepcopy(gltf.doc)
    views = [_view_bytes(gltf, view) for view in doc.get("bufferViews") or []]
    for image in doc.get("images") or []:
        if "uri" in image:
            data, mime = _image_bytes(gltf, image["uri"])
            image.pop("uri")
            image["bufferView"], image["mimeType"] = len(views), image.get("mimeType") or mime
            views.append(data)
            doc.setdefault("bufferViews", []).append({"buffer": 0})
    binary = bytearray()
    for view, data in zip(doc.get("bufferViews") or [], views):
        for name in MESHOPT:
            (view.get("extensions") or {}).pop(name, None)
        if not view.get("extensions"):
            view.pop("extensions", None)
        view.update(buffer=0, byteOffset=len(binary), byteLength=len(data))
        binary += data + b"\0" * (-len(data) % 4)
    doc["buffers"] = [{"byteLength": len(binary)}]
    for key in ("extensionsUsed", "extensionsRequired"):
        rest = [e for e in doc.get(key) or [] if e not in MESHOPT]
        doc[key] = rest
        if not rest:
            doc.pop(key)
    _prune(doc, keep)
    return doc, bytes(binary)


def _prune(doc: dict[str, Any], keep: set[int]) -> None:
    """Take the meshes off nodes not in ``keep`` and billboard primitives out of the kept meshes."""
    materials = doc.get("materials") or []
    for index, node in enumerate(doc.get("nodes") or []):
        if "mesh" not in node:
            continue
        if index not in keep:
            for key in ("mesh", "skin", "weights"):
                node.pop(key, None)
            continue
        mesh = doc["meshes"][node["mesh"]]
        mesh["primitives"] = [p for p in mesh.get("primitives") or [] if not _billboard(p, materials)]


def _buffer(gltf: Gltf, index: int) -> bytes:
    buffers = gltf.doc.get("buffers") or []
    if index >= len(buffers):
        raise PgrfError(f"{gltf.path}: buffer {index} does not exist; re-export or re-download it")
    uri = buffers[index].get("uri")
    if uri is None:
        return gltf.binary
    return _uri_bytes(gltf, uri)


def _uri_bytes(gltf: Gltf, uri: str) -> bytes:
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1])
    path = gltf.path.parent / unquote(uri)
    try:
        return path.read_bytes()
    except OSError as error:
        raise PgrfError(f"{gltf.path}: cannot read {uri} ({error.strerror}); keep it next to the glTF") from None


def _image_bytes(gltf: Gltf, uri: str) -> tuple[bytes, str]:
    if uri.startswith("data:"):
        return _uri_bytes(gltf, uri), uri[5:].split(";", 1)[0]
    return _uri_bytes(gltf, uri), IMAGE_TYPES.get(Path(unquote(uri)).suffix.lower(), "image/png")


def _view_bytes(gltf: Gltf, view: dict[str, Any]) -> bytes:
    """A buffer view's plain bytes, meshopt-decoded when it is compressed."""
    extensions = view.get("extensions") or {}
    compressed = next((extensions[name] for name in MESHOPT if name in extensions), None)
    if compressed is None:
        start = view.get("byteOffset", 0)
        return _buffer(gltf, view.get("buffer", 0))[start:start + view["byteLength"]]
    start = compressed.get("byteOffset", 0)
    data = _buffer(gltf, compressed["buffer"])[start:start + compressed["byteLength"]]
    mode = compressed.get("mode")
    filter_name = compressed.get("filter", "NONE")
    try:
        decoded = meshopt.decode_gltf_buffer(data, compressed["count"], compressed["byteStride"], mode,
                                             None if filter_name == "NONE" else filter_name)
    except (ValueError, RuntimeError, KeyError) as error:
        raise PgrfError(f"{gltf.path}: a meshopt buffer view does not decode ({error}); re-download the file") from None
    return np.ascontiguousarray(decoded).tobytes()


def write_glb(path: Path, document: tuple[dict[str, Any], bytes]) -> None:
    """Write a GLB from a document and its one binary buffer."""
    doc, binary = document
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), JSON_CHUNK) + text
    if binary:
        chunks += struct.pack("<II", len(binary), BIN_CHUNK) + binary
    path.write_bytes(GLB_MAGIC + struct.pack("<II", 2, 12 + len(chunks)) + chunks)
