"""Reading the EpiGRAF authors' network snapshots as data (pgrf.model.snapshot): snapshots are built here the
way their training loop writes them, in a subprocess that imports stand-ins of their modules (written into a
temporary folder: ``src.torch_utils.persistence``, ``src.dnnlib``, ``omegaconf``); hostile pickles are refused
and run nothing."""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import textwrap
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch

from pgrf.errors import PgrfError
from pgrf.model import snapshot
from pgrf.model.snapshot import read_snapshot

AUTHORS = {
    "src/__init__.py": "",
    "src/dnnlib/__init__.py": "from .util import EasyDict\n",
    "src/dnnlib/util.py": """
        class EasyDict(dict):
            def __getattr__(self, name):
                try:
                    return self[name]
                except KeyError:
                    raise AttributeError(name) from None
        """,
    "src/torch_utils/__init__.py": "",
    # As the authors' persistence pickles a decorated object: a call of _reconstruct_persistent_obj on a meta
    # dict with its module's source, its class name and its state (its __dict__, init args and kwargs included).
    "src/torch_utils/persistence.py": """
        import copy, inspect, sys

        def persistent_class(cls):
            source = inspect.getsource(sys.modules[cls.__module__])

            class Decorator(cls):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    self._init_args = copy.deepcopy(args)
                    self._init_kwargs = copy.deepcopy(kwargs)

                def __reduce__(self):
                    fields = list(super().__reduce__()) + [None, None, None]
                    meta = dict(type="class", version=6, module_src=source, class_name=cls.__name__, state=fields[2])
                    return (_reconstruct_persistent_obj, (meta,), None)

            Decorator.__name__ = cls.__name__
            _classes[cls.__name__] = Decorator
            return Decorator

        _classes = {}

        def _reconstruct_persistent_obj(meta):  # what copy.deepcopy calls (the authors' executes module_src)
            obj = _classes[meta["class_name"]].__new__(_classes[meta["class_name"]])
            obj.__setstate__(meta["state"])
            return obj
        """,
    # omegaconf's layout as pickled: containers and value nodes keep _metadata, _parent and _content or _val.
    "omegaconf/__init__.py": "from omegaconf.base import DictConfig, ListConfig\n",
    "omegaconf/base.py": """
        from collections import defaultdict
        from dataclasses import dataclass, field
        from typing import Any

        @dataclass
        class Metadata:
            ref_type: Any
            object_type: Any
            optional: bool
            key: Any
            flags: dict = field(default_factory=dict)
            flags_root: bool = False
            resolver_cache: dict = field(default_factory=lambda: defaultdict(dict))

        @dataclass
        class ContainerMetadata(Metadata):
            key_type: Any = None
            element_type: Any = None

        class Node:
            def __init__(self, parent, key, content):
                self.__dict__.update(_parent=parent, _flags_cache=None)
                if isinstance(content, dict):
                    self.__dict__["_metadata"] = ContainerMetadata(Any, dict, True, key, key_type=Any, element_type=Any)
                    self.__dict__["_content"] = {k: node(self, k, v) for k, v in content.items()}
                elif isinstance(content, list):
                    self.__dict__["_metadata"] = ContainerMetadata(Any, list, True, key, key_type=int, element_type=Any)
                    self.__dict__["_content"] = [node(self, i, v) for i, v in enumerate(content)]
                else:
                    self.__dict__["_metadata"] = Metadata(Any, None, True, key)
                    self.__dict__["_val"] = content

            def __getattr__(self, name):
                try:
                    return self.__dict__["_content"][name]
                except (KeyError, TypeError):
                    raise AttributeError(name) from None

            def __getstate__(self):
                state = dict(self.__dict__)
                del state["_flags_cache"]
                return state

            def __setstate__(self, state):
                self.__dict__.update(state, _flags_cache=None)

        class DictConfig(Node): pass
        class ListConfig(Node): pass
        class AnyNode(Node): pass
        class IntegerNode(Node): pass
        class FloatNode(Node): pass
        class StringNode(Node): pass
        class BooleanNode(Node): pass

        def node(parent, key, value):
            kinds = {dict: DictConfig, list: ListConfig, bool: BooleanNode, int: IntegerNode, float: FloatNode, str: StringNode}
            return kinds.get(type(value), AnyNode)(parent, key, value)

        for kind, module in [(Metadata, "base"), (ContainerMetadata, "base"), (DictConfig, "dictconfig"),
                             (ListConfig, "listconfig"), (AnyNode, "nodes"), (IntegerNode, "nodes"),
                             (FloatNode, "nodes"), (StringNode, "nodes"), (BooleanNode, "nodes")]:
            kind.__module__ = "omegaconf." + module
        """,
    "omegaconf/dictconfig.py": "from omegaconf.base import DictConfig\n",
    "omegaconf/listconfig.py": "from omegaconf.base import ListConfig\n",
    "omegaconf/nodes.py": "from omegaconf.base import AnyNode, BooleanNode, FloatNode, IntegerNode, StringNode\n",
    "src/training/__init__.py": "",
    "src/training/networks.py": """
        import numpy as np
        import torch
        from src.torch_utils import persistence

        @persistence.persistent_class
        class Block(torch.nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
                self.bias = torch.nn.Parameter(torch.zeros([channels]))
                self.register_buffer("scale", torch.full([channels], 0.5))
                self.register_buffer("cache", torch.ones([1]), persistent=False)
                self.weight_gain = 1 / np.sqrt(channels)  # a numpy scalar, as in the authors' layers

        @persistence.persistent_class
        class Generator(torch.nn.Module):
            def __init__(self, cfg, z_dim, w_dim, mapping_kwargs, channels, img_resolution, img_channels, c_dim):
                super().__init__()
                self.cfg = cfg
                self.blocks = torch.nn.ModuleList([Block(channels) for _ in range(2)])
                self.head = torch.nn.Linear(channels, img_channels)
                self.skip = None
                self.register_buffer("w_avg", torch.arange(w_dim, dtype=torch.float32))

        @persistence.persistent_class
        class Discriminator(torch.nn.Module):
            def __init__(self, cfg, channels, img_resolution, img_channels, c_dim):
                super().__init__()
                self.b0 = Block(channels)
                self.conv = torch.nn.Conv2d(img_channels, channels, 3)

        @persistence.persistent_class
        class AugmentPipe(torch.nn.Module):
            def __init__(self, xflip, rotate90):
                super().__init__()
                self.register_buffer("p", torch.ones([]))
        """,
    # What the training loop pickles: the networks (copies made eval, no grad, on the CPU), the optimisers
    # after a step, vis (numpy arrays and tensors), stats and training_set_kwargs.
    "make_snapshot.py": """
        import copy, math, pickle, sys
        import numpy as np
        import torch
        from omegaconf.base import node
        from src import dnnlib
        from src.training.networks import AugmentPipe, Discriminator, Generator

        torch.manual_seed(0)
        cfg = node(None, None, {
            "model": {"generator": {"w_dim": 8, "fmaps": 0.5, "name": "epigraf", "use_noise": False, "cmax": None,
                                    "tri_plane": {"res": 32, "feat_dim": 4}, "optim": {"betas": [0.0, 0.99]},
                                    "resolution": "${dataset.resolution}"},
                      "discriminator": {"mbstd_group_size": 4}},
            "dataset": {"resolution": 256}})
        common = dict(img_resolution=256, img_channels=3, c_dim=0)
        mapping = dnnlib.EasyDict(num_layers=2, mean_camera_pose=torch.tensor([math.pi / 2, math.pi / 2, 0.0]))
        G = Generator(cfg=cfg.model.generator, z_dim=8, w_dim=8, mapping_kwargs=mapping, channels=4, **common)
        D = Discriminator(cfg=cfg.model.discriminator, channels=4, **common)
        augment_pipe = AugmentPipe(xflip=1, rotate90=1)
        augment_pipe.p.copy_(torch.as_tensor(0.25))
        G_opt = torch.optim.Adam(G.parameters(), lr=0.0025, betas=[0.0, 0.99], eps=1e-8)
        for p in G.parameters():
            p.grad = torch.ones_like(p)
        G_opt.step()
        G_ema = copy.deepcopy(G)
        with torch.no_grad():
            G_ema.blocks[1].weight.mul_(2)
        data = dict(training_set_kwargs=dict(dnnlib.EasyDict(
            class_name="src.training.dataset.ImageFolderDataset", path="/data/plants.zip", use_labels=True,
            max_size=None, xflip=False, resolution=256)))
        for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment_pipe)]:
            data[name] = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        data["G_opt"] = G_opt
        data["D_opt"] = torch.optim.Adam(D.parameters(), lr=0.002)
        data["vis"] = {"grid_size": (2, 2), "labels": np.zeros([4, 3], np.float32), "grid_z": torch.randn([4, 8]).split(2)}
        data["stats"] = {"cur_nimg": 4000, "cur_tick": 1, "best_metric_value": float("inf")}
        with open(sys.argv[1], "wb") as f:
            pickle.dump(data, f)
        torch.save({name: data[name].state_dict() for name in ("G", "D", "G_ema", "augment_pipe")}, sys.argv[2])
        """,
}


