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
from genjax.models.flow_layers import AffineCoupling, MaskedMLPCoupling
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


@pytest.mark.slow  # evaluates twice at two batch sizes: ~20 s
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
    # realnvp_digits trains in the `trained` fixture above; every other config with -m slow
    [pytest.param(n, marks=[] if n.endswith("_toy2d") else pytest.mark.slow)
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


# ----------------------------------------------------------------------------- precision

TINY_TOY = ["model.hidden=(16, 16)", "model.num_couplings=4", "train.batch_size=64",
            "train.progress=false"]


def _method_pair(arch):
    """The same experiment in float32 and bfloat16, and a batch of its data."""
    if arch == "image":
        name, overrides = "realnvp_digits", TINY_IMAGE + ["model.norm=actnorm"]
        spec = DataSpec(shape=(8, 8, 1), num_bits=8, num_classes=None, name="toy")
        data = _images(16, seed=1)
    else:
        name, overrides = "realnvp_toy2d", TINY_TOY
        spec = DataSpec(shape=(2,), num_bits=0, num_classes=None, name="two_moons")
        data = 2.0 * jax.random.normal(jax.random.key(1), (16, 2))
    return [RealNVPMethod(load_config(name, overrides + [f"train.compute_dtype={dt}"]), spec)
            for dt in ("float32", "bfloat16")] + [data]


def _perturbed_variables(method, data):
    """float32 variables away from the identity init (there s = t = 0 in any dtype)."""
    variables = method.init(jax.random.key(0), {"image": data})["flow"].variables
    rng = np.random.default_rng(100)
    params = jax.tree.map(lambda p: p + jnp.asarray(0.3 * rng.normal(size=p.shape), p.dtype),
                          variables["params"])
    return {**variables, "params": params}


def _coupling_log_dets(method, variables, x):
    """(num_couplings, B) log-dets of each coupling (float32 run), for the tolerance below."""
    y, _ = method._to_flow_space(x)
    _, inter = method.module.apply(
        variables, y, method="forward", mutable=["intermediates"],
        capture_intermediates=lambda m, method_name: (
            method_name == "__call__" and isinstance(m, AffineCoupling | MaskedMLPCoupling)),
    )
    outputs = [calls[0] for calls in jax.tree.leaves(
        inter, is_leaf=lambda a: isinstance(a, tuple) and len(a) == 1)]
    cfg = method.config.model
    assert len(outputs) == (6 * (cfg.num_scales - 1) + 4 if method.is_image else cfg.num_couplings)
    return np.stack([np.asarray(log_det) for _, log_det in outputs])


@pytest.mark.parametrize("arch", ["image", "toy2d"])
def test_bfloat16_loss_is_the_float32_loss_with_the_same_float32_params(arch):
    m32, m16, data = _method_pair(arch)
    variables = _perturbed_variables(m32, data)
    x = m32.prepare(jax.random.key(2), data)

    def loss_and_grads(method):
        def loss_fn(params):  # the objective of train_step
            log_p, _ = method.log_likelihood({**variables, "params": params}, x, train=True)
            return jnp.mean(method.nll(log_p)), log_p
        return jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(variables["params"])

    (loss32, log_p32), _ = loss_and_grads(m32)
    (loss16, log_p16), grads16 = loss_and_grads(m16)
    assert loss16.dtype == log_p16.dtype == jnp.float32
    assert jax.tree.structure(grads16) == jax.tree.structure(variables["params"])
    for g in jax.tree.leaves(grads16):
        assert g.dtype == jnp.float32 and np.all(np.isfinite(g))

    # Tolerance, from where bfloat16 enters. Only the s/t networks run in it: x, the logit
    # transform, z, every log-det, the prior and D log 256 are float32 (rounding ~1e-7
    # relative, negligible here). bfloat16 keeps 8 significant bits, so one rounding moves a
    # value by at most u = 2^-8 of itself. On its way to s or t a value is rounded R times:
    # the network input, then kernel, sum and bias of each layer (4 convolutions for one
    # residual block, 3 dense layers for two hidden layers), plus the skip sum of the block;
    # to first order each s and t is then off by at most R u of its size (R u = 5.5% for the
    # image flow, 3.9% for the toy flow). s and t reach -log p through the couplings' log-dets
    # (sum of s; ActNorm's log-det is a float32 parameter) and through z in 1/2 sum z^2, whose
    # relative change is then at most twice z's. So, per example,
    #     |log p_bf16 - log p_f32| <~ R u (sum over couplings |log-det| + sum z^2)  nats,
    # a first-order worst case (every rounding error aligned); the loss, a batch mean in
    # bits/dim (nats / (D ln 2)) or nats/point, is within the mean of it.
    cfg = m32.config.model
    r = (1 + 3 * (2 + 2 * cfg.num_blocks) + cfg.num_blocks if arch == "image"
         else 1 + 3 * (len(cfg.hidden) + 1))
    y, _ = m32._to_flow_space(x)
    z, _ = m32.module.apply(variables, y, method="forward")
    sizes = (np.abs(_coupling_log_dets(m32, variables, x)).sum(0)
             + np.sum(np.asarray(z, np.float64) ** 2, axis=tuple(range(1, z.ndim))))
    per_unit = m32.data.num_dims * math.log(2) if arch == "image" else 1.0
    tolerance = r * 2.0**-8 * np.mean(sizes) / per_unit
    assert abs(float(loss16) - float(loss32)) <= tolerance
    assert np.any(np.asarray(log_p16) != np.asarray(log_p32))  # bfloat16 did run


def test_bfloat16_encode_decode_sample_and_evaluate_are_float32():
    """Encoding, decoding, sampling and evaluation use the bfloat16 s/t networks too; the
    round trip holds at the float32 test's tolerance (see the model tests: the inverse gets
    the forward's s and t bit for bit, the rest is float32)."""
    m32, m16, data = _method_pair("image")
    variables = _perturbed_variables(m32, data)
    state = TrainState.create(jax.random.key(3), {"flow": m32.init(
        jax.random.key(0), {"image": data})["flow"].replace(params=variables["params"])})
    x = m16.prepare(jax.random.key(2), _images(6, seed=2))
    z = m16.encode(state, x)
    assert z.dtype == jnp.float32
    assert np.abs(np.asarray(z) - np.asarray(m32.encode(state, x))).max() > 1e-4
    back = m16.decode(state, z)
    assert back.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(back), np.asarray(x), atol=2e-4)
    path = m16.interpolate(state, x[0], x[1], num_steps=3)
    np.testing.assert_allclose(path[0], np.asarray(x[0]), atol=2e-4)
    samples = m16.sample(state, jax.random.key(4), 3)
    assert samples.dtype == np.float32 and np.all(np.isfinite(samples))
    nll = m16._eval_batch(variables, jax.random.key(5), data, jnp.arange(16, dtype=jnp.uint32))
    assert nll.dtype == jnp.float32 and np.all(np.isfinite(nll))


@pytest.mark.parametrize(
    "name", [pytest.param("realnvp_digits", marks=pytest.mark.slow), "realnvp_toy2d"])
def test_short_bfloat16_training_run_lowers_the_loss_and_keeps_float32_state(name):
    """A few bfloat16 steps through the engine: finite, falling loss; params, optimizer state
    and batch-norm running averages stay float32."""
    overrides = ["train.compute_dtype=bfloat16", "train.progress=false"]
    if name == "realnvp_digits":  # default batch norm; a narrow network
        overrides += ["model.features=8", "model.num_blocks=1", "train.batch_size=64"]
    else:
        overrides += ["model.hidden=(32, 32)", "model.num_couplings=4", "train.batch_size=256"]
    trainer = Trainer(load_config(name, overrides), None)
    losses = [trainer.step()["loss"] for _ in range(30)]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    model = trainer.state.models["flow"]
    leaves = jax.tree.leaves((model.params, model.opt_state, model.collections))
    assert {a.dtype for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)} == {
        jnp.dtype(jnp.float32)}
    if name == "realnvp_digits":
        assert model.collections["batch_stats"]
