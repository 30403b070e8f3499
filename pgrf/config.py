"""``assets.toml``: categories of assets and render defaults, parsed with tomllib and validated.

Every key is checked: an unknown key, a wrong type or an impossible value is a ``PgrfError`` whose one
line names the file, the key and the fix. CLI flags override the ``[render]`` block; ``--library`` or
``PGRF_LIBRARY`` override every library path.

The file in force is ``--config PATH``, else ``$PGRF_CONFIG``, else ``./assets.toml``, else the annotated
default pgrf ships as package data (``SHIPPED_CONFIG``: the categories plants, food and sample-*). Relative
paths in a file are relative to its folder; in the shipped default, whose folder is inside the installed
package, they are relative to the working folder, so ``library = "sample-library"`` finds ``./sample-library``.
"""

from __future__ import annotations

import difflib
import importlib.resources
import importlib.util
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from pgrf import paths
from pgrf.cameras import DEFAULT_FOV, DEFAULT_RADIUS, SCENE_RADIUS
from pgrf.errors import PgrfError

DEFAULT_CONFIG = Path("assets.toml")
LIBRARY_ENV = "PGRF_LIBRARY"
CONFIG_ENV = "PGRF_CONFIG"
SHIPPED = "the default pgrf ships"
"""``Config.found`` of the shipped default (no assets.toml was given or found)."""

Device = Literal["auto", "cpu", "cuda", "optix"]
Source = Literal["megascans", "fab", "folders"]
ClassFrom = Literal["name", "asset", "category", "folder"]
Pass = Literal["depth", "normal"]

STUDIO_LIGHTS = ("studio", "city", "courtyard", "forest", "interior", "night", "sunrise", "sunset")
"""The CC0 Poly Haven studio lights bundled with bpy (``datafiles/studiolights/world/<name>.exr``)."""
NO_HDRI = "none"
"""The ``hdri`` value of the even white world light (an empty value means the same)."""


@dataclass(frozen=True)
class RenderSettings:
    """How models are rendered (docs/formats.md, docs/cameras.md). CLI flags override these."""

    views: int = 128
    resolution: int = 1024
    samples: int = 32
    adaptive_threshold: float = 0.02
    denoise: bool = True
    device: Device = "auto"
    workers: int = 1
    timeout: float = 1800.0
    recycle_after: int = 10
    radius: float = DEFAULT_RADIUS
    fov: float = DEFAULT_FOV
    seed: int = 0
    min_dim_product: float = 2.0
    passes: list[Pass] = field(default_factory=list)
    hdri: str = "studio"
    """A bundled studio light (STUDIO_LIGHTS), an image file (absolute once loaded) or ``none``: even white light."""
    world_strength: float = 1.0
    world_rotation: float = 0.0
    """Degrees the HDRI is turned about +Z."""
    dither: float = 0.0
    """Film dither (Blender's default is 1.0; M-Plants was rendered with 0)."""
    texture_size: str = "2K"
    max_bounces: int = 6
    transparent_bounces: int = 16


@dataclass(frozen=True)
class Category:
    """Which assets of the library belong to a category, and its filters."""

    name: str
    source: Source = "megascans"
    types: list[str] = field(default_factory=lambda: ["3d", "3dplant"])
    match: list[str] = field(default_factory=list)
    exclude_words: list[str] = field(default_factory=list)
    """Assets carrying any of these words (categories, tags, semantic tags) are left out."""
    exclude: str = ""
    """A file of hand-rejected model ids, asset ids or glob patterns (one a line, ``#`` comments), relative to the config."""
    class_from: ClassFrom = "name"
    min_mean_alpha: float = 0.0
    path: str = ""
    library: str = ""
    split_objects: bool = False
    """One model per mesh object of a multi-object file (``<asset>_<object>``), as EpiGRAF's pipeline did."""
    tier: str = ""
    """Fab quality tier to use (e.g. ``high``, ``raw``); empty: the highest tier present."""


