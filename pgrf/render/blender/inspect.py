"""List the mesh objects of model files with Blender's importers (runs in a bpy subprocess).

Discovery cannot open FBX without Blender, so ``list_objects`` runs ``python -m pgrf.render.blender.inspect JOB.json``
once for a batch of files; each file is imported into an empty scene exactly as a render worker imports it,
so the names are the ones the worker sees. A file Blender cannot read gets its error instead of names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pgrf.errors import PgrfError


def list_objects(files: list[str]) -> dict[str, list[str] | str]:
    """Mesh object names of each file (sorted), or the one-line reason Blender could not import it."""
    if not files:
        return {}
    with tempfile.TemporaryDirectory(prefix="pgrf-inspect-") as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "objects.json"
        job.write_text(json.dumps({"files": files, "out": str(out)}), encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "pgrf.render.blender.inspect", str(job)], capture_output=True, text=True)
        if result.returncode != 0 or not out.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PgrfError(f"listing the objects of {len(files)} model files in Blender failed: {tail[0]}")
        return json.loads(out.read_text(encoding="utf-8"))


def main(job_file: str) -> None:
    import bpy

    from pgrf.render.blender import importing

    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    listing: dict[str, list[str] | str] = {}
    with tempfile.TemporaryDirectory(prefix="pgrf-inspect-") as scratch:
        for name in job["files"]:
            bpy.ops.wm.read_factory_settings(use_empty=True)
            try:
                listing[name] = [obj.name for obj in importing.import_files((name,), (), Path(scratch), Path(name).parent)]
            except importing.ImportFailed as error:
                listing[name] = str(error)
    Path(job["out"]).write_text(json.dumps(listing), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