@pytest.fixture(scope="module")
def authors_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, torch.Tensor]]]:
    """A snapshot written like the authors' training loop's, and the state dicts of its networks."""
    root = tmp_path_factory.mktemp("authors")
    for name, text in AUTHORS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    pkl, expected = root / "network-snapshot-000004.pkl", root / "expected.pt"
    subprocess.run([sys.executable, str(root / "make_snapshot.py"), str(pkl), str(expected)], check=True,
                   cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    return pkl, torch.load(expected, weights_only=True)


def test_reads_the_authors_snapshot(authors_snapshot: tuple[Path, dict[str, dict[str, torch.Tensor]]]) -> None:
    path, expected = authors_snapshot
    result = read_snapshot(path)
    assert "src" not in sys.modules and "omegaconf" not in sys.modules
    assert result.training_set_kwargs == {"class_name": "src.training.dataset.ImageFolderDataset", "path": "/data/plants.zip",
                                          "use_labels": True, "max_size": None, "xflip": False, "resolution": 256}
    assert sorted(result.networks) == ["D", "G", "G_ema", "augment_pipe"]
    for name, network in result.networks.items():
        assert list(network.state_dict) == list(expected[name]), name
        for key, tensor in expected[name].items():
            assert network.state_dict[key].dtype == tensor.dtype and torch.equal(network.state_dict[key], tensor), key
    G = result.networks["G"]
    assert list(G.state_dict) == ["w_avg", "blocks.0.weight", "blocks.0.bias", "blocks.0.scale", "blocks.1.weight",
                                  "blocks.1.bias", "blocks.1.scale", "head.weight", "head.bias"]
    assert torch.equal(result.networks["G_ema"].state_dict["blocks.1.weight"], 2 * G.state_dict["blocks.1.weight"])
    assert result.networks["augment_pipe"].state_dict["p"].item() == 0.25
    assert G.class_name == "Generator" and G.version == 6 and G.init_args == []
    assert "class Generator(torch.nn.Module):" in G.module_source
    kwargs = G.init_kwargs
    assert kwargs["cfg"] == {"w_dim": 8, "fmaps": 0.5, "name": "epigraf", "use_noise": False, "cmax": None,
                             "tri_plane": {"res": 32, "feat_dim": 4}, "optim": {"betas": [0.0, 0.99]},
                             "resolution": "${dataset.resolution}"}
    assert type(kwargs["cfg"]) is dict and type(kwargs["cfg"]["optim"]["betas"]) is list
    assert kwargs["mapping_kwargs"]["num_layers"] == 2 and type(kwargs["mapping_kwargs"]) is dict
    assert torch.allclose(kwargs["mapping_kwargs"]["mean_camera_pose"], torch.tensor([math.pi / 2, math.pi / 2, 0.0]))
    assert {key: kwargs[key] for key in ("z_dim", "w_dim", "channels", "img_resolution", "img_channels", "c_dim")} == {
        "z_dim": 8, "w_dim": 8, "channels": 4, "img_resolution": 256, "img_channels": 3, "c_dim": 0}
    assert result.networks["D"].init_kwargs["cfg"] == {"mbstd_group_size": 4}
    assert result.networks["augment_pipe"].init_kwargs == {"xflip": 1, "rotate90": 1}


def test_refuses_an_oversized_file(authors_snapshot: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "MAX_SNAPSHOT_BYTES", authors_snapshot[0].stat().st_size - 1)
    with pytest.raises(PgrfError, match="over the limit of"):
        read_snapshot(authors_snapshot[0])


class Call:
    """Pickles as a call of ``function`` on ``args``."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


def persistent_call(monkeypatch: pytest.MonkeyPatch, meta: dict[str, Any], protocol: int = 4,
                    persistence: str = "src.torch_utils.persistence", **extra: Any) -> bytes:
    """The pickle of a snapshot whose G and G_ema are objects of ``meta`` reconstructed by the module
    ``persistence`` (and ``extra`` entries): the module exists only while pickling."""
    with monkeypatch.context() as patch:
        parts = persistence.split(".")
        for end in range(1, len(parts) + 1):
            patch.setitem(sys.modules, ".".join(parts[:end]), types.ModuleType(".".join(parts[:end])))
        reconstruct = types.FunctionType((lambda meta: None).__code__, {}, "_reconstruct_persistent_obj")
        reconstruct.__module__ = persistence
        reconstruct.__qualname__ = "_reconstruct_persistent_obj"
        sys.modules[persistence]._reconstruct_persistent_obj = reconstruct  # type: ignore[attr-defined]
        network = Call(reconstruct, meta)
        return pickle.dumps({"training_set_kwargs": {}, "G": network, "G_ema": network, **extra}, protocol=protocol)


def module_meta(source: str, parameters: dict[str, Any], modules: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(type="class", version=6, module_src=source, class_name="G",
                state={"_parameters": parameters, "_buffers": {}, "_modules": modules or {}, "_init_args": (),
                       "_init_kwargs": {}})


def storage_blob(values: torch.Tensor) -> bytes:
    """A storage's bytes as torch pickles them (its legacy serialisation)."""
    buffer = io.BytesIO()
    torch.save(values._typed_storage(), buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def tensor_call(blob: bytes, size: tuple[int, ...]) -> Call:
    return Call(torch._utils._rebuild_tensor_v2, Call(torch.storage._load_from_bytes, blob), 0, size, (1,), False,
                OrderedDict())


def test_never_runs_a_system_call(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"training_set_kwargs": {}, "G": Call(os.system, f"touch {marker}")}))
    with pytest.raises(PgrfError) as error:
        read_snapshot(path)
    assert str(error.value).startswith(f"{path}: the snapshot calls posix.system, which pgrf does not run")
    assert "\n" not in str(error.value) and not marker.exists()


