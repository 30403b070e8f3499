"""Reading the EpiGRAF authors' ``network-snapshot-*.pkl`` files as data, without running anything in them.

Their training loop pickles a dict: ``training_set_kwargs``, the networks ``G``, ``D``, ``G_ema`` and
``augment_pipe`` (persistent classes of ``torch_utils.persistence``: each a call of
``_reconstruct_persistent_obj`` on a meta dict holding the module's source, the class name and the object's
state), the optimisers, ``vis`` and ``stats``. A restricted unpickler maps each global it meets to an inert
stand-in (``Record``, plain containers, tensors) and refuses every other global in one line naming it; the
module source stays a string, never compiled. Tensor storages are torch's legacy bytes, read with torch's
``weights_only`` loader on the CPU after their declared sizes are checked against the bytes present.
"""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from pgrf.errors import PgrfError

MAX_SNAPSHOT_BYTES = 4 << 30
"""Bytes of one snapshot file (the authors' are about 875 MB), checked before it is read."""
NETWORKS = ("G", "D", "G_ema", "augment_pipe")
FIX = "use a network-snapshot-*.pkl written by the EpiGRAF authors' training loop"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""The first pickle of torch's legacy (non-zip) serialisation, which a pickled storage's bytes use."""
ELEMENT_BYTES = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                 "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16}
"""Bytes of one element of each storage type torch's legacy format names (``torch.FloatStorage`` …)."""
OMEGACONF_CONTAINERS = ("omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig")
OMEGACONF_NODES = tuple(f"omegaconf.nodes.{name}" for name in (
    "AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode"))
OMEGACONF_METADATA = ("omegaconf.base.Metadata", "omegaconf.base.ContainerMetadata")
RECORDED_PREFIXES = ("torch.nn.modules.", "torch.optim.")
"""Modules whose classes become ``Record`` s: torch's plain modules (children of the networks) and optimisers."""
RECORDED = (*OMEGACONF_CONTAINERS, *OMEGACONF_NODES, *OMEGACONF_METADATA, "numpy.ndarray", "numpy.dtype",
            "numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
            "numpy._core.multiarray._reconstruct", "numpy._core.multiarray.scalar")
"""Other globals that become ``Record`` s: omegaconf's nodes (G's and D's ``cfg``) and numpy arrays (``vis``)."""
BUILTIN_TYPES = ("dict", "list", "tuple", "int", "float", "str", "bytes", "bool", "object")
"""Builtin types a pickle may name as values; inert (``Global``), so calling one (``bytes(2**40)``) is refused."""
PYTHON_2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
"""The module names that protocols 0-2 write for Python 2 (``fix_imports``), read as their Python 3 names."""


class Record:
    """What a pickle would build by calling or instantiating the global ``name``, kept as data: the arguments
    of the call and the state it was given (``BUILD``). One subclass per global, made by the reader."""

    name: ClassVar[str] = ""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Record:
        record = object.__new__(cls)
        record.args, record.kwargs, record.state = args, kwargs, None
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: ``__new__`` kept the arguments."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


@dataclass(frozen=True)
class Global:
    """A type or typing name a pickle refers to as a value (omegaconf's ``ref_type``, ``object_type``); inert,
    not callable."""

    name: str


@dataclass(frozen=True)
class Persistent:
    """A ``torch_utils.persistence`` object: the meta dict its ``_reconstruct_persistent_obj`` call was given
    (``type``, ``version``, ``module_src``, ``class_name``, ``state``)."""

    meta: dict[str, Any]


