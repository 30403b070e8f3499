"""EpiGRAF's published raw and filtered renders (github.com/universome/megascans-rendering at c6a34ad, ``render_dataset.py``):

```
<root>/<collection>/metadata.json                 {"<model>": [frame, …], …}
<root>/<collection>/<model>/<NNNNNN>.png          RGBA, transparent film
<root>/<collection>/<model>/<NNNNNN>_depth_0001.exr   Blender Z (compositor file output, frame 1)
<root>/<collection>/<model>/<NNNNNN>_normal_0001.png
```

A frame is ``{"file_path": "<collection>/<model>/<NNNNNN>", "transform_matrix": the camera object's
matrix_world (4×4, rows), "camera_angles": [yaw, pitch, 0], "camera_radius": r, "fov": full angle}``.
The model key is the Blender object name; its folder is that name with spaces made underscores, as is the
collection folder. ``filter_models.py`` copies whole model folders and keeps the same metadata entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pgrf.formats.schema import FormatError, Invalid, check_matrix, from_json

METADATA_FILE = "metadata.json"
DEPTH_SUFFIX = "_depth_0001.exr"
NORMAL_SUFFIX = "_normal_0001.png"
FIX = "give a metadata.json written by megascans-rendering's render_dataset.py (or leave the collection out)"


@dataclass(frozen=True)
class Frame:
    """One rendered view of one model."""

    file_path: str
    transform_matrix: list[list[float]]
    camera_angles: list[float] | None = None
    camera_radius: float | None = None
    fov: float | None = None

    def __post_init__(self) -> None:
        check_matrix(self.transform_matrix, 4, "transform_matrix")
        if self.camera_angles is not None and len(self.camera_angles) != 3:
            raise Invalid("field 'camera_angles' must hold [yaw, pitch, roll]")

    @property
    def stem(self) -> str:
        """The view's file name without extension (``NNNNNN``)."""
        return PurePosixPath(self.file_path.replace("\\", "/")).name

    @property
    def folder(self) -> str:
        """The model folder the frame's files are in."""
        return PurePosixPath(self.file_path.replace("\\", "/")).parent.name


@dataclass(frozen=True)
class Metadata:
    """A collection's ``metadata.json``: the frames of each model, by Blender object name."""

    models: dict[str, list[Frame]]


def model_folder(name: str) -> str:
    """The folder the authors' script gave a model (its object name, spaces made underscores)."""
    return name.replace(" ", "_")


def read_metadata(collection_dir: Path) -> Metadata:
    """A collection's metadata.json, validated; a missing or bad file is a FormatError naming it."""
    path = collection_dir / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{collection_dir}: no {METADATA_FILE}; not an EpiGRAF render collection "
                          "(<root>/<collection>/metadata.json), move it out of the root or add the file") from None
    except (OSError, ValueError) as error:
        raise FormatError(f"{path}: unreadable ({type(error).__name__}); {FIX}") from None
    return from_json(Metadata, {"models": data}, str(path), FIX)
