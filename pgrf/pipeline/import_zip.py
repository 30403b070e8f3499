"""``pgrf import zip``: a StyleGAN-family dataset zip (pgrf.formats.stylegan) → pgrf shards, index and card.

Cameras come from EG3D's 25-float labels when the zip has them (written in pgrf's +Z-up world or EG3D's
+Y-up one, ``world``), else from ``camera_angles``: EpiGRAF's processed M-Plants/M-Food zips hold Euler
angles of the Blender camera matrices (``cameras.from_blender_euler_angles``), zips written by
``pgrf export`` hold ``cameras.epigraf_angles`` (told apart by export's ``pgrf`` entry). Classes come
from class-index labels, else from export's ``model_classes``; class names from export's ``class_names``,
else from the image folders when each class lives in one folder (the authors' collections), else
``class_<i>``. A file name gives the sample's model and view: ``<model>_v<NNNN>[_m]`` (pgrf export),
``<model>_<NNNNNN>`` (the authors' flattened names) or just a name (view 0).

dataset.json keys are matched to the images as EpiGRAF's loader does and then some (spaces, flattened
model folders; ``formats.stylegan.match_names``): keys that name no image, images without a camera, two
images giving one sample key and undecodable images are each one line, counted, and left out. The
images are then composited and resized exactly as ``pgrf pack`` does it, through the same shard writer
(resumable: finished shards are kept); each model's mean alpha (for the index) is measured from its images.
"""

from __future__ import annotations

import multiprocessing
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from pgrf.cameras import (
    DEFAULT_FOV,
    DEFAULT_RADIUS,
    World,
    c2w_angles,
    fov_of,
    from_blender_euler_angles,
    from_eg3d_label,
    from_epigraf_angles,
    look_at_origin,
    normalized_intrinsics,
)
from pgrf.choices import check_choices
from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetCard
from pgrf.formats.images import (
    BadImage,
    TooLarge,
    check_pixels,
    decode_image,
    may_be_transparent,
    read_member,
    read_member_header,
)
from pgrf.formats.schema import FormatError
from pgrf.formats.shards import SampleMeta
from pgrf.formats.stylegan import DATASET_FILE, StyleganDataset, match_names, parse_dataset
from pgrf.limits import MAX_PIXELS, check_member
from pgrf.pipeline.import_renders import safe_id
from pgrf.pipeline.options import PackOptions
from pgrf.pipeline.pack import Collected, write_dataset
from pgrf.pipeline.plan import Sample
from pgrf.processes import exit_with_parent
from pgrf.progress import QUIET, Reporter

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PGRF_NAME = re.compile(r"(?P<model>.+)_v(?P<view>\d{4})(?P<mirrored>_m)?")
NUMBERED_NAME = re.compile(r"(?P<model>.+)_(?P<view>\d+)")
ALPHA_CHUNK = 64
"""Images per task of the alpha pass."""


@dataclass(frozen=True)
class ZipOptions:
    """How ``pgrf import zip`` reads a zip."""

    labels: Literal["auto", "class", "camera", "none"] = "auto"
    angles: Literal["auto", "epigraf", "pgrf", "none"] = "auto"
    """The convention of ``camera_angles``: auto (pgrf when the zip came from pgrf export, else epigraf)."""
    world: World = "zup"
    radius: float | None = None
    fov: float | None = None
    category: str = ""
    """Category of the samples; empty: the zip's name."""
    max_pixels: int = MAX_PIXELS
    """Images whose header gives more pixels are left out before decoding (``pgrf.limits.MAX_PIXELS``)."""

    def __post_init__(self) -> None:
        check_choices(self)
        if self.max_pixels <= 0:
            raise PgrfError("--max-pixels must be positive")


@dataclass
class ZipImport:
    """What an import wrote, and every line it had to leave out."""

    card: DatasetCard
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Camera:
    c2w: np.ndarray
    intrinsics: np.ndarray