@pytest.mark.parametrize("persistence", ["src.torch_utils.persistence", "torch_utils.persistence"])
def test_never_executes_the_module_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, persistence: str) -> None:
    """EpiGRAF's persistence module lives under src, StyleGAN2-ADA's at the top."""
    marker = tmp_path / "ran"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass G:\n    pass\n"
    weight = torch.arange(4.0)
    path = tmp_path / "source.pkl"
    meta = module_meta(source, {"weight": tensor_call(storage_blob(weight), (4,))})
    path.write_bytes(persistent_call(monkeypatch, meta, persistence=persistence))
    result = read_snapshot(path)
    assert not marker.exists()
    assert result.networks["G"].module_source == source and torch.equal(result.networks["G"].state_dict["weight"], weight)


def test_refuses_a_storage_whose_pickle_calls_a_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save(Call(os.system, f"touch {marker}"), buffer, _use_new_zipfile_serialization=False)
    path = tmp_path / "storage.pkl"
    path.write_bytes(persistent_call(monkeypatch, module_meta("", {"weight": tensor_call(buffer.getvalue(), (1,))})))
    with pytest.raises(PgrfError) as error:
        read_snapshot(path)
    assert str(error.value).startswith(f"{path}: a tensor storage holds a pickle that builds other objects than storages "
                                       "(it calls posix.system)")
    assert "\n" not in str(error.value) and not marker.exists()


