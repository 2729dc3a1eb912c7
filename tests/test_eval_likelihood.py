"""The one evaluation loop (genjax.eval.likelihood): padding, masking, one fetch, devices."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data import ArrayDataset
from genjax.eval.likelihood import batch_outputs, bits_per_dim, dataset_means


def _dataset(n: int) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)
    return ArrayDataset("toy", "test", images, (np.arange(n) % 3).astype(np.int32), 8, 3)


def _per_example(params, key, batch, i, rows):
    x = batch["image"].astype(jnp.float32).reshape(batch["image"].shape[0], -1)
    return {"mean_pixel": x.mean(axis=1) * params["scale"],
            "label": batch["label"].astype(jnp.float32),
            "row": rows.astype(jnp.float32),
            "batch": jnp.broadcast_to(i, rows.shape).astype(jnp.float32)}


@pytest.mark.parametrize("n, batch_size", [(10, 4), (12, 4), (3, 8), (1, 1)])
def test_means_equal_numpy_with_a_padded_last_batch(n, batch_size):
    data = _dataset(n)
    means, count = dataset_means(_per_example, {"scale": jnp.float32(2.0)}, data,
                                 batch_size=batch_size, progress=False)
    assert count == n
    pixels = data.images.reshape(n, -1).astype(np.float64)
    assert means["mean_pixel"] == pytest.approx(2.0 * pixels.mean(), rel=1e-6)
    assert means["label"] == pytest.approx(data.labels.mean(), rel=1e-7)
    assert means["row"] == pytest.approx((n - 1) / 2, rel=1e-7)  # rows are dataset positions
    size = min(batch_size, n)
    assert means["batch"] == pytest.approx(np.mean(np.arange(n) // size), rel=1e-7)


def test_padding_rows_are_masked_even_when_they_are_nan():
    """Padding rows hold zeros; a per-example value that is NaN (or inf) there is dropped."""
    def per_example(params, key, batch, i, rows):
        x = batch["image"].astype(jnp.float32).sum(axis=(1, 2, 3))
        return {"log_of_sum": jnp.log(x) - jnp.log(x)}  # NaN at an all-zero (padding) image

    data = _dataset(5)  # batches of 4: the second holds one example and three padding rows
    means, _ = dataset_means(per_example, {}, data, batch_size=4, progress=False)
    assert means == {"log_of_sum": 0.0}


def test_the_sums_are_fetched_once(monkeypatch):
    calls = []
    real = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda tree: calls.append(1) or real(tree))
    dataset_means(_per_example, {"scale": jnp.float32(1.0)}, _dataset(50), batch_size=8,
                  progress=False)
    assert len(calls) == 1  # 7 batches, one device-to-host transfer


def test_one_compilation_per_function_static_value_and_devices():
    """Evaluating again (every eval interval of a run) reuses the compiled program; the key is
    an argument, not a constant baked into it; a new ``static`` value compiles anew."""
    traces = []

    def per_example(params, key, batch, i, rows):
        traces.append(1)
        noise = jax.random.uniform(jax.random.fold_in(key, i), rows.shape)
        return {"noise": noise * params["scale"]}

    params, data = {"scale": jnp.float32(1.0)}, _dataset(20)

    def run(key, static=None):
        return dataset_means(per_example, params, data, batch_size=8, key=key, static=static,
                             progress=False)[0]

    first = run(jax.random.PRNGKey(1))
    assert run(jax.random.PRNGKey(1)) == first
    other = run(jax.random.PRNGKey(2))
    assert other != first and len(traces) == 1
    assert run(jax.random.PRNGKey(1), static=("another", "config")) == first
    assert len(traces) == 2


def _row_outputs(params, batch):
    x = batch["image"].astype(jnp.float32).reshape(batch["image"].shape[0], -1)
    return {"scaled": x * params["scale"], "label_plus_one": batch["label"] + 1}


@pytest.mark.parametrize("n, batch_size", [(10, 4), (12, 4), (3, 8), (1, 1)])
def test_batch_outputs_are_the_rows_outputs_with_a_padded_last_batch(n, batch_size):
    data = _dataset(n)
    out = batch_outputs(_row_outputs, {"scale": jnp.float32(2.0)},
                        {"image": data.images, "label": data.labels}, batch_size=batch_size)
    assert isinstance(out["scaled"], np.ndarray) and out["scaled"].shape == (n, 16)
    np.testing.assert_array_equal(out["scaled"], 2.0 * data.images.reshape(n, -1))
    np.testing.assert_array_equal(out["label_plus_one"], data.labels + 1)


def test_batch_outputs_are_fetched_once(monkeypatch):
    calls = []
    real = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda tree: calls.append(1) or real(tree))
    data = _dataset(50)
    batch_outputs(_row_outputs, {"scale": jnp.float32(1.0)},
                  {"image": data.images, "label": data.labels}, batch_size=8)
    assert len(calls) == 1  # 7 batches, one device-to-host transfer


@pytest.mark.parametrize("inputs, batch_size, message", [
    ({"image": np.zeros((3, 2)), "label": np.zeros(4)}, 2, "same number of rows"),
    ({"image": np.zeros((0, 2))}, 2, "non-empty"),
    ({}, 2, "non-empty"),
    ({"image": np.zeros((3, 2))}, 0, "batch_size must be >= 1"),
])
def test_batch_outputs_refuses_bad_inputs(inputs, batch_size, message):
    with pytest.raises(ValueError, match=message):
        batch_outputs(_row_outputs, {"scale": 1.0}, inputs, batch_size=batch_size)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    # A dequantized density of 8-bit data: + D ln 256 nats before the conversion.
    assert bits_per_dim(0.0, 3072, num_bits=8) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)


_FOUR_DEVICES = r"""
import json, jax, jax.numpy as jnp, numpy as np
from genjax.data import ArrayDataset
from genjax.eval.likelihood import batch_outputs, dataset_means, evaluation_mesh
from genjax.train import parallel
assert jax.device_count() == 4
rng = np.random.default_rng(0)
data = ArrayDataset("toy", "test", rng.integers(0, 256, (70, 4, 4, 1), dtype=np.uint8),
                    None, 8, None)