@dataclass(frozen=True)
class Network:
    """One network of a snapshot: its persistent class (``class_name``, the ``module_source`` it was defined
    in, as text, and the persistence ``version``), the arguments it was built with as plain data (omegaconf
    configs become dicts and lists, their ``${…}`` interpolations stay strings), and its state dict (dotted
    names as torch's ``state_dict`` gives them → CPU tensors)."""

    class_name: str
    module_source: str
    version: int
    init_args: list[Any]
    init_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as read: its file, ``training_set_kwargs`` as plain data, and the networks it holds of
    ``G``, ``D``, ``G_ema`` and ``augment_pipe`` (the optimisers, ``vis`` and ``stats`` are read, not kept)."""

    path: Path
    training_set_kwargs: dict[str, Any]
    networks: dict[str, Network]


def read_snapshot(path: Path) -> Snapshot:
    """Read an EpiGRAF ``network-snapshot-*.pkl`` as data, or raise a one-line error naming the file: a global
    outside the allow-list, a storage whose pickle builds anything but a storage, a size over the limits."""
    if not path.is_file():
        raise PgrfError(f"{path}: no such snapshot; {FIX}")
    size = path.stat().st_size
    if size > MAX_SNAPSHOT_BYTES:
        raise PgrfError(f"{path}: {size} bytes, over the limit of {MAX_SNAPSHOT_BYTES} for a snapshot; not read")
    try:
        with path.open("rb") as stream:
            document = _Reader(stream, str(path)).load()
    except PgrfError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, KeyError, IndexError,
            RuntimeError, MemoryError, RecursionError) as error:
        raise PgrfError(f"{path}: not a readable snapshot ({_first_line(error)}); {FIX}") from None
    try:
        return _snapshot(path, document)
    except RecursionError:
        raise PgrfError(f"{path}: a snapshot whose containers hold themselves; {FIX}") from None


class _Reader(pickle.Unpickler):
    """The restricted unpickler: ``find_class`` answers with stand-ins or refuses; no persistent ids."""

    def __init__(self, stream: io.BufferedIOBase, where: str) -> None:
        super().__init__(stream)
        self.where = where
        self.records: dict[str, type[Record]] = {}

    def find_class(self, module: str, name: str) -> Any:
        dotted = f"{module}.{name}"
        module = PYTHON_2_MODULES.get(module, module)
        helper = self._helper(module, name)
        if helper is not None:
            return helper
        if dotted in RECORDED or module.startswith(RECORDED_PREFIXES):
            if dotted not in self.records:
                self.records[dotted] = type(name, (Record,), {"name": dotted})
            return self.records[dotted]
        if module == "typing" or (module == "builtins" and name in BUILTIN_TYPES):
            return Global(dotted)
        raise PgrfError(f"{self.where}: the snapshot calls {dotted}, which pgrf does not run; only tensors, "
                        f"containers, persistent networks, torch modules and optimisers and omegaconf configs are "
                        f"read; {FIX}")

    def _helper(self, module: str, name: str) -> Callable[..., Any] | None:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "builtins" and name in ("set", "frozenset"):  # how protocols 0-2 pickle sets
            return {"set": set, "frozenset": frozenset}[name]
        if (module, name) == ("_codecs", "encode"):  # how protocols 0-2 pickle bytes
            return _latin1
        if (module, name) == ("collections", "defaultdict"):
            return _defaultdict
        if (module, name) == ("copyreg", "_reconstructor"):
            return _reconstructor
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return self._load_storage
        if _is_module(module, "torch_utils.persistence") and name == "_reconstruct_persistent_obj":
            return self._persistent
        if name == "EasyDict" and (_is_module(module, "dnnlib.util") or _is_module(module, "dnnlib")):
            return dict
        return None

    def persistent_load(self, pid: Any) -> Any:
        raise PgrfError(f"{self.where}: the snapshot refers to outside objects (persistent ids), which plain "
                        f"pickles of networks never do; {FIX}")

    def _persistent(self, meta: Any) -> Persistent:
        if not (isinstance(meta, dict) and meta.get("type") == "class" and isinstance(meta.get("module_src"), str)
                and isinstance(meta.get("class_name"), str) and isinstance(meta.get("state"), dict)):
            raise PgrfError(f"{self.where}: a persistent object whose meta is not a class's (type, module_src, "
                            f"class_name, state); {FIX}")
        return Persistent(meta)

    def _load_storage(self, blob: Any) -> Any:
        if not isinstance(blob, bytes):
            raise PgrfError(f"{self.where}: a tensor storage that is not bytes; {FIX}")
        declared = _declared_bytes(blob, self.where)
        if declared > len(blob):
            raise PgrfError(f"{self.where}: a tensor storage declares {declared} bytes but holds {len(blob)}; "
                            f"not read; {FIX}")
        try:
            return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as error:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            called = f" (it calls {found.group(1)})" if found else ""
            raise PgrfError(f"{self.where}: a tensor storage holds a pickle that builds other objects than "
                            f"storages{called}, which pgrf does not run; {FIX}") from None


class _Scan(pickle.Unpickler):
    """Reads one pickle of a storage's legacy bytes to find the storages it declares: globals become inert
    callables, persistent ids are collected."""

    def __init__(self, stream: io.BytesIO) -> None:
        super().__init__(stream)
        self.storages: list[tuple[Any, ...]] = []

    def find_class(self, module: str, name: str) -> Any:
        return _Named(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple):
            self.storages.append(pid)
        return None


@dataclass(frozen=True)
class _Named:
    """A global seen by the scan: callable, builds nothing."""

    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


def _declared_bytes(blob: bytes, where: str) -> int:
    """The bytes the storages of a legacy ``torch.save`` blob declare (elements × element size)."""
    stream = io.BytesIO(blob)
    try:
        pickles = [_Scan(stream) for _ in range(4)]
        magic = pickles[0].load()
        for scan in pickles[1:]:
            scan.load()
    except Exception as error:  # the scan builds nothing: any failure means these are not torch's bytes
        raise PgrfError(f"{where}: a tensor storage that is not torch's serialised storage "
                        f"({_first_line(error)}); {FIX}") from None
    if magic != LEGACY_MAGIC:
        raise PgrfError(f"{where}: a tensor storage that is not torch's serialised storage; {FIX}")
    total = 0
    for pid in pickles[3].storages:
        kind = pid[1].name if len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Named) else ""
        element = ELEMENT_BYTES.get(kind.rsplit(".", 1)[-1].removesuffix("Storage"))
        if element is None or not isinstance(pid[4], int) or pid[4] < 0:
            raise PgrfError(f"{where}: a tensor storage of an unknown kind ({kind or 'unnamed'}); {FIX}")
        total += element * pid[4]
    return total


def _is_module(module: str, name: str) -> bool:
    return module == name or module.endswith(f".{name}")


def _defaultdict(*args: Any) -> dict[Any, Any]:
    return {}


def _latin1(text: Any, encoding: Any) -> bytes:
    if not (isinstance(text, str) and encoding == "latin1"):
        raise pickle.UnpicklingError("_codecs.encode of something other than bytes pickled as latin-1 text")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> Record:
    if not (isinstance(cls, type) and issubclass(cls, Record)):
        raise pickle.UnpicklingError(f"copyreg._reconstructor of {cls!r}")
    return cls.__new__(cls)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> torch.Tensor:
    if not (isinstance(storage, torch.TypedStorage) and isinstance(offset, int) and offset >= 0 and _ints(size)
            and _ints(stride) and len(size) == len(stride)):
        raise pickle.UnpicklingError("a tensor rebuilt from something other than a storage and its shape")
    empty = torch.empty(0, dtype=storage.dtype)
    elements = storage._untyped_storage.nbytes() // empty.element_size()
    end = offset + sum((length - 1) * step for length, step in zip(size, stride)) + 1 if all(size) else 0
    if end > elements:  # set_ would grow the storage to fit
        raise pickle.UnpicklingError(f"a tensor reaching element {end} of a storage of {elements}")
    return empty.set_(storage._untyped_storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter rebuilt from something other than a tensor")
    return data


def _ints(values: Any) -> bool:
    return isinstance(values, tuple | list) and all(isinstance(value, int) and value >= 0 for value in values)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _snapshot(path: Path, document: Any) -> Snapshot:
    where = str(path)
    if not isinstance(document, dict):
        raise PgrfError(f"{where}: holds a {type(document).__name__}, not a snapshot's dict; {FIX}")
    kwargs = _plain(document.get("training_set_kwargs"), f"{where}: training_set_kwargs")
    if not isinstance(kwargs, dict):
        raise PgrfError(f"{where}: no training_set_kwargs dict; {FIX}")
    networks = {name: _network(document[name], f"{where}: {name}")
                for name in NETWORKS if document.get(name) is not None}
    for name in ("G", "G_ema"):
        if name not in networks:
            raise PgrfError(f"{where}: holds no {name}; {FIX}")
    return Snapshot(path, kwargs, networks)


def _network(value: Any, where: str) -> Network:
    if not isinstance(value, Persistent):
        raise PgrfError(f"{where} is not a persistent network; {FIX}")
    state = value.meta["state"]
    args = _plain(state.get("_init_args", ()), f"{where} init args")
    kwargs = _plain(state.get("_init_kwargs", {}), f"{where} init kwargs")
    version = value.meta.get("version")
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict) or not isinstance(version, int):
        raise PgrfError(f"{where}: init args, init kwargs or version of the wrong type; {FIX}")
    tensors: dict[str, torch.Tensor] = {}
    _collect(value, "", tensors, where)
    return Network(value.meta["class_name"], value.meta["module_src"], version, list(args), kwargs, tensors)


def _collect(module: Any, prefix: str, out: dict[str, torch.Tensor], where: str) -> None:
    """Add a module's parameters and persistent buffers, then its children's, as ``state_dict`` orders them."""
    if isinstance(module, Persistent):
        state = module.meta["state"]
    elif isinstance(module, Record) and module.name.startswith("torch.nn.modules.") and isinstance(module.state, dict):
        state = module.state
    else:
        raise PgrfError(f"{where}: {prefix.rstrip('.') or 'the network'} is not a module; {FIX}")
    parameters, buffers, children = (state.get(key, {}) for key in ("_parameters", "_buffers", "_modules"))
    skipped = state.get("_non_persistent_buffers_set", set())
    if not all(isinstance(table, dict) for table in (parameters, buffers, children)) or not isinstance(skipped, set):
        raise PgrfError(f"{where}: {prefix.rstrip('.') or 'the network'} has no module state; {FIX}")
    named = [*parameters.items(), *((key, value) for key, value in buffers.items() if key not in skipped)]
    for key, tensor in named:
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise PgrfError(f"{where}: {prefix}{key} is not a tensor; {FIX}")
        out[f"{prefix}{key}"] = tensor
    for key, child in children.items():
        if child is not None:
            _collect(child, f"{prefix}{key}.", out, where)


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain data: containers, numbers, strings, tensors; omegaconf nodes become their content."""
    if value is None or isinstance(value, bool | int | float | str | bytes | torch.Tensor):
        return value
    if isinstance(value, Global):
        return value.name
    if isinstance(value, dict):
        return {_plain(key, where): _plain(item, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, where) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item, where) for item in value)
    if isinstance(value, Record) and isinstance(value.state, dict):
        if value.name in OMEGACONF_CONTAINERS:
            return _plain(value.state.get("_content"), where)
        if value.name in OMEGACONF_NODES:
            return _plain(value.state.get("_val"), where)
    name = value.name if isinstance(value, Record) else type(value).__name__
    raise PgrfError(f"{where} hold a {name}, which is not plain data; pgrf reads no other kind")