def test_reads_a_cuda_storage_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weight = torch.tensor([1.5, -2.0, 3.25])
    blob = storage_blob(weight)
    cuda = blob.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n").replace(
        b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    assert cuda != blob
    path = tmp_path / "cuda.pkl"
    path.write_bytes(persistent_call(monkeypatch, module_meta("", {"weight": tensor_call(cuda, (3,))})))
    tensor = read_snapshot(path).networks["G"].state_dict["weight"]
    assert tensor.device == torch.device("cpu") and torch.equal(tensor, weight)


def test_refuses_a_storage_declaring_more_than_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = storage_blob(torch.zeros(6))
    assert b"K\x06N" in blob
    huge = blob.replace(b"K\x06N", b"J\x00\x00\x00\x10N")  # 2^28 floats declared, 24 bytes present
    path = tmp_path / "huge.pkl"
    path.write_bytes(persistent_call(monkeypatch, module_meta("", {"weight": tensor_call(huge, (6,))})))
    with pytest.raises(PgrfError, match=r"a tensor storage declares 1073741824 bytes but holds \d+; not read"):
        read_snapshot(path)


def test_refuses_a_tensor_larger_than_its_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "view.pkl"
    path.write_bytes(persistent_call(monkeypatch, module_meta("", {"weight": tensor_call(storage_blob(torch.zeros(2)), (99,))})))
    with pytest.raises(PgrfError, match="not a readable snapshot"):
        read_snapshot(path)