def per_example(params, key, batch, i, rows):
    key = jax.random.fold_in(key, i)
    x = batch["image"].astype(jnp.float32).reshape(batch["image"].shape[0], -1) @ params["w"]
    noise = jax.random.normal(key, x.shape)  # per batch key, rows first: padding-stable
    return {"score": jnp.sum(jnp.tanh(x / 100 + noise), axis=1)}

w = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
out = {}
for n in (1, 4):
    params = jax.device_put({"w": w}, parallel.replicated(parallel.data_mesh(jax.devices()[:n])))
    out[n] = dataset_means(per_example, params, data, batch_size=40, progress=False)[0]["score"]
    out[f"mesh{n}"] = evaluation_mesh(params, 40).devices.size
# A batch that 4 devices do not divide: the largest count that does (2 of 4).
params = jax.device_put({"w": w}, parallel.replicated(parallel.data_mesh()))
out["mesh_for_30"] = evaluation_mesh(params, 30).devices.size
out["30"] = dataset_means(per_example, params, data, batch_size=30, progress=False)[0]["score"]
# Per-example outputs (batch_outputs): the same rows on 1 and 4 devices.
rows = {}
for n in (1, 4):
    params = jax.device_put({"w": w}, parallel.replicated(parallel.data_mesh(jax.devices()[:n])))
    rows[n] = batch_outputs(lambda p, b: jnp.tanh(b["x"] @ p["w"]), params,
                            {"x": data.images.reshape(70, -1).astype(np.float32) / 255},
                            batch_size=40)
out["rows_shape"] = list(rows[4].shape)
out["rows_differ"] = float(np.max(np.abs(rows[4] - rows[1])))
print(json.dumps(out))
"""


def test_four_devices_give_one_devices_means():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", _FOUR_DEVICES], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["mesh1"], out["mesh4"], out["mesh_for_30"]) == (1, 4, 3)
    assert out["4"] == pytest.approx(out["1"], rel=1e-6)
    assert out["30"] != out["1"]  # other batches, other keys: a different (valid) estimate
    assert out["rows_shape"] == [70, 5] and out["rows_differ"] < 1e-6
