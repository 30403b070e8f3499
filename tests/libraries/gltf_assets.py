"""Real glTF inputs for the tests, written with numpy and json: plain and meshopt-compressed GLBs, glTFs with
LOD nodes and billboards, and Fab-style zips (one glTF with every LOD and variant, plus Bridge-style JSON)."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT = 5126
UNSIGNED_INT = 5125


def box(centre: tuple[float, float, float], size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box: 8 float32 corners and 12 outward-facing triangles (uint32)."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=np.float32)
    positions = (corners * np.array(size, dtype=np.float32) + np.array(centre, dtype=np.float32)).astype(np.float32)
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    indices = np.array([[a, b, c, a, c, d] for a, b, c, d in faces], dtype=np.uint32).reshape(-1)
    return positions, indices


class GltfBuilder:
    """A glTF document built node by node; every mesh has positions (with a byteStride) and uint32 triangles."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {"asset": {"version": "2.0", "generator": "pgrf tests"}, "scene": 0,
                                    "scenes": [{"nodes": []}], "nodes": [], "meshes": [], "materials": [],
                                    "accessors": [], "bufferViews": []}
        self.views: list[bytes] = []

    def material(self, name: str, rgba: tuple[float, float, float, float]) -> int:
        self.doc["materials"].append({"name": name, "pbrMetallicRoughness": {"baseColorFactor": list(rgba),
                                                                             "metallicFactor": 0.0}})
        return len(self.doc["materials"]) - 1

    def _view(self, data: np.ndarray, target: int, stride: int | None) -> int:
        view: dict[str, Any] = {"buffer": 0, "byteLength": data.nbytes, "target": target}
        if stride:
            view["byteStride"] = stride
        self.doc["bufferViews"].append(view)
        self.views.append(data.tobytes())
        return len(self.views) - 1

    def mesh(self, parts: list[tuple[np.ndarray, np.ndarray, int]]) -> int:
        """A mesh of one primitive per (positions, indices, material)."""
        primitives = []
        for positions, indices, material in parts:
            accessors = self.doc["accessors"]
            accessors.append({"bufferView": self._view(positions, ARRAY_BUFFER, 12), "componentType": FLOAT,
                              "count": len(positions), "type": "VEC3", "min": positions.min(0).tolist(),
                              "max": positions.max(0).tolist()})
            accessors.append({"bufferView": self._view(indices, ELEMENT_ARRAY_BUFFER, None),
                              "componentType": UNSIGNED_INT, "count": len(indices), "type": "SCALAR"})
            primitives.append({"attributes": {"POSITION": len(accessors) - 2}, "indices": len(accessors) - 1,
                               "material": material})
        self.doc["meshes"].append({"primitives": primitives})
        return len(self.doc["meshes"]) - 1

    def node(self, name: str, mesh: int, extras: dict[str, Any] | None = None) -> int:
        node: dict[str, Any] = {"name": name, "mesh": mesh}
        if extras:
            node["extras"] = extras
        self.doc["nodes"].append(node)
        self.doc["scenes"][0]["nodes"].append(len(self.doc["nodes"]) - 1)
        return len(self.doc["nodes"]) - 1

    def packed(self) -> tuple[dict[str, Any], bytes]:
        """The document on one binary buffer (views 4-byte aligned) and that buffer."""
        doc = json.loads(json.dumps(self.doc))
        binary = bytearray()
        for view, data in zip(doc["bufferViews"], self.views):
            view["byteOffset"] = len(binary)
            binary += data + b"\0" * (-len(data) % 4)
        doc["buffers"] = [{"byteLength": len(binary)}]
        return doc, bytes(binary)

    def write_glb(self, path: Path) -> Path:
        doc, binary = self.packed()
        return _glb(path, doc, binary)

    def write_gltf(self, path: Path) -> Path:
        """A .gltf with its buffer in ``<stem>.bin`` next to it."""
        doc, binary = self.packed()
        doc["buffers"][0]["uri"] = f"{path.stem}.bin"
        path.with_suffix(".bin").write_bytes(binary)
        path.write_text(json.dumps(doc, indent=1))
        return path

    def write_meshopt_glb(self, path: Path, extension: str = "EXT_meshopt_compression", index_mode: str = "TRIANGLES") -> Path:
        """The same document with every buffer view meshopt-encoded (no lossy filters) in the GLB chunk and an
        uncompressed fallback buffer that has no data, as gltfpack writes it. Indices in TRIANGLES mode come back
        with each triangle's vertices possibly rotated (winding kept), in INDICES mode exactly."""
        import meshopt  # the render half's (not in the train-only environment)

        doc, plain = self.packed()
        compressed = bytearray()
        for view, data in zip(doc["bufferViews"], self.views):
            if view.get("target") == ARRAY_BUFFER:
                stride, mode = view["byteStride"], "ATTRIBUTES"
                encoded = meshopt.encode_gltf_buffer(np.frombuffer(data, np.uint8).reshape(-1, stride), mode)
            else:
                stride, mode = 4, index_mode
                encoded = meshopt.encode_gltf_buffer(np.frombuffer(data, np.uint32), mode)
            view["buffer"] = 1
            view["extensions"] = {extension: {"buffer": 0, "byteOffset": len(compressed), "byteLength": len(encoded),
                                              "byteStride": stride, "count": len(data) // stride, "mode": mode}}
            compressed += encoded + b"\0" * (-len(encoded) % 4)
        doc["buffers"] = [{"byteLength": len(compressed)},
                          {"byteLength": len(plain), "extensions": {extension: {"fallback": True}}}]
        doc["extensionsUsed"] = doc["extensionsRequired"] = [extension]
        return _glb(path, doc, bytes(compressed))


def _glb(path: Path, doc: dict[str, Any], binary: bytes) -> Path:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    return path


def two_boxes() -> GltfBuilder:
    """A small model of two coloured boxes, no LODs."""
    builder = GltfBuilder()
    red, green = builder.material("red", (0.8, 0.1, 0.1, 1.0)), builder.material("green", (0.1, 0.7, 0.2, 1.0))
    builder.node("base", builder.mesh([(*box((0, 0, 0), (1.0, 1.0, 0.4)), red)]))
    builder.node("top", builder.mesh([(*box((0.2, 0.1, 0.5), (0.3, 0.5, 0.6)), green)]))
    return builder


LODS = {  # per variant: one box per LOD, each placed and shaped differently so a wrong LOD shows in a render
    "Var1": [((0, 0, 0), (0.4, 0.4, 1.0)), ((0.5, 0, 0), (1.0, 0.3, 0.3)), ((0, 0.4, 0.3), (0.2, 0.8, 0.2))],
    "Var2": [((0, 0, 0), (0.6, 0.6, 0.6)), ((0, 0, 0.5), (0.3, 0.3, 1.2))],
}


def fab_gltf(builder: GltfBuilder, asset_id: str, tier: str, lods: dict[str, list] = LODS) -> GltfBuilder:
    """Fab's layout: ``<id>_<Var>_LOD<n>`` nodes with ``extras.lod = {index, mesh}``, a billboard LOD per variant
    (material ``…_Billboard``) and the tier in ``extras.tier``."""
    leaf = builder.material(f"MI_{asset_id}", (0.2, 0.6, 0.2, 1.0))
    billboard = builder.material(f"MI_{asset_id}_Billboard", (0.9, 0.9, 0.9, 1.0))
    for variant, boxes in lods.items():
        mesh_name = f"SM_{asset_id}_{variant}"
        for index, (centre, size) in enumerate(boxes):
            builder.node(f"{mesh_name}_LOD{index}", builder.mesh([(*box(centre, size), leaf)]),
                         {"lod": {"index": index, "mesh": mesh_name}})
        builder.node(f"{mesh_name}_LOD{len(boxes)}", builder.mesh([(*box((0, 0, 0), (2.0, 0.01, 2.0)), billboard)]),
                     {"lod": {"index": len(boxes), "mesh": mesh_name}})
    builder.doc["asset"]["extras"] = {"tier": tier}
    return builder


def fab_metadata(asset_id: str, name: str, categories: list[str], tags: list[str]) -> dict[str, Any]:
    """Bridge-style metadata as a Fab download carries it."""
    return {"id": asset_id, "name": name, "categories": categories, "tags": tags,
            "semanticTags": {"name": name.lower(), "asset_type": categories[0]}, "assetCategories": {}}


def write_fab_zip(folder: Path, asset_id: str, name: str, tier: str, *, categories: list[str] | None = None,
                  tags: list[str] | None = None, builder: GltfBuilder | None = None) -> Path:
    """``<Name>_<id>_<tier>.zip`` holding ``<name>_<tier>.gltf`` (+ .bin) and ``<id>.json``."""
    staging = folder / f".staging-{asset_id}-{tier}"
    staging.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace(' ', '_')}_{asset_id}_{tier}"
    gltf_path = (builder or fab_gltf(GltfBuilder(), asset_id, tier)).write_gltf(staging / f"{stem}.gltf")
    meta = fab_metadata(asset_id, name, categories or ["3dplant", "plant", "grass"], tags or ["grass", "plant"])
    (staging / f"{asset_id}.json").write_text(json.dumps(meta))
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (gltf_path, gltf_path.with_suffix(".bin"), staging / f"{asset_id}.json"):
            handle.write(path, path.name)
            path.unlink()
    staging.rmdir()
    return archive