def parse_name(name: str) -> tuple[str, int, bool]:
    """(model id, view, mirrored) of an image member's file name."""
    stem = PurePosixPath(name).stem
    if found := PGRF_NAME.fullmatch(stem):
        return safe_id(found["model"]), int(found["view"]), bool(found["mirrored"])
    if found := NUMBERED_NAME.fullmatch(stem):
        return safe_id(found["model"]), int(found["view"]), False
    return safe_id(stem), 0, False


def import_zip(path: Path, out: Path, pack: PackOptions, options: ZipOptions, reporter: Reporter = QUIET) -> ZipImport:
    """Write the zip's images as shards to ``out`` (named after the zip unless ``pack.name`` is set); returns the card
    and the problems met. Each problem is also a ``problem`` note to ``reporter``, which gets the tasks ``alpha``
    (images measured) and ``pack``."""
    pack = replace(pack, name=pack.name or safe_id(path.stem))
    images, dataset = _read(path)
    problems: list[str] = []
    label_mode = _label_mode(options.labels, dataset, path)
    cameras, radius, fov = _cameras(path, images, dataset, label_mode, options, problems)
    classes, class_names = _classes(path, images, dataset, label_mode)
    samples: dict[str, Sample] = {}
    for image in images:
        if image not in cameras:
            continue
        if label_mode == "class" and image not in classes:
            problems.append(f"{path}:{image}: no class label in dataset.json; left out")
            continue
        model_id, view, mirrored = parse_name(image)
        camera = cameras[image]
        yaw, pitch, _ = c2w_angles(camera.c2w)
        meta = SampleMeta(model_id=model_id, asset_id=model_id, category=options.category or safe_id(path.stem),
                          class_index=classes.get(image, 0), class_name=class_names[classes.get(image, 0)], view=view,
                          yaw=yaw, pitch=pitch, radius=radius, fov=fov, c2w=camera.c2w.tolist(),
                          intrinsics=camera.intrinsics.tolist(), mirrored=mirrored, resolution=pack.resolution)
        if meta.key in samples:
            problems.append(f"{path}:{image}: gives sample key {meta.key} like {samples[meta.key].member}; left out")
            continue
        samples[meta.key] = Sample(path, meta, 0.0, image, flipped=mirrored)
    if not samples:
        for problem in problems:
            reporter.note(problem, kind="problem")
        raise PgrfError(f"{path}: no image with a camera; give a zip whose dataset.json has camera labels or camera_angles")
    mean_alpha, refused = _model_alphas(path, list(samples.values()), pack.workers, options.max_pixels, reporter)
    problems.extend(f"{reason}; left out" for reason in refused.values())
    for problem in problems:
        reporter.note(problem, kind="problem")
    ordered = [replace(s, mean_alpha=mean_alpha[s.meta.model_id]) for s in samples.values() if s.member not in refused]
    if not ordered:
        raise PgrfError(f"{path}: every image is over the size limits; raise --max-pixels if the images are meant to be that large")
    if pack.mirror:  # a mirrored copy of every image whose mirrored sample the zip does not hold already
        keys = {s.key for s in ordered}
        ordered += [Sample(path, twin, s.mean_alpha, s.member) for s in list(ordered)  # flipped by the encoder
                    if not s.meta.mirrored and (twin := s.meta.mirrored_copy()).key not in keys]
    collected = Collected(ordered, class_names, len({s.meta.model_id for s in ordered}),
                          {"min_mean_alpha": 0, "min_dim_product": 0, "exclude": 0},
                          {"min_mean_alpha": {}, "min_dim_product": None, "exclude": {}})
    return ZipImport(write_dataset(collected, out, pack, [str(path)], reporter, options.max_pixels,
                                   "pgrf import zip"), problems)


