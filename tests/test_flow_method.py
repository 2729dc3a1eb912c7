"""The Real NVP method: exact likelihood through the method, encoding, sampling, configs, runs."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from genjax.cli import main as cli_main
from genjax.experiments import available_configs, load_config
from genjax.losses import bits_per_dim
from genjax.methods.flow import RealNVPMethod
from genjax.train.loop import Trainer, train_and_evaluate
from genjax.train.method import DataSpec
from genjax.train.state import TrainState

TINY_IMAGE = [
    "model.features=8",
    "model.num_blocks=1",
    "train.batch_size=16",
    "train.progress=false",
    "eval.batch_size=100",
    "eval.num_samples=4",
]


def _image_method(overrides=(), shape=(8, 8, 1)):
    config = load_config("realnvp_digits", TINY_IMAGE + list(overrides))
    return RealNVPMethod(config, DataSpec(shape=shape, num_bits=8, num_classes=None, name="toy"))


def _images(n, shape=(8, 8, 1), seed=0):
    return jax.random.randint(jax.random.key(seed), (n, *shape), 0, 256).astype(jnp.uint8)


def test_identity_flow_gives_the_standard_normal_log_likelihood_through_the_method():
    """At init every s/t network's last layer is zero, so with norm='none' the flow is the
    identity and log p(x) = log N(logit(x); 0, I) + the logit Jacobian, exactly."""
    method = _image_method(["model.norm=none"])
    state = method.init(jax.random.key(0), {"image": _images(4)})
    variables = state["flow"].variables
    x = method.prepare(jax.random.key(1), _images(4, seed=1))
    log_p = np.asarray(method.log_likelihood(variables, x), np.float64)

    alpha = 0.05
    xd = np.asarray(x, np.float64).reshape(4, -1)
    p = alpha + (1 - 2 * alpha) * xd
    y = np.log(p) - np.log1p(-p)
    log_det = np.sum(np.log(1 - 2 * alpha) - np.log(p) - np.log1p(-p), axis=1)
    expected = stats.norm.logpdf(y).sum(axis=1) + log_det
    np.testing.assert_allclose(log_p, expected, rtol=1e-5)
    # And the reported number follows the Real NVP convention: (-log p + D log 256) / (D ln 2).
    d = 64
    np.testing.assert_allclose(
        np.asarray(method.nll(jnp.asarray(log_p, jnp.float32))),
        (-expected + d * math.log(256)) / (d * math.log(2)), rtol=1e-5,
    )


def test_identity_toy_flow_gives_the_standard_normal_density_in_nats():
    config = load_config("realnvp_toy2d", ["model.norm=none", "train.progress=false"])
    method = RealNVPMethod(config, DataSpec(shape=(2,), num_bits=0, num_classes=None,
                                            name="two_moons"))
    pts = jax.random.normal(jax.random.key(0), (10, 2))
    state = method.init(jax.random.key(1), {"image": pts})
    log_p = method.log_likelihood(state["flow"].variables, pts)
    np.testing.assert_allclose(np.asarray(log_p), stats.norm.logpdf(np.asarray(pts)).sum(1),
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(method.nll(log_p)), -np.asarray(log_p))


def test_uniform_model_scores_exactly_8_bits_per_dim():
    """A density of 1 on [0, 1)^D (log p = 0) is the uniform distribution over the 256^D bins."""
    method = _image_method()
    np.testing.assert_allclose(np.asarray(method.nll(jnp.zeros(3))), 8.0, rtol=1e-6)
    assert float(bits_per_dim(64 * math.log(256), 64)) == pytest.approx(8.0)


def _trained_state(method, steps):
    """A TrainState after ``steps`` real updates (so batch-norm running averages move)."""
    models = method.init(jax.random.key(0), {"image": _images(16)})
    state = TrainState.create(jax.random.key(3), models)
    step = jax.jit(method.train_step)
    for i in range(steps):
        state, metrics = step(state, {"image": _images(16, seed=10 + i)})
        assert np.isfinite(float(metrics["loss"]))
    return state


@pytest.fixture(scope="module")
def trained():
    """A batch-norm image flow after 3 updates (shared: compiling the flow dominates)."""
    method = _image_method()
    return method, _trained_state(method, steps=3)


def test_encode_decode_round_trip_and_interpolation_endpoints(trained):
    method, state = trained
    x = method.prepare(jax.random.key(2), _images(6, seed=2))
    z = method.encode(state, x)
    assert z.shape == x.shape
    np.testing.assert_allclose(np.asarray(method.decode(state, z)), np.asarray(x), atol=2e-4)
    path = method.interpolate(state, x[0], x[1], num_steps=5)
    assert path.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(path[0], np.asarray(x[0]), atol=2e-4)
    np.testing.assert_allclose(path[-1], np.asarray(x[1]), atol=2e-4)


def test_evaluation_uses_running_averages_and_does_not_depend_on_the_batch_size(trained):
    method, state = trained
    variables = state.models["flow"].variables
    flat = jax.tree_util.tree_flatten_with_path(variables["batch_stats"])[0]
    means = [np.asarray(v) for path, v in flat if "mean" in jax.tree_util.keystr(path)]
    assert means and all(np.abs(m).max() > 0 for m in means)  # moved away from their init 0
    data = _images(12, seed=5)
    index = jnp.arange(12, dtype=jnp.uint32)
    key = jax.random.key(7)
    whole = np.asarray(method._eval_batch(variables, key, data, index))
    halves = np.concatenate([
        np.asarray(method._eval_batch(variables, key, data[:5], index[:5])),
        np.asarray(method._eval_batch(variables, key, data[5:], index[5:])),
    ])
    np.testing.assert_allclose(whole, halves, rtol=1e-5)


def test_sampling_temperature(trained):
    method, state = trained
    cold = method.sample(state, jax.random.key(0), 3, temperature=0.0)
    assert cold.shape == (3, 8, 8, 1)
    np.testing.assert_allclose(cold[0], cold[1], atol=1e-6)  # every T=0 sample is f^{-1}(0)
    warm = method.sample(state, jax.random.key(0), 3, temperature=1.0)
    assert warm.min() >= 0.0 and warm.max() <= 1.0 and np.std(warm[0] - warm[1]) > 1e-3
    with pytest.raises(ValueError, match="temperature"):
        method.sample(state, jax.random.key(0), 3, temperature=-1.0)
    with pytest.raises(ValueError, match="num"):
        method.sample(state, jax.random.key(0), 0)
    with pytest.raises(ValueError, match="shape"):
        method.encode(state, np.zeros((2, 4, 4, 1), np.float32))


def test_realnvp_toy2d_learns_two_moons_and_draws_its_density(tmp_path):
    config = load_config(
        "realnvp_toy2d",
        ["train.num_steps=400", "train.eval_every=400", "train.checkpoint_every=400",
         "train.log_every=100", "train.progress=false", "model.hidden=(64, 64)",
         "model.num_couplings=6", "eval.num_samples=500"],
    )
    summary = train_and_evaluate(config, tmp_path)
    ev = summary["eval"]
    # A standard normal fitted to two_moons (mean ~(0.5, 0.25), var ~(0.75, 0.25)) would score
    # about 2.3 nats/point; a flow that has started to bend its density to the moons is below 1.5.
    assert ev["nll_nats"] < 1.5 and ev["num_examples"] == 10000
    names = {p.name for p in (tmp_path / "pictures").iterdir()}
    assert {"density_00000400.png", "samples_00000400.png"} <= names
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    # The command line draws points (a scatter plot), at T = 0 all at f^{-1}(0).
    npy = tmp_path / "s.npy"
    assert cli_main(["sample", "--workdir", str(tmp_path), "--num", "7", "--npy", str(npy),
                     "--out", str(tmp_path / "s.png"), "--set", "model.temperature=0"]) == 0
    points = np.load(npy)
    assert points.shape == (7, 2) and (tmp_path / "s.png").exists()
    np.testing.assert_allclose(points, np.broadcast_to(points[0], points.shape))


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[] if n.endswith(("_digits", "_toy2d")) else pytest.mark.slow)
     for n in sorted(n for n in available_configs() if n.startswith("realnvp_"))],
)
def test_every_realnvp_config_runs_a_few_steps(name):
    """Each config's own architecture (narrowed), on embedded data: digits or two_moons."""
    config = load_config(name)
    overrides = ["train.batch_size=16", "train.progress=false", "eval.batch_size=200"]
    if config.model.architecture == "image":
        overrides += ["data.name=digits", "model.features=8", "model.num_blocks=1"]
    trainer = Trainer(load_config(name, overrides), None)
    for _ in range(2):
        metrics = trainer.step()
    assert np.isfinite(metrics["loss"]) and trainer.num_traces == 1
    result = trainer.method.evaluate(trainer.state, trainer.eval_data, trainer.eval_key())
    key = "nll_bits_per_dim" if config.model.architecture == "image" else "nll_nats"
    assert np.isfinite(result[key])


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.architecture=maf"], "model.architecture"),
        (["model.norm=layernorm"], "model.norm"),
        (["model.logit_alpha=0.5"], "logit_alpha"),
        (["model.num_scales=5"], "divisible"),
        (["data.preprocess=unit"], "dequantize"),
        (["model.architecture=toy2d"], "toy2d"),
    ],
)
def test_bad_config_is_a_clear_error(overrides, match):
    with pytest.raises(ValueError, match=match):
        Trainer(load_config("realnvp_digits", TINY_IMAGE + overrides), None)