def test_refuses_what_is_not_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(PgrfError, match="not a snapshot's dict"):
        read_snapshot(path)
    path.write_bytes(pickle.dumps({"training_set_kwargs": {}, "G": {"weight": 1}}))
    with pytest.raises(PgrfError, match="G is not a persistent network"):
        read_snapshot(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(PgrfError, match="not a readable snapshot"):
        read_snapshot(path)
    with pytest.raises(PgrfError, match="no such snapshot"):
        read_snapshot(tmp_path / "missing.pkl")


@pytest.mark.parametrize("protocol", [1, 2])
def test_reads_older_pickle_protocols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int) -> None:
    """Protocol 1 builds torch modules and Adam through copyreg._reconstructor, sets through builtins.set and
    bytes through _codecs.encode; protocol 2 builds them with NEWOBJ."""
    torch.manual_seed(1)
    head = torch.nn.Linear(3, 2)
    optimiser = torch.optim.Adam(head.parameters(), lr=0.01)
    for parameter in head.parameters():
        parameter.grad = torch.ones_like(parameter)
    optimiser.step()
    path = tmp_path / "old.pkl"
    path.write_bytes(persistent_call(monkeypatch, module_meta("", {}, {"head": head}), protocol, G_opt=optimiser))
    state = read_snapshot(path).networks["G"].state_dict
    assert list(state) == ["head.weight", "head.bias"]
    assert torch.equal(state["head.weight"], head.weight) and torch.equal(state["head.bias"], head.bias)


def test_refuses_calling_a_builtin_type(tmp_path: Path) -> None:
    path = tmp_path / "bytes.pkl"
    path.write_bytes(pickle.dumps({"training_set_kwargs": {}, "G": Call(bytes, 1 << 40)}))
    with pytest.raises(PgrfError, match=r"not a readable snapshot \('Global' object is not callable\)"):
        read_snapshot(path)