@dataclass(frozen=True)
class Config:
    """The whole validated config file."""

    path: Path
    found: str
    """How the file was found: ``--config``, ``$PGRF_CONFIG``, ``./assets.toml`` or ``SHIPPED``."""
    base: Path
    """The folder relative paths start from: the file's, or the working folder for the shipped default."""
    library: str = ""
    render: RenderSettings = field(default_factory=RenderSettings)
    categories: dict[str, Category] = field(default_factory=dict)
    keys: frozenset[str] = frozenset()
    """The dotted keys the file sets (the others are built-in defaults), for ``pgrf config show``."""

    @property
    def shipped(self) -> bool:
        """True when no config file was given or found and the shipped default is in force."""
        return self.found == SHIPPED

    def category(self, name: str) -> Category:
        """The named category, or an error listing the ones that exist."""
        if name not in self.categories:
            known = ", ".join(sorted(self.categories)) or "none"
            raise PgrfError(f"{self.path}: no category '{name}' (defined: {known}); add [categories.{name}] or pick one of those")
        return self.categories[name]

    def library_root(self, category: Category, override: str | None = None) -> Path:
        """The existing library folder of a category: --library, then PGRF_LIBRARY, then the config."""
        if override:
            root, origin = Path(override), "--library"
        elif os.environ.get(LIBRARY_ENV):
            root, origin = Path(os.environ[LIBRARY_ENV]), LIBRARY_ENV
        elif category.library:
            root, origin = self._relative(category.library), f"categories.{category.name}.library in {self.path}"
        elif self.library:
            root, origin = self._relative(self.library), f"library in {self.path}"
        else:
            raise PgrfError(f"{self.path}: no library set for category '{category.name}'; set key 'library', "
                            f"pass --library PATH or set {LIBRARY_ENV}")
        root = (root.expanduser() / category.path) if category.path else root.expanduser()
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise PgrfError(f"library folder {root} (from {origin}) {what}; pass --library PATH of the library's folder, "
                            f"set {LIBRARY_ENV} or fix the key")
        return root

    def _relative(self, value: str) -> Path:
        """Paths in the file are relative to ``base``."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path


def shipped_config() -> Path:
    """The annotated default config installed with pgrf (package data)."""
    return Path(str(importlib.resources.files("pgrf") / "defaults" / "assets.toml"))


def find_config(path: str | Path | None = None) -> tuple[Path, str]:
    """The config file in force and how it was found (see the module docstring); a given file must exist."""
    if path is not None:
        given, found = Path(path), "--config"
    elif os.environ.get(CONFIG_ENV):
        given, found = Path(os.environ[CONFIG_ENV]), f"${CONFIG_ENV}"
    elif DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG, f"./{DEFAULT_CONFIG}"
    else:
        return shipped_config(), SHIPPED
    if not given.is_file():
        raise PgrfError(f"config file {given} (from {found}) not found; give an existing file, or run `pgrf config init` "
                        "to write the default")
    return given, found


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config in force (``find_config``)."""
    return _read(*find_config(path))


def shipped_defaults() -> Config:
    """The shipped default config, its relative paths from the working folder: what applies without a config file."""
    return _read(shipped_config(), SHIPPED)


def _read(path: Path, found: str) -> Config:
    base = Path.cwd() if found == SHIPPED else path.parent
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PgrfError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    _check_keys(path, "", raw, {"library", "render", "categories"})
    library = _check_value(path, "library", raw.get("library", ""), str)
    render = _build(path, "render", RenderSettings, _table(path, "render", raw.get("render", {})))
    render = replace(render, hdri=_resolve_hdri(path, render.hdri, base))
    categories = {}
    for name, table in _table(path, "categories", raw.get("categories", {})).items():
        check_category_name(name, str(path))
        category = _build(path, f"categories.{name}", Category, _table(path, f"categories.{name}", table), name=name)
        if category.exclude:
            exclude = Path(category.exclude).expanduser()
            exclude = exclude if exclude.is_absolute() else base / exclude
            if not exclude.is_file():
                what = "is a folder" if exclude.is_dir() else "does not exist"
                raise PgrfError(f"{path}: key 'categories.{name}.exclude' names {exclude}, which {what}; "
                                "give a file of model ids (one a line) or leave it empty")
            category = replace(category, exclude=str(exclude.resolve()))
        categories[name] = category
    return Config(path, found, base, library=library, render=render, categories=categories,
                  keys=frozenset(_dotted_keys(raw)))


def check_category_name(name: str, where: str) -> None:
    """Refuse a category name that cannot be one folder ``<out>/<name>`` (a separator, ``..``, too long)."""
    reason = paths.folder_name(name)
    if reason:
        raise PgrfError(f"{where}: category {name!r} cannot name a folder under the output folder ({reason}); "
                        "rename it with letters, digits, _ and -")


def resolved_values(config: Config) -> list[tuple[str, Any, str]]:
    """Every setting in force as (dotted key, value, where it came from): the file, the environment or the built-in
    default of a key the file leaves out (``pgrf config show``)."""
    where = str(config.path) if not config.shipped else SHIPPED

    def origin(key: str) -> str:
        return where if key in config.keys else "built-in default"

    library = (os.environ[LIBRARY_ENV], f"${LIBRARY_ENV}") if os.environ.get(LIBRARY_ENV) else (config.library, origin("library"))
    rows: list[tuple[str, Any, str]] = [("library", *library)]
    rows += [(f"render.{f.name}", getattr(config.render, f.name), origin(f"render.{f.name}")) for f in fields(config.render)]
    for name, category in config.categories.items():
        rows += [(f"categories.{name}.{f.name}", getattr(category, f.name), origin(f"categories.{name}.{f.name}"))
                 for f in fields(category) if f.name != "name"]
    return rows


