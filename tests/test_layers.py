"""The layer rules of docs/architecture.md, checked on every import of ``pgrf/`` (module level and inside
functions) against the layer table that page states."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
HALVES = ("render", "train")
UNIT_ROW = re.compile(r"^\|\s*`(pgrf[\w.]*)`\s*\|\s*(\d+)\s*\|\s*(shared|render|train|top)\s*\|\s*$")
MODULE_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*`([\w.]+)`\s*\|\s*$")


@dataclass(frozen=True)
class Unit:
    name: str
    layer: int
    half: str


@dataclass(frozen=True)
class Table:
    """The two tables of docs/architecture.md: pgrf's units, and the third-party modules tied to one place."""

    units: dict[str, Unit]
    modules: dict[str, str]

    def unit_of(self, dotted: str) -> Unit | None:
        """The unit with the longest dotted name that ``dotted`` is (or is inside); the package's own unit holds
        only its ``__init__``."""
        parts = dotted.split(".")
        for end in range(len(parts), 1, -1):
            found = self.units.get(".".join(parts[:end]))
            if found is not None:
                return found
        return self.units.get(dotted)


def read_table(text: str) -> Table:
    units, modules = {}, {}
    for line in text.splitlines():
        if match := UNIT_ROW.match(line):
            units[match[1]] = Unit(match[1], int(match[2]), match[3])
        elif match := MODULE_ROW.match(line):
            modules[match[1]] = match[2]
    return Table(units, modules)


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package_root: Path) -> list[Import]:
    """Every import of one file, with the names a ``from pgrf import x`` brings resolved to modules."""
    source = module_name(path, package_root)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(source, alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    is_module = (package_root.parent / Path(*candidate.split("."))).with_suffix(".py").is_file() or \
                        (package_root.parent / Path(*candidate.split("."))).is_dir()
                    found.append(Import(source, candidate if is_module else base, child.lineno, in_function))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def breaches(package_root: Path, table: Table) -> list[str]:
    """Each import that breaks a rule, as ``file:line: what``."""
    problems = []
    for path in sorted(package_root.rglob("*.py")):
        src = table.unit_of(module_name(path, package_root))
        if src is None:
            problems.append(f"{path.relative_to(package_root.parent)}: module {module_name(path, package_root)} is in no unit "
                            "of the layer table")
            continue
        for item in imports(path, package_root):
            where = f"{path.relative_to(package_root.parent)}:{item.line}"
            top = item.target.split(".")[0]
            if top != package_root.name:
                allowed = table.modules.get(top)
                if allowed is None:
                    continue
                ok = src.half == allowed if allowed in HALVES else (table.unit_of(item.source) == table.units.get(allowed))
                if src.half == "top" and item.in_function:
                    ok = True
                if not ok:
                    problems.append(f"{where}: {item.source} imports {top}, which belongs to {allowed}")
                continue
            dst = table.unit_of(item.target)
            if dst is None:
                problems.append(f"{where}: {item.target} is in no unit of the layer table")
            elif dst == src or src.half == "top" and dst.half != "top" or src.layer == dst.layer == 0:
                continue
            elif dst.layer >= src.layer:
                problems.append(f"{where}: {item.source} imports {item.target} (layer {dst.layer}, not below {src.layer})")
            elif src.half in HALVES and dst.half in HALVES and src.half != dst.half:
                problems.append(f"{where}: the {src.half} half imports the {dst.half} half ({item.target})")
            elif dst.half == "top" and item.source != "pgrf.__main__":
                problems.append(f"{where}: {item.source} imports {item.target}")
    return problems




def test_the_package_keeps_the_layer_table() -> None:
    table = read_table(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(table.units) >= 15 and {"bpy", "torch", "meshopt", "rich"} <= table.modules.keys()
    assert breaches(ROOT / "pgrf", table) == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pgrf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pgrf"


def test_each_kind_of_breach_is_found(tmp_path: Path) -> None:
    table = read_table(ARCHITECTURE.read_text(encoding="utf-8"))
    package = _package(tmp_path, {
        "__init__.py": "", "errors.py": "", "cli/__init__.py": "import torch\n",
        "formats/__init__.py": "", "formats/card.py": "def f():\n    from pgrf.pipeline import pack\n",
        "pipeline/__init__.py": "", "pipeline/pack.py": "def g():\n    import torch\n",
        "render/__init__.py": "", "render/runner.py": "from pgrf import runtime\nimport bpy\n",
        "render/blender/__init__.py": "", "render/blender/scene.py": "import bpy\nfrom pgrf.errors import PgrfError\n",
        "runtime.py": "import torch\nfrom pgrf.cli import app\n", "stray.py": "",
        "review/__init__.py": "", "review/gallery.py": "from rich.console import Console\n",
        "cli/reporting.py": "from rich.progress import Progress\n", "progress.py": "def f():\n    import rich\n",
    })
    found = "\n".join(breaches(package, table))
    assert "formats/card.py:2: pgrf.formats.card imports pgrf.pipeline.pack" in found  # upward, inside a function
    assert "pipeline/pack.py:2: pgrf.pipeline.pack imports torch" in found
    assert "render/runner.py:1: the render half imports the train half (pgrf.runtime)" in found
    assert "render/runner.py:2: pgrf.render.runner imports bpy" in found
    assert "runtime.py:2: pgrf.runtime imports pgrf.cli" in found
    assert "cli/__init__.py:1: pgrf.cli imports torch" in found  # a half's module at the top of the CLI
    assert "module pgrf.stray is in no unit" in found
    assert "review/gallery.py:1: pgrf.review.gallery imports rich, which belongs to pgrf.cli" in found  # library code prints
    assert "progress.py:2: pgrf.progress imports rich" in found and "cli/reporting.py" not in found
    assert "render/blender/scene.py" not in found and "runtime.py:1:" not in found


def test_the_base_cli_imports_neither_half() -> None:
    code = ("import sys, pgrf.cli, pgrf.pipeline.pack, pgrf.pipeline.stats, pgrf.review.gallery\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'bpy', 'meshopt', 'webdataset', 'skimage'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
