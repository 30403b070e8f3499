"""The plain GLB a render worker hands to Blender's importer, written without Blender.

Blender 5.0 refuses meshopt-compressed buffer views (``EXT_meshopt_compression``/``KHR_meshopt_compression``),
so those are decoded here with the ``meshopt`` package; external images are embedded, and only the chosen
nodes' meshes are kept. Node selection is done by pruning the GLB before import, not by deleting Blender
objects afterwards: the choice then does not depend on how Blender names objects or keeps extras. A pruned
node keeps its place in the hierarchy (its transform still applies to its children) but loses its mesh.
"""

from __future__ import annotations

import base64
import copy
import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from pgrf.errors import PgrfError
from pgrf.formats.gltf import (
    BIN_CHUNK,
    GLB_MAGIC,
    JSON_CHUNK,
    MESHOPT,
    Gltf,
    check_uris,
    is_billboard,
    load,
    mesh_nodes,
    selected,
    uri_path,
)

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def importable(path: Path, objects: tuple[str, ...], folder: Path) -> Path:
    """The file Blender should import for a model: ``path`` itself when it needs nothing, else a plain GLB in ``folder``
    (meshopt decoded, images embedded, only the selected nodes' meshes, billboard primitives dropped)."""
    gltf = load(path)
    check_uris(gltf)  # also when the file is imported as it is: Blender reads plain paths and file: uris itself
    nodes = mesh_nodes(gltf.doc)
    keep = selected(nodes, objects, path)
    compressed = set(gltf.doc.get("extensionsUsed") or []) & set(MESHOPT)
    billboards = any(is_billboard(p, gltf.doc.get("materials") or [])
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
        mesh["primitives"] = [p for p in mesh.get("primitives") or [] if not is_billboard(p, materials)]


def _buffer(gltf: Gltf, index: int) -> bytes:
    buffers = gltf.doc.get("buffers") or []
    if index >= len(buffers):
        raise PgrfError(f"{gltf.path}: buffer {index} does not exist; re-export or re-download it")
    uri = buffers[index].get("uri")
    if uri is None:
        return gltf.binary
    return _uri_bytes(gltf, "buffer", uri)


def _uri_bytes(gltf: Gltf, kind: str, uri: str) -> bytes:
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1])
    path = uri_path(gltf, kind, uri)
    try:
        return path.read_bytes()
    except OSError as error:
        raise PgrfError(f"{gltf.path}: cannot read {uri} ({error.strerror}); keep it next to the glTF") from None


def _image_bytes(gltf: Gltf, uri: str) -> tuple[bytes, str]:
    if uri.startswith("data:"):
        return _uri_bytes(gltf, "image", uri), uri[5:].split(";", 1)[0]
    return _uri_bytes(gltf, "image", uri), IMAGE_TYPES.get(Path(unquote(uri)).suffix.lower(), "image/png")


def _view_bytes(gltf: Gltf, view: dict[str, Any]) -> bytes:
    """A buffer view's plain bytes, meshopt-decoded when it is compressed."""
    extensions = view.get("extensions") or {}
    compressed = next((extensions[name] for name in MESHOPT if name in extensions), None)
    if compressed is None:
        start = view.get("byteOffset", 0)
        return _buffer(gltf, view.get("buffer", 0))[start:start + view["byteLength"]]
    start = compressed.get("byteOffset", 0)
    data = _buffer(gltf, compressed["buffer"])[start:start + compressed["byteLength"]]
    import meshopt  # imported only for the files that need it

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