def _model_alphas(path: Path, samples: list[Sample], workers: int, max_pixels: int,
                  reporter: Reporter) -> tuple[dict[str, float], dict[str, str]]:
    """Each model's mean alpha over its images (in [0, 1]), as ``pgrf render`` measures it, and the members refused
    (over a size limit: ``pgrf.limits``) with the reason. Images that cannot hold transparency (by their headers)
    count as 1 without decoding, the others are decoded in ``workers`` processes. Images that do not read are left
    out here (the shard writer reports them)."""
    members = sorted({s.member for s in samples})
    chunks = [members[i:i + ALPHA_CHUNK] for i in range(0, len(members), ALPHA_CHUNK)]
    alphas: dict[str, float] = {}
    refused: dict[str, str] = {}

    def take(chunk: list[str], values: list[float | str | None]) -> None:
        alphas.update((m, a) for m, a in zip(chunk, values) if isinstance(a, float))
        refused.update((m, a) for m, a in zip(chunk, values) if isinstance(a, str))
        advance(len(chunk))

    with reporter.task("alpha", total=len(members), unit="images") as advance:
        if workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                take(chunk, _member_alphas(path, chunk, max_pixels))
        else:
            with ProcessPoolExecutor(min(workers, len(chunks)), multiprocessing.get_context("spawn"),
                                     initializer=exit_with_parent) as pool:
                for chunk, values in zip(chunks, pool.map(_member_alphas, [path] * len(chunks), chunks,
                                                          [max_pixels] * len(chunks))):
                    take(chunk, values)
    per_model: dict[str, list[float]] = {}
    for sample in samples:
        if sample.member in alphas:
            per_model.setdefault(sample.meta.model_id, []).append(alphas[sample.member])
    return {s.meta.model_id: float(np.mean(per_model[s.meta.model_id])) if s.meta.model_id in per_model else 0.0
            for s in samples}, refused


def _member_alphas(path: Path, members: list[str], max_pixels: int) -> list[float | str | None]:
    """Mean alpha of each member; a str: why it is refused (over a size limit); None: unreadable. Only the first bytes
    of a member are inflated to judge its size and whether it can be transparent; only those that can are read whole."""
    values: list[float | str | None] = []
    for member in members:
        try:
            head = read_member_header(path, member)
            check_pixels(head, f"{path}:{member}", max_pixels, "--max-pixels raises the limit")
            if not may_be_transparent(head):
                values.append(1.0)
            else:
                alpha = decode_image(read_member(path, member), member, max_pixels)[..., 3]
                values.append(float(alpha.mean(dtype=np.float64) / 255))
        except TooLarge as error:
            values.append(str(error))
        except BadImage:
            values.append(None)
    return values


def _read(path: Path) -> tuple[list[str], StyleganDataset]:
    """The zip's image members (sorted) and its dataset.json (the shortest path ending in dataset.json, as loaders do)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            documents = sorted((n for n in names if PurePosixPath(n).name == DATASET_FILE), key=lambda n: (len(n), n))
            if documents:
                check_member(archive.getinfo(documents[0]), str(path))
            raw = archive.read(documents[0]) if documents else b"{}"
    except FileNotFoundError:
        raise PgrfError(f"{path}: no such file; give a StyleGAN-family dataset zip") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise PgrfError(f"{path}: not a readable zip ({type(error).__name__}); check it with unzip -t") from None
    images = sorted(n for n in names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES and not n.endswith("/"))
    if not images:
        raise PgrfError(f"{path}: holds no images ({', '.join(IMAGE_SUFFIXES)}); give a StyleGAN-family dataset zip")
    try:
        return images, parse_dataset(raw, f"{path}:{documents[0] if documents else DATASET_FILE}")
    except FormatError as error:
        raise PgrfError(str(error)) from None


def _label_mode(mode: str, dataset: StyleganDataset, path: Path) -> str:
    """What the labels are: ``camera``, ``class`` or ``none`` (``auto`` looks at them)."""
    values = list(dataset.label_of.values())
    kinds = {"camera" if isinstance(v, list) else "class" for v in values}
    if len(kinds) > 1:
        raise PgrfError(f"{path}: dataset.json mixes class and camera labels; fix the labels")
    found = kinds.pop() if kinds else "none"
    if mode == "auto" or mode == "none":
        return found if mode == "auto" else "none"
    if found != mode:
        raise PgrfError(f"{path}: --labels {mode}, but dataset.json's labels are {found}; pass --labels auto")
    return mode


def _matched(path: Path, images: list[str], values: dict[str, Any], what: str, problems: list[str]) -> dict[str, Any]:
    """Each image's value from a dataset.json map; keys naming no image are problems."""
    matched, unmatched = match_names(images, list(values))
    problems.extend(f"{path}: dataset.json {what} key '{key}' names no image in the zip (or one an earlier key names); "
                    "left out" for key in unmatched)
    return {image: values[key] for image, key in matched.items()}


