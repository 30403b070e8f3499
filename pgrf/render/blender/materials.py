"""Megascans materials: a Principled BSDF built from the asset's texture maps.

Albedo (sRGB; an EXR map as scene-linear, never sRGB) → Base Color; Normal → Normal Map node; Roughness, or 1 − Gloss → Roughness;
Translucency (leaves) → a Translucent BSDF mixed in; Opacity → a cut-out (threshold 0.5) that mixes
with a Transparent BSDF. Files imported from glTF/OBJ/plain FBX keep the importer's materials.
Runs only inside render worker processes (imports bpy).
"""

from __future__ import annotations

import bpy

TRANSLUCENCY_MIX = 0.3
"""Share of the Translucent BSDF in leaf shading: light through thin leaves without losing their albedo."""

CUTOUT_THRESHOLD = 0.5

FLOAT_SUFFIXES = (".exr", ".hdr")
"""Maps stored as linear floats: their colours are scene-linear data, never sRGB-encoded."""
LINEAR = "Linear Rec.709"


def megascans_material(name: str, textures: dict[str, str]) -> bpy.types.Material:
    """Build the shader graph for one asset's maps (keys: albedo, normal, roughness, gloss, opacity, translucency)."""
    material = bpy.data.materials.new(name)
    tree = material.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = nodes["Principled BSDF"]
    output = nodes["Material Output"]

    def image(key: str, color: bool) -> bpy.types.Node:
        node = nodes.new("ShaderNodeTexImage")
        node.image = bpy.data.images.load(textures[key], check_existing=True)
        if not color:
            node.image.colorspace_settings.name = "Non-Color"
        else:
            node.image.colorspace_settings.name = LINEAR if textures[key].lower().endswith(FLOAT_SUFFIXES) else "sRGB"
        return node

    links.new(image("albedo", True).outputs["Color"], bsdf.inputs["Base Color"])
    if "normal" in textures:
        normal_map = nodes.new("ShaderNodeNormalMap")
        links.new(image("normal", False).outputs["Color"], normal_map.inputs["Color"])
        links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
    if "roughness" in textures:
        links.new(image("roughness", False).outputs["Color"], bsdf.inputs["Roughness"])
    elif "gloss" in textures:
        invert = nodes.new("ShaderNodeMath")
        invert.operation = "SUBTRACT"
        invert.inputs[0].default_value = 1.0
        links.new(image("gloss", False).outputs["Color"], invert.inputs[1])
        links.new(invert.outputs["Value"], bsdf.inputs["Roughness"])
    surface = bsdf.outputs["BSDF"]
    if "translucency" in textures:
        translucent = nodes.new("ShaderNodeBsdfTranslucent")
        links.new(image("translucency", True).outputs["Color"], translucent.inputs["Color"])
        mix = nodes.new("ShaderNodeMixShader")
        mix.inputs["Fac"].default_value = TRANSLUCENCY_MIX
        links.new(surface, mix.inputs[1])
        links.new(translucent.outputs["BSDF"], mix.inputs[2])
        surface = mix.outputs["Shader"]
    if "opacity" in textures:
        cutout = nodes.new("ShaderNodeMath")
        cutout.operation = "GREATER_THAN"
        cutout.inputs[1].default_value = CUTOUT_THRESHOLD
        links.new(image("opacity", False).outputs["Color"], cutout.inputs[0])
        transparent = nodes.new("ShaderNodeBsdfTransparent")
        mix = nodes.new("ShaderNodeMixShader")
        links.new(cutout.outputs["Value"], mix.inputs["Fac"])
        links.new(transparent.outputs["BSDF"], mix.inputs[1])
        links.new(surface, mix.inputs[2])
        surface = mix.outputs["Shader"]
    links.new(surface, output.inputs["Surface"])
    return material


def assign(objects: list[bpy.types.Object], material: bpy.types.Material) -> None:
    """Replace every material slot of the objects with ``material``."""
    for obj in objects:
        obj.data.materials.clear()
        obj.data.materials.append(material)


def emission_material(name: str, color: tuple[float, float, float]) -> bpy.types.Material:
    """A flat emission-only shader: exact, lighting-independent colours (used by mirroring checks)."""
    material = bpy.data.materials.new(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = (*color, 1.0)
    links.new(emission.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
    return material
