"""glTF inputs without Blender: meshopt decoding, LOD0/billboard selection, the plain GLB the worker imports,
unreadable extensions found at discovery, and Fab downloads (tests/libraries/gltf_assets.py writes them)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pgrf.assets import archives
from pgrf.assets.discovery import discover
from pgrf.config import Category
from pgrf.errors import PgrfError
from pgrf.formats import gltf
from pgrf.render.blender import glb
from tests.libraries.gltf_assets import GltfBuilder, box, fab_gltf, two_boxes, write_fab_zip

pytestmark = pytest.mark.render

PLANTS = Category(name="plants", source="fab", types=["3dplant"], match=["plant"])


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))


def _views(doc: dict, binary: bytes) -> list[bytes]:
    return [binary[v["byteOffset"]:v["byteOffset"] + v["byteLength"]] for v in doc["bufferViews"]]


@pytest.mark.parametrize("extension", ["EXT_meshopt_compression", "KHR_meshopt_compression"])
def test_meshopt_decoding_gives_back_the_exact_buffers(tmp_path: Path, extension: str) -> None:
    builder = two_boxes()
    exact = gltf.load(builder.write_meshopt_glb(tmp_path / "indices.glb", extension, index_mode="INDICES"))
    doc, binary = glb.plain_document(exact, {0, 1})
    assert _views(doc, binary) == builder.views
    assert "extensionsRequired" not in doc and doc["buffers"] == [{"byteLength": len(binary)}]
    assert all("extensions" not in view for view in doc["bufferViews"])
    # TRIANGLES mode (what gltfpack writes) may rotate a triangle's corners, never its winding or order
    doc, binary = glb.plain_document(gltf.load(builder.write_meshopt_glb(tmp_path / "tri.glb", extension)), {0, 1})
    for got, want, view in zip(_views(doc, binary), builder.views, doc["bufferViews"]):
        if view.get("byteStride"):
            assert got == want
        else:
            got_t, want_t = np.frombuffer(got, np.uint32).reshape(-1, 3), np.frombuffer(want, np.uint32).reshape(-1, 3)
            assert all(any((np.roll(w, k) == g).all() for k in range(3)) for g, w in zip(got_t, want_t))


def test_the_worker_imports_plain_files_as_they_are_and_rewrites_the_rest(tmp_path: Path) -> None:
    builder = two_boxes()
    plain = builder.write_glb(tmp_path / "plain.glb")
    assert glb.importable(plain, (), tmp_path / "work") == plain
    rewritten = glb.importable(builder.write_meshopt_glb(tmp_path / "packed.glb"), (), tmp_path / "work")
    assert rewritten == tmp_path / "work" / "packed.glb"
    doc = gltf.load(rewritten).doc
    assert "extensionsUsed" not in doc and len(doc["buffers"]) == 1


def test_lod0_from_extras_then_names_and_billboards_dropped(tmp_path: Path) -> None:
    fab = gltf.mesh_nodes(fab_gltf(GltfBuilder(), "abc", "high").doc)
    assert [n.name for n in gltf.lod0(fab)] == ["SM_abc_Var1_LOD0", "SM_abc_Var2_LOD0"]
    assert {n.mesh for n in fab} == {"SM_abc_Var1", "SM_abc_Var2"}
    named = GltfBuilder()
    leaf, card = named.material("leaf", (0, 1, 0, 1)), named.material("MI_fern_billboard", (1, 1, 1, 1))
    named.node("fern_LOD1", named.mesh([(*box((0, 0, 0), (1, 1, 1)), leaf)]))
    named.node("fern_LOD0", named.mesh([(*box((0, 0, 0), (1, 1, 2)), leaf)]))
    named.node("card", named.mesh([(*box((0, 0, 0), (2, 0.01, 2)), card)]))
    nodes = gltf.mesh_nodes(named.doc)
    assert [(n.name, n.lod, n.mesh) for n in gltf.lod0(nodes)] == [("fern_LOD0", 0, "fern")]
    assert [n.name for n in gltf.lod0(gltf.mesh_nodes(two_boxes().doc))] == ["base", "top"]  # no LODs: whole file
    assert [n.name for n in gltf.lod0([n for n in nodes if n.lod is None])] == []  # a lone billboard is no model


def test_a_pruned_glb_keeps_the_selected_nodes_meshes_and_embeds_images(tmp_path: Path) -> None:
    builder = fab_gltf(GltfBuilder(), "abc", "high")
    (tmp_path / "leaf.png").write_bytes(b"\x89PNG fake")
    builder.doc["images"] = [{"uri": "leaf.png"}]
    source = builder.write_gltf(tmp_path / "abc_high.gltf")
    doc = gltf.load(glb.importable(source, ("SM_abc_Var2_LOD0",), tmp_path / "work")).doc
    assert [n["name"] for n in doc["nodes"] if "mesh" in n] == ["SM_abc_Var2_LOD0"]
    assert len(doc["nodes"]) == len(builder.doc["nodes"])  # pruned nodes stay (as empties) in the hierarchy
    written = gltf.load(tmp_path / "work" / "abc_high.glb")
    image = written.doc["images"][0]
    view = written.doc["bufferViews"][image["bufferView"]]
    assert image["mimeType"] == "image/png"
    assert written.binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]] == b"\x89PNG fake"
    with pytest.raises(PgrfError, match="no mesh node named nope"):
        glb.importable(source, ("nope",), tmp_path / "work")


def test_an_unreadable_required_extension_is_one_discovery_problem(tmp_path: Path) -> None:
    builder = two_boxes()
    builder.doc["extensionsUsed"] = builder.doc["extensionsRequired"] = ["KHR_texture_basisu"]
    bad = builder.write_glb(tmp_path / "lib" / "props" / "ktx.glb")
    two_boxes().write_meshopt_glb(tmp_path / "lib" / "props" / "packed.glb")
    catalog = discover(tmp_path / "lib", Category(name="props", source="folders"))
    assert [m.model_id for m in catalog.models] == ["props_packed"]  # meshopt is read, by pgrf
    assert len(catalog.problems) == 1 and catalog.problems[0].path == str(bad)
    assert catalog.problems[0].reason.startswith("requires glTF extension KHR_texture_basisu")
    (tmp_path / "lib" / "props" / "broken.gltf").write_text("{not json")
    reasons = [p.reason for p in discover(tmp_path / "lib", Category(name="props", source="folders")).problems]
    assert len(reasons) == 2 and "does not parse" in reasons[0] and "\n" not in reasons[0]


def _leaky_library(root: Path, kind: str, uri: str) -> Path:
    """``root/lib/props/leaky.gltf`` whose image (or buffer) uri is ``uri``; a secret image lies in ``root/private``."""
    (root / "private").mkdir()
    (root / "lib" / "props").mkdir(parents=True)
    (root / "private" / "secret.png").write_bytes(b"\x89PNG secret")
    builder = two_boxes()
    builder.doc["images"] = [{"uri": "leaf.png"}]
    path = builder.write_gltf(root / "lib" / "props" / "leaky.gltf")
    (path.parent / "leaf.png").write_bytes(b"\x89PNG leaf")
    (path.parent / "link.png").symlink_to(root / "private" / "secret.png")
    (path.parent / "link.bin").symlink_to(shutil.copy(path.with_suffix(".bin"), root / "private" / "leaky.bin"))
    doc = json.loads(path.read_text())
    doc["images" if kind == "image" else "buffers"][0]["uri"] = uri
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("kind", "uri"), [
    ("image", "../../private/secret.png"), ("image", "{root}/private/secret.png"), ("image", "file://{root}/private/secret.png"),
    ("image", "%2E%2E/%2E%2E/private/secret.png"), ("image", "link.png"), ("buffer", "link.bin"),
])
def test_a_uri_leading_out_of_the_gltf_folder_is_a_problem_and_never_read(tmp_path: Path, kind: str, uri: str) -> None:
    uri = uri.format(root=tmp_path)
    path = _leaky_library(tmp_path, kind, uri)
    catalog = discover(tmp_path / "lib", Category(name="props", source="folders"))
    assert catalog.models == [] and [p.path for p in catalog.problems] == [str(path)]
    reason = catalog.problems[0].reason
    assert reason.startswith(f"{kind} uri {uri!r} points outside the glTF's folder") and "\n" not in reason
    with pytest.raises(PgrfError, match="points outside the glTF's folder"):
        glb.importable(path, (), tmp_path / "work")  # as it is, Blender would read the file itself
    with pytest.raises(PgrfError, match="points outside the glTF's folder"):
        glb.plain_document(gltf.load(path), {0, 1})


def test_data_and_http_uris_behave_as_before(tmp_path: Path) -> None:
    builder = two_boxes()
    builder.doc["images"] = [{"uri": "data:image/png;base64,iVBORw0K"}, {"uri": "http://example.invalid/leaf.png"}]
    (tmp_path / "lib" / "props").mkdir(parents=True)
    path = builder.write_gltf(tmp_path / "lib" / "props" / "web.gltf")
    assert gltf.problem(path) is None and glb.importable(path, (), tmp_path / "work") == path
    with pytest.raises(PgrfError, match="cannot read http://example.invalid/leaf.png"):  # never fetched
        glb.plain_document(gltf.load(path), {0, 1})
    builder.doc["images"] = builder.doc["images"][:1]
    doc, binary = glb.plain_document(gltf.load(builder.write_gltf(path)), {0, 1})
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    assert doc["images"][0]["mimeType"] == "image/png" and binary[view["byteOffset"]:][:6] == b"\x89PNG\r\n"


def _fab_library(root: Path) -> Path:
    root.mkdir()
    write_fab_zip(root, "tbdpec3r", "Wild Grass", "high")
    write_fab_zip(root, "tbdpec3r", "Wild Grass", "medium")
    extracted = root / "Fern_sfmhcbkr_raw"
    with zipfile.ZipFile(write_fab_zip(root, "sfmhcbkr", "Fern", "raw")) as handle:
        handle.extractall(extracted)
    (root / "Fern_sfmhcbkr_raw.zip").unlink()
    apple = fab_gltf(GltfBuilder(), "vhzdaa3", "high", {"Apple": [((0, 0, 0), (1, 1, 1)), ((0, 0, 0), (1, 1, 0.5))]})
    write_fab_zip(root, "vhzdaa3", "Apple", "high", categories=["3d", "food", "fruit"], tags=["apple", "fruit"],
                  builder=apple)
    return root


def test_fab_one_model_per_variant_at_the_highest_tier_with_lod0_nodes(tmp_path: Path) -> None:
    catalog = discover(_fab_library(tmp_path / "fab"), PLANTS)
    models = {m.model_id: m for m in catalog.models}
    assert set(models) == {"tbdpec3r_var1", "tbdpec3r_var2", "sfmhcbkr_var1", "sfmhcbkr_var2"}  # not the apple
    grass = models["tbdpec3r_var2"]
    assert grass.objects == ("SM_tbdpec3r_Var2_LOD0",) and grass.source == "fab"
    assert grass.files[0].endswith("Wild_Grass_tbdpec3r_high.gltf") and Path(grass.files[0]).is_file()
    assert (grass.asset_id, grass.asset_name, grass.class_name) == ("tbdpec3r", "Wild Grass", "wild grass")
    assert models["sfmhcbkr_var1"].files[0].startswith(str(tmp_path / "fab" / "Fern_sfmhcbkr_raw"))  # folder as is
    assert not catalog.problems
    medium = discover(tmp_path / "fab", Category(name="plants", source="fab", types=["3dplant"], tier="medium"))
    assert {m.files[0].rsplit("_", 1)[-1] for m in medium.models} == {"medium.gltf"}
    assert len(medium.problems) == 1 and "no 'medium' tier (present: raw)" in medium.problems[0].reason
    food = discover(tmp_path / "fab", Category(name="food", source="fab", types=["3d"], match=["fruit"],
                                               class_from="category"))
    assert [(m.model_id, m.class_name) for m in food.models] == [("vhzdaa3", "fruit")]
    # the same library under source = "megascans" is recognised as Fab
    assert {m.model_id for m in discover(tmp_path / "fab", Category(name="plants", types=["3dplant"])).models} == set(models)


def test_fab_problems_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "fab"
    root.mkdir()
    builder = fab_gltf(GltfBuilder(), "ktx", "high")
    builder.doc["extensionsUsed"] = builder.doc["extensionsRequired"] = ["KHR_texture_basisu"]
    write_fab_zip(root, "ktx", "Basis Grass", "high", builder=builder)
    (root / "broken.zip").write_bytes(b"not a zip")
    catalog = discover(root, PLANTS)
    assert not catalog.models
    reasons = {Path(p.path).name: p.reason for p in catalog.problems}
    assert reasons["Basis_Grass_ktx_high.zip"].startswith("Basis_Grass_ktx_high.gltf: requires glTF extension "
                                                          "KHR_texture_basisu")
    assert "not a readable zip" in reasons["broken.zip"]
    shutil.rmtree(root)
    root.mkdir()
    (root / "notes.txt").write_text("hello")
    assert "no Fab downloads" in discover(root, PLANTS).problems[0].reason
    assert json.dumps([p.reason for p in discover(root, PLANTS).problems]).count("\\n") == 0


@pytest.mark.parametrize("field, value, reason", [
    ("extensionsRequired", 5, "glTF field 'extensionsRequired' must be an array; got 5"),
    ("nodes", [1], "glTF field 'nodes[0]' must be an object; got 1"),
    ("meshes", [{"primitives": {}}], "glTF field 'meshes[0].primitives' must be an array; got {}"),
    ("bufferViews", [{"buffer": "0", "byteLength": 4}], "glTF field 'bufferViews[0].buffer' must be a non-negative integer; got \"0\""),
])
def test_a_gltf_field_of_the_wrong_json_type_is_one_problem_and_the_rest_is_listed(
        tmp_path: Path, field: str, value: object, reason: str) -> None:
    folders = tmp_path / "lib" / "props"
    two_boxes().write_glb(folders / "good.glb")
    builder = two_boxes()
    builder.doc[field] = value
    bad = builder.write_gltf(folders / "bad.gltf")
    catalog = discover(tmp_path / "lib", Category(name="props", source="folders"))
    assert [m.model_id for m in catalog.models] == ["props_good"]
    assert [(p.path, p.reason) for p in catalog.problems] == [(str(bad), reason + "; re-export or re-download it")]

    fab = tmp_path / "fab"
    fab.mkdir()
    write_fab_zip(fab, "tbdpec3r", "Wild Grass", "high")
    broken = fab_gltf(GltfBuilder(), "sfmhcbkr", "high")
    broken.doc[field] = value
    write_fab_zip(fab, "sfmhcbkr", "Fern", "high", builder=broken)
    catalog = discover(fab, PLANTS)
    assert {m.asset_id for m in catalog.models} == {"tbdpec3r"}
    assert [(Path(p.path).name, p.reason) for p in catalog.problems] == [
        ("Fern_sfmhcbkr_high.zip", f"Fern_sfmhcbkr_high.gltf: {reason}; re-export or re-download it")]


def test_fab_metadata_categories_of_the_wrong_json_type_are_read_leniently(tmp_path: Path) -> None:
    fab = tmp_path / "fab"
    fab.mkdir()
    archive = write_fab_zip(fab, "tbdpec3r", "Wild Grass", "high")
    with zipfile.ZipFile(archive) as handle:
        members = {name: handle.read(name) for name in handle.namelist()}
    members["tbdpec3r.json"] = json.dumps({"id": "tbdpec3r", "name": "Wild Grass", "categories": 5,
                                           "tags": ["grass", "plant"]}).encode()
    with zipfile.ZipFile(archive, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    for class_from in ("name", "category"):
        catalog = discover(fab, Category(name="plants", source="fab", types=["3dplant"], match=["plant"],
                                         class_from=class_from))
        assert {(m.asset_id, m.class_name) for m in catalog.models} == {("tbdpec3r", "wild grass")}
        assert not catalog.problems
