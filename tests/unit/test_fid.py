"""FID/KID maths against closed forms and float64 references; the FID Inception's names, loading and input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pgrf.errors import PgrfError
from pgrf.evaluate import inception
from pgrf.evaluate.fid import (
    FeatureAccumulator,
    FeatureStats,
    feature_stats,
    fid,
    frechet_distance,
    kid,
    load_stats,
    mmd2_polynomial,
    save_stats,
    stats_cache_path,
)
from pgrf.evaluate.inception import FIDInceptionV3, load_inception, preprocess


def sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """Float64 numpy FID via symmetric square roots (independent of sqrtm of a non-symmetric product)."""
    m1, m2, c1, c2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = sym_sqrt(c1)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * sym_sqrt(root @ c2 @ root)))


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_feature_sets_give_zero() -> None:
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert abs(fid(feature_stats(x), feature_stats(x.copy()))) < 1e-9


def test_two_gaussians_match_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 2, size=6), rng.uniform(0.1, 2, size=6)
    closed = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(closed, rel=1e-10)
    c1, c2 = random_cov(rng, 6), random_cov(rng, 6)  # non-commuting covariances
    root = sym_sqrt(c1)
    closed = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * sym_sqrt(root @ c2 @ root))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(closed, rel=1e-9)
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + (2 - 1) ** 2)


def test_streaming_statistics_match_a_float64_reference() -> None:
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(700, 24)) @ rng.normal(size=(24, 24)) + 50).astype(np.float32)
    y = (rng.normal(size=(500, 24)) * 1.3 + 50.2).astype(np.float32)
    stats = []
    for data in (x, y):
        accumulator = FeatureAccumulator()
        for start, stop in ((0, 1), (1, 64), (64, 300), (300, len(data))):
            accumulator.update(torch.from_numpy(data[start:stop]))
        stats.append(accumulator.stats())
        reference = data.astype(np.float64)
        np.testing.assert_allclose(stats[-1].mean, reference.mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats[-1].cov, np.cov(reference, rowvar=False), rtol=1e-9, atol=1e-12)
        assert stats[-1].count == len(data)
    expected = reference_fid(x.astype(np.float64), y.astype(np.float64))
    assert fid(*stats) == pytest.approx(expected, rel=1e-6)
    assert fid(feature_stats(x), feature_stats(y)) == pytest.approx(expected, rel=1e-6)


def test_accumulator_keeps_only_the_first_features_for_kid() -> None:
    accumulator = FeatureAccumulator(keep=5)
    for _ in range(3):
        accumulator.update(np.arange(12, dtype=np.float64).reshape(4, 3))
    kept = accumulator.stats().features
    assert kept is not None and kept.shape == (5, 3) and kept.dtype == np.float32


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m**2


def test_kid_is_the_unbiased_polynomial_mmd() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
    assert mmd2_polynomial(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-12)
    mean, std = kid(x, y, num_subsets=3, max_subset_size=100)  # a subset of all is a permutation
    assert mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-12) and std == pytest.approx(0, abs=1e-12)
    same = kid(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), num_subsets=10, max_subset_size=200)[0]
    shifted = kid(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 1, num_subsets=10, max_subset_size=200)[0]
    assert abs(same) < 0.02 < shifted
    assert kid(x, y, num_subsets=4, max_subset_size=6, seed=7) == kid(x, y, num_subsets=4, max_subset_size=6, seed=7)


def test_stats_cache_round_trip_is_keyed(tmp_path: Path) -> None:
    accumulator = FeatureAccumulator(keep=3)
    accumulator.update(np.random.default_rng(4).normal(size=(10, 4)))
    stats = accumulator.stats()
    path = stats_cache_path(tmp_path, "shards:abc|n=10")
    assert path != stats_cache_path(tmp_path, "shards:abd|n=10")
    assert load_stats(path, "shards:abc|n=10") is None
    save_stats(stats, path, "shards:abc|n=10")
    loaded = load_stats(path, "shards:abc|n=10")
    assert isinstance(loaded, FeatureStats) and loaded.count == 10
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    np.testing.assert_array_equal(loaded.features, stats.features)
    assert load_stats(path, "other key") is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- the Inception network -------------------------------------------------------------------

STANDARD_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.bias": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for name, buffer in model.named_buffers():  # non-trivial BatchNorm statistics
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


def test_state_dict_has_the_standard_names_and_shapes() -> None:
    with torch.device("meta"):
        state = FIDInceptionV3().state_dict()
    for name, shape in STANDARD_SHAPES.items():
        assert tuple(state[name].shape) == shape, name
    assert not any(k.startswith("AuxLogits") for k in state)
    assert sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "tracked"))) \
        == 23_850_960  # torchvision's Inception3 without the aux head, 1008 classes
    assert len([k for k in state if not k.endswith("num_batches_tracked")]) == 472


def cheap_state(**shapes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The standard state dict as broadcast zeros (tiny on disk), with entries changed or added."""
    with torch.device("meta"):
        model = FIDInceptionV3()
    state = {k: torch.zeros(()).expand(v.shape) for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    state.update({k: torch.zeros(()).expand(v) for k, v in shapes.items()})
    return state


def test_weights_load_from_a_path_or_the_environment(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = torch.load(weights, weights_only=True)
    loaded = load_inception(weights)
    state = loaded.state_dict()
    for name, value in saved.items():
        assert torch.equal(state[name], value), name
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    monkeypatch.setenv(inception.INCEPTION_ENV, str(weights))
    assert torch.equal(load_inception().fc.bias, saved["fc.bias"])


def test_bad_weights_are_one_line_errors_naming_file_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(inception.INCEPTION_ENV, raising=False)
    renamed = cheap_state()
    renamed["Mixed_7c.branch_pool.conv.weights"] = renamed.pop("Mixed_7c.branch_pool.conv.weight")
    wrong_shape = cheap_state(**{"fc.weight": (1000, 2048)})
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    cases = {"missing.pth": None, "renamed.pth": renamed, "shape.pth": wrong_shape, "garbage.pth": "keep"}
    for name, state in cases.items():
        path = tmp_path / name
        if isinstance(state, dict):
            torch.save(state, path)
        with pytest.raises(PgrfError) as error:
            load_inception(path)
        message = str(error.value)
        assert "\n" not in message and str(path) in message and inception.INCEPTION_ENV in message, message
    with pytest.raises(PgrfError, match="Mixed_7c.branch_pool.conv.weight"):
        load_inception(tmp_path / "renamed.pth")
    with pytest.raises(PgrfError, match="fc.weight"):
        load_inception(tmp_path / "shape.pth")
    with pytest.raises(PgrfError, match="no Inception weights configured"):
        load_inception()


def test_resize_is_bilinear_without_antialias_and_scales_to_unit_range() -> None:
    x = torch.rand(2, 3, 37, 64, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False) * 2 - 1
    assert torch.equal(preprocess(x), expected)
    assert not torch.allclose(preprocess(x), F.interpolate(x, size=(299, 299), mode="bilinear",
                                                           align_corners=False, antialias=True) * 2 - 1)
    as_bytes = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(preprocess(as_bytes), preprocess(as_bytes.float() / 255), atol=0, rtol=0)
    assert preprocess(torch.ones(1, 3, 8, 8)).eq(1).all() and preprocess(torch.zeros(1, 3, 8, 8)).eq(-1).all()


def test_fid_variant_pooling() -> None:
    with torch.device("meta"):
        model = FIDInceptionV3()
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool
    assert inception._avg_pool(torch.ones(1, 1, 4, 4)).eq(1).all()  # padding not counted


def test_forward_gives_2048_features(weights: Path) -> None:
    model = load_inception(weights)
    with torch.no_grad():
        features = model(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert features.shape == (2, inception.FEATURE_DIM) and torch.isfinite(features).all()
    assert (features >= 0).all() and not torch.equal(features[0], features[1])