def _dotted_keys(table: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf key of a TOML table as ``a.b.c``."""
    keys = []
    for key, value in table.items():
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, f"{prefix}{key}."))
        else:
            keys.append(f"{prefix}{key}")
    return keys


def with_overrides(settings: RenderSettings, **overrides: Any) -> RenderSettings:
    """Render settings with CLI values applied (None means 'not given'), validated like the file."""
    given = {key: value for key, value in overrides.items() if value is not None}
    where = Path("command line")
    if "hdri" in given:
        given["hdri"] = _resolve_hdri(where, _check_value(where, "render.hdri", given["hdri"], str), Path.cwd())
    return _build(where, "render", RenderSettings, {**_as_dict(settings), **given})


def hdri_file(hdri: str) -> Path | None:
    """The image a (resolved) ``hdri`` setting lights the scene with: a studio light's EXR in bpy's wheel, the
    file itself, or None for the even white world light. bpy is located, not imported."""
    if hdri in ("", NO_HDRI):
        return None
    if hdri not in STUDIO_LIGHTS:
        return Path(hdri)
    spec = importlib.util.find_spec("bpy")
    folders = spec.submodule_search_locations if spec and spec.submodule_search_locations else []
    found = [file for folder in folders for file in Path(folder).glob(f"*/datafiles/studiolights/world/{hdri}.exr")]
    if not found:
        raise PgrfError(f"render.hdri = '{hdri}': bpy's bundled studio light datafiles/studiolights/world/{hdri}.exr "
                        "was not found; install the bpy wheel, or give an image file or none")
    return sorted(found)[-1]


def _resolve_hdri(where: Path, value: str, base: Path) -> str:
    """The canonical ``hdri``: ``none``, a studio light name, or an existing image's absolute path (relative to ``base``)."""
    value = value.strip()
    if value.lower() in ("", NO_HDRI):
        return NO_HDRI
    if value in STUDIO_LIGHTS:
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if path.is_file():
        return str(path.resolve())
    names = ", ".join(STUDIO_LIGHTS)
    if Path(value).suffix or "/" in value:
        raise PgrfError(f"{where}: key 'render.hdri' names {path}, which does not exist; give an image file, "
                        f"a studio light ({names}) or none")
    raise PgrfError(f"{where}: key 'render.hdri' is {value!r}, which is no studio light; valid names: {names}; "
                    "or none (even white light) or an image file")


def _as_dict(settings: RenderSettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


def _table(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PgrfError(f"{path}: key '{key}' must be a table ([{key}]); got {type(value).__name__}")
    return value


def _check_keys(path: Path, prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            near = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"valid keys: {', '.join(sorted(allowed))}"
            raise PgrfError(f"{path}: unknown key '{prefix}{key}'; {hint}")


def _build(path: Path, prefix: str, cls: type, table: dict[str, Any], **fixed: Any) -> Any:
    """Instantiate a settings dataclass from a table, checking each key's type and range."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)} - set(fixed)
    _check_keys(path, f"{prefix}.", table, names)
    values = {key: _check_value(path, f"{prefix}.{key}", value, hints[key]) for key, value in table.items()}
    instance = replace(cls(**fixed), **values)
    _check_ranges(path, prefix, instance)
    return instance


def _check_value(path: Path, key: str, value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if origin is Literal:
        choices = typing.get_args(expected)
        if value not in choices:
            raise PgrfError(f"{path}: key '{key}' must be one of {', '.join(map(repr, choices))}; got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise PgrfError(f"{path}: key '{key}' must be a list; got {value!r}")
        (item,) = typing.get_args(expected)
        return [_check_value(path, f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise PgrfError(f"{path}: key '{key}' must be {expected.__name__}; got {value!r}")
    if expected is float and not math.isfinite(value):
        raise PgrfError(f"{path}: key '{key}' must be a finite number; got {value!r}")
    return value


_NON_NEGATIVE = {"world_strength", "dither"}
_POSITIVE = {"views", "resolution", "samples", "workers", "timeout", "recycle_after", "radius", "fov"}


def _check_ranges(path: Path, prefix: str, instance: Any) -> None:
    for name in _POSITIVE & {f.name for f in fields(instance)}:
        if getattr(instance, name) <= 0:
            raise PgrfError(f"{path}: key '{prefix}.{name}' must be positive; got {getattr(instance, name)!r}")
    for name in _NON_NEGATIVE & {f.name for f in fields(instance)}:
        if getattr(instance, name) < 0:
            raise PgrfError(f"{path}: key '{prefix}.{name}' must be 0 or more; got {getattr(instance, name)!r}")
    if isinstance(instance, RenderSettings):
        if instance.fov >= math.pi:
            raise PgrfError(f"{path}: key '{prefix}.fov' is the full angle in radians and must be below π; got {instance.fov}")
        if instance.radius <= SCENE_RADIUS:
            raise PgrfError(f"{path}: key '{prefix}.radius' must exceed √3 so the camera is outside [-1, 1]^3; got {instance.radius}")
        if instance.texture_size.upper() not in {"1K", "2K", "4K", "8K"}:
            raise PgrfError(f"{path}: key '{prefix}.texture_size' must be 1K, 2K, 4K or 8K; got {instance.texture_size!r}")
    if isinstance(instance, Category) and not 0.0 <= instance.min_mean_alpha <= 1.0:
        raise PgrfError(f"{path}: key '{prefix}.min_mean_alpha' must be in [0, 1]; got {instance.min_mean_alpha}")