def _cameras(path: Path, images: list[str], dataset: StyleganDataset, label_mode: str, options: ZipOptions,
             problems: list[str]) -> tuple[dict[str, Camera], float, float]:
    """Each image's camera, and the dataset's (radius, fov): the flags, else export's record, else the camera labels'
    medians, else M-Plants' 3.5 and π/4."""
    note = dataset.pgrf
    radius = options.radius if options.radius is not None else (note.camera.radius if note else None)
    fov = options.fov if options.fov is not None else (note.camera.fov if note else None)
    if label_mode == "camera":
        labels = _matched(path, images, dataset.label_of, "labels", problems)
        cameras = {image: Camera(*from_eg3d_label(label, options.world)) for image, label in labels.items()}
        if cameras:
            radius = radius if radius is not None else float(np.median([np.linalg.norm(c.c2w[:3, 3]) for c in cameras.values()]))
            fov = fov if fov is not None else float(np.median([fov_of(c.intrinsics) for c in cameras.values()]))
        what = "camera label"
    else:
        angles_mode = options.angles if options.angles != "auto" else ("pgrf" if note is not None else "epigraf")
        if angles_mode == "none" or not dataset.angles_of:
            raise PgrfError(f"{path}: no cameras: dataset.json has no camera labels and "
                            f"{'--angles none' if angles_mode == 'none' else 'no camera_angles'}; pgrf datasets need a "
                            "camera for every image")
        convert = from_epigraf_angles if angles_mode == "pgrf" else from_blender_euler_angles
        radius = radius if radius is not None else DEFAULT_RADIUS
        fov = fov if fov is not None else DEFAULT_FOV
        intrinsics = normalized_intrinsics(fov)
        cameras = {image: Camera(look_at_origin(*convert(angles), radius), intrinsics)
                   for image, angles in _matched(path, images, dataset.angles_of, "camera_angles", problems).items()}
        what = "camera_angles entry"
    problems.extend(f"{path}:{image}: no {what} in dataset.json; left out" for image in images if image not in cameras)
    return cameras, (radius if radius is not None else DEFAULT_RADIUS), (fov if fov is not None else DEFAULT_FOV)


def _classes(path: Path, images: list[str], dataset: StyleganDataset, label_mode: str) -> tuple[dict[str, int], list[str]]:
    """Each image's class index, and the class names."""
    note = dataset.pgrf
    if label_mode == "class":
        classes = _matched(path, images, dataset.label_of, "labels", [])
    elif note is not None and note.model_classes:
        classes = {image: note.model_classes[model] for image in images
                   if (model := parse_name(image)[0]) in note.model_classes}
    else:
        return {}, [safe_id(path.stem)]
    count = max(classes.values(), default=0) + 1
    if note is not None and len(note.class_names) >= count:
        return classes, note.class_names
    folders: dict[int, set[str]] = {}
    for image, index in classes.items():
        folders.setdefault(index, set()).add(PurePosixPath(image).parent.name)
    names = [f"class_{i}" for i in range(count)]
    if all(len(f) == 1 for f in folders.values()) and len({next(iter(f)) for f in folders.values()}) == len(folders):
        for index, folder in folders.items():
            names[index] = next(iter(folder))
    return classes, names
