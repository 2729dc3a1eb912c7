"""The FID Inception-v3 against an independent PyTorch reference, its weights file and metrics.

tests/fixtures/inception_reference.npz comes from tests/fixtures/make_inception_reference.py: the
pytorch-fid architecture built in PyTorch from torchvision's Inception-v3 modules, filled with
deterministic synthetic weights (``synthetic_state_dict``, pure NumPy, regenerated here without
torch) and run on two 28 x 28 grey and two 32 x 32 colour images as pytorch-fid runs it. The
network is compiled once, for batches of 2 (about 3 s on a CPU).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from genjax.eval.features import FeatureNetwork, feature_distances
from genjax.eval.frechet import frechet_distance_from_features
from genjax.eval.inception import (
    FEATURE_DIM,
    InceptionFeatures,
    expected_shapes,
    file_sha256,
    inception_metrics,
    inception_metrics_from_features,
    load_inception_weights,
    main,
    resize_bilinear,
    save_inception_weights,
)
from genjax.eval.kernel_distance import kernel_inception_distance

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "make_inception_reference", ROOT / "tests" / "fixtures" / "make_inception_reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)  # NumPy only at import; torch is imported in its main()

# Features: float32 through 94 convolution + batch-norm layers, summed in different orders by
# PyTorch (oneDNN) and XLA; measured max |difference| 7e-6 on features up to 12 (8e-6
# relative elementwise). The tolerance is 1e-4 relative (the usual bound for a deep float32
# network), far below what one grey level of input changes (test_tolerance_is_tight).
NETWORK_RTOL = 1e-4
# Resize: each output is two float32 multiply-adds of values in [0, 1]; measured differences
# are 1 ulp (1.2e-7). A tap or weight off by one float32 ulp of the source position moves
# outputs by up to 1e-5.
RESIZE_ATOL = 5e-7
IMAGES = ("grey_28", "colour_32")


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """A 2048-d FID takes four 2048 x 2048 eigendecompositions: ~4 s on one thread, but ~45 s
    when OpenBLAS's two threads spin on shared cores (pytest -n 2, a training job)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def fixture() -> dict[str, np.ndarray]:
    with np.load(ROOT / "tests" / "fixtures" / "inception_reference.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def synthetic() -> dict[str, np.ndarray]:
    return reference.synthetic_state_dict(expected_shapes())


@pytest.fixture(scope="module")
def network(synthetic, tmp_path_factory) -> InceptionFeatures:
    path = tmp_path_factory.mktemp("inception") / "synthetic.npz"
    save_inception_weights(synthetic, path, source_sha256="ab" * 32)
    return load_inception_weights(path)


def _close_to_reference(got, want, what):
    np.testing.assert_allclose(got, want, rtol=NETWORK_RTOL,
                               atol=NETWORK_RTOL * float(np.abs(want).max()), err_msg=what)


# -- the network against PyTorch ---------------------------------------------------------------
def test_state_dict_keys_match_the_torch_reference(fixture):
    torch_shapes = {k: tuple(v) for k, v in json.loads(fixture["state_shapes"].tobytes()).items()}
    used = {k: v for k, v in torch_shapes.items()
            if not k.startswith("fc.") and not k.endswith(".num_batches_tracked")}
    assert used == expected_shapes()
    assert len(used) == 470 and sum(int(np.prod(s)) for s in used.values()) == 21_820_000
    # What the loader ignores: the 1008-way classifier and the batch-norm step counters.
    assert {k: v for k, v in torch_shapes.items() if k.startswith("fc.")} == {
        "fc.weight": (1008, 2048), "fc.bias": (1008,)}


@pytest.mark.parametrize("image", IMAGES)
def test_features_match_the_torch_reference(network, fixture, image):
    x = fixture[f"images/{image}"]
    acts = network.activations(x, batch_size=2)
    _close_to_reference(acts["pool3"], fixture[f"pool3/{image}"], "pool3")
    for block in ("block0", "block1", "block2"):
        for what, value in reference.block_summary(acts[block]).items():
            _close_to_reference(value, fixture[f"{block}_{what}/{image}"], f"{block} {what}")
    features = network.features(x, batch_size=2)
    assert features.shape == (2, FEATURE_DIM) and features.dtype == np.float64
    np.testing.assert_array_equal(features, acts["pool3"])


def test_network_is_a_feature_network(network, fixture):
    """The interface FD / KD are computed through (genjax.eval.features.FeatureNetwork)."""
    assert isinstance(network, FeatureNetwork)
    assert network.name == "inception-v3-fid" and network.sha256 == file_sha256(network.path)
    assert network.features(fixture["images/grey_28"], batch_size=2).shape == (2, FEATURE_DIM)


def test_tolerance_is_tight(network, fixture):
    """One grey level (1/255) more on every pixel moves the features far beyond NETWORK_RTOL."""
    x = fixture["images/colour_32"]
    want = fixture["pool3/colour_32"]
    moved = network.features(np.clip(x + 1 / 255, 0, 1), batch_size=2)
    assert np.abs(moved - want).max() > 20 * NETWORK_RTOL * np.abs(want).max()


def test_last_batch_is_padded(network, fixture):
    """Three images in batches of 2: one compiled shape, rows as computed alone."""
    x = fixture["images/colour_32"]
    three = network.features(np.concatenate([x, x[:1]]), batch_size=2)
    two = network.features(x, batch_size=2)
    np.testing.assert_allclose(three, np.concatenate([two, two[:1]]), rtol=1e-6, atol=1e-6)


# -- the resize --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shape, size", reference.RESIZE_CASES)
def test_resize_matches_pytorch_bilinear(fixture, name, shape, size):
    x = jnp.asarray(reference.pattern(shape)[None])
    got = np.asarray(resize_bilinear(x, size))[0]
    rows, cols = fixture[f"resize/{name}/rows"], fixture[f"resize/{name}/cols"]
    np.testing.assert_allclose(got[rows], fixture[f"resize/{name}/at_rows"], rtol=0,
                               atol=RESIZE_ATOL)
    np.testing.assert_allclose(got[:, cols], fixture[f"resize/{name}/at_cols"], rtol=0,
                               atol=RESIZE_ATOL)


def test_jax_image_resize_differs_when_shrinking(fixture):
    """Why genjax has its own resize: jax.image.resize antialiases when it shrinks."""
    for name, shape, size in reference.RESIZE_CASES:
        x = jnp.asarray(reference.pattern(shape)[None])
        theirs = np.asarray(jax.image.resize(x, (1, *size, shape[2]), "bilinear"))[0]
        rows = fixture[f"resize/{name}/rows"]
        error = np.abs(theirs[rows] - fixture[f"resize/{name}/at_rows"]).max()
        if name.startswith("up"):
            assert error < RESIZE_ATOL, name
        elif name.startswith("down"):
            assert error > 0.05, name


# -- the weights file --------------------------------------------------------------------------
def test_saved_file_is_reproducible_and_identified(network, synthetic, tmp_path):
    again = save_inception_weights(synthetic, tmp_path / "again.npz", source_sha256="ab" * 32)
    assert file_sha256(again) == network.sha256 == file_sha256(network.path)
    assert network.sha256 == hashlib.sha256(network.path.read_bytes()).hexdigest()
    assert network.source_sha256 == "ab" * 32
    # A plain np.savez of the same arrays (with extra keys) loads too, without a source hash.
    plain = tmp_path / "plain.npz"
    np.savez(plain, **synthetic, **{"fc.weight": np.zeros((1008, 2048), np.float32)})
    loaded = load_inception_weights(plain)
    assert loaded.source_sha256 is None and loaded.sha256 == file_sha256(plain)
    for a, b in zip(jax.tree.leaves(loaded.variables), jax.tree.leaves(network.variables),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_layouts_are_converted(network, synthetic):
    kernel = network.variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]
    torch_weight = synthetic["Mixed_6b.branch7x7_2.conv.weight"]  # (out, in, kh, kw)
    assert torch_weight.shape == (128, 128, 1, 7) and kernel.shape == (1, 7, 128, 128)
    np.testing.assert_array_equal(kernel, torch_weight.transpose(2, 3, 1, 0))
    stats = network.variables["batch_stats"]["Conv2d_1a_3x3"]["bn"]
    np.testing.assert_array_equal(stats["var"], synthetic["Conv2d_1a_3x3.bn.running_var"])


def _write(tmp_path, state) -> Path:
    path = tmp_path / "weights.npz"
    np.savez(path, **state)
    return path


def test_loader_errors(synthetic, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        load_inception_weights(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match="convert"):
        load_inception_weights(None)

    state = dict(synthetic)
    del state["Mixed_7c.branch_pool.bn.running_var"]
    with pytest.raises(ValueError, match=r"missing 1 of the 470 .*Mixed_7c\.branch_pool\.bn"):
        load_inception_weights(_write(tmp_path, state))

    state = dict(synthetic)
    state["Conv2d_1a_3x3.conv.weight"] = state["Conv2d_1a_3x3.conv.weight"].transpose(2, 3, 1, 0)
    with pytest.raises(ValueError, match=r"Conv2d_1a_3x3\.conv\.weight: expected \(32, 3, 3, 3\), "
                                         r"got \(3, 3, 3, 32\)"):
        load_inception_weights(_write(tmp_path, state))

    state = dict(synthetic)
    state["Mixed_5b.branch1x1.bn.bias"] = np.full(64, np.nan, np.float32)
    with pytest.raises(ValueError, match=r"NaN or infinite .*Mixed_5b\.branch1x1\.bn\.bias"):
        load_inception_weights(_write(tmp_path, state))

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_inception_weights(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load_inception_weights(single)
    with pytest.raises(TypeError, match="network must be"):
        inception_metrics(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 1)), 3, key=0)


def test_convert_without_torch_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert main(["convert", str(tmp_path / "in.pth"), str(tmp_path / "out.npz")]) == 1
    assert "needs PyTorch" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


# -- the metrics -------------------------------------------------------------------------------
def test_identical_sets_give_zero_fid(network, fixture):
    """Also: the network given by its path, and no key needed without KID."""
    x = fixture["images/colour_32"]
    out = inception_metrics(x, x, network.path, kid=False, batch_size=2)
    assert "kid" not in out and out["inception_sha256"] == network.sha256
    assert (out["fid_num_real"], out["fid_num_fake"]) == (2, 2)
    scale = np.trace(np.cov(network.features(x, batch_size=2).T))
    assert abs(out["fid"]) <= 1e-9 * scale


def test_metrics_equal_the_distances_on_the_features(network, fixture):
    real = fixture["images/colour_32"]
    fake = np.clip(real + 0.2, 0.0, 1.0)
    out = inception_metrics(real, fake, network, key=3, batch_size=2, kid_num_subsets=5)
    f_real, f_fake = network.features(real, batch_size=2), network.features(fake, batch_size=2)
    assert out["fid"] == pytest.approx(frechet_distance_from_features(f_real, f_fake), rel=1e-9)
    assert out["fid"] > 1.0
    kd = kernel_inception_distance(f_real, f_fake, key=3, num_subsets=5, subset_size=2)
    assert (out["kid"], out["kid_std"]) == pytest.approx((kd.mean, kd.std), rel=1e-6)
    assert (out["fid_num_real"], out["fid_num_fake"], out["kid_subset_size"],
            out["kid_num_subsets"]) == (2, 2, 2, 5)
    assert out["inception"] == "inception-v3-fid" and out["inception_sha256"] == network.sha256
    assert out["inception_source_sha256"] == "ab" * 32
    assert out == {**feature_distances(f_real, f_fake, fd="fid", kd="kid", key=3, num_subsets=5,
                                       subset_size=1000),
                   "inception": network.name, "inception_sha256": network.sha256,
                   "inception_source_sha256": network.source_sha256}
    with pytest.raises(ValueError, match="key must be"):
        inception_metrics_from_features(f_real, f_fake, network)
    with pytest.raises(ValueError, match=r"\(N, 2048\)"):
        inception_metrics_from_features(f_real[:, :10], f_fake, network, kid=False)


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 8, 8, 3), np.uint8), "must be floats in"),
    (np.zeros((2, 8, 8, 2), np.float32), r"C 1 or 3, got shape \(2, 8, 8, 2\)"),
    (np.zeros((8, 8, 3), np.float32), "shape"),
    (np.full((2, 8, 8, 1), 2.0, np.float32), r"must be in \[0, 1\]"),
    (np.full((2, 8, 8, 1), np.nan, np.float32), "finite"),
])
def test_images_are_checked(network, images, match):
    with pytest.raises(ValueError, match=match):
        network.features(images)
