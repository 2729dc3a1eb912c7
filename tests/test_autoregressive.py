"""The autoregressive method and its samplers, against exact enumerations and numpy.

Tiny images make the model's distribution enumerable: the probabilities of all 2^D binary (or
K^D) images must sum to one, and the sample frequencies of each sampler must match them
(chi-square test at a fixed seed, expected counts >= 5 after pooling the rare cells). The
likelihoods are also recomputed sub-pixel by sub-pixel (the network run on an image whose later
sub-pixels are replaced by noise, then numpy). Parameters are drawn with numpy over
``jax.eval_shape`` shapes (compiling Flax initializers costs more than these models).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from genjax.experiments import available_configs, load_config
from genjax.losses import discretized_logistic_mixture_nll
from genjax.methods.autoregressive import AutoregressiveConfig, AutoregressiveMethod
from genjax.models.sampling import (
    draw_logistic_mixture,
    multiscale_num_evaluations,
    multiscale_sample,
    naive_sample,
)
from genjax.train.config import Config, ConfigValueError, DataConfig, TrainConfig
from genjax.train.loop import Trainer
from genjax.train.method import DataSpec
from genjax.train.state import ModelState, TrainState

SMALL = dict(
    features=6,
    num_layers=1,
    output_features=12,
    base_features=3,
    num_blocks=1,
    embed_features=4,
    num_mixtures=2,
    weight_norm=False,
    num_scales=1,
)


def make(
    architecture,
    likelihood,
    shape,
    *,
    num_bits=1,
    num_classes=None,
    scale=2.0,
    seed=0,
    compute_dtype="float32",
    **model,
):
    """A method on (H, W, C) data and a TrainState holding random N(0, scale^2 / fan_in) weights.

    The weights depend on ``seed`` only, not on ``compute_dtype`` (``train.compute_dtype``).
    """
    preprocess = {"bernoulli": "binary" if num_bits == 1 else "binarize_dynamic"}.get(
        likelihood, "integer"
    )
    cfg = AutoregressiveConfig(
        architecture=architecture,
        likelihood=likelihood,
        conditional=num_classes is not None,
        **{**SMALL, **model},
    )
    config = Config(
        method="autoregressive",
        model=cfg,
        data=DataConfig(preprocess=preprocess),
        train=TrainConfig(num_steps=10, compute_dtype=compute_dtype),
    )
    method = AutoregressiveMethod(config, DataSpec(shape, num_bits, num_classes, "toy"))
    x = jnp.zeros((1, *shape))
    args = (
        (x,)
        if architecture in ("pixelcnn", "pixelrnn_row", "pixelrnn_diagonal")
        else (x, None if num_classes is None else jnp.zeros((1,), jnp.int32))
    )
    shapes = jax.eval_shape(method.module.init, jax.random.key(0), *args)["params"]
    rng = np.random.default_rng(seed)

    def draw(s):
        std = scale / math.sqrt(math.prod(s.shape[:-1])) if len(s.shape) > 1 else 0.3
        return jnp.asarray(rng.normal(size=s.shape) * std, jnp.float32)

    params = jax.tree.map(draw, shapes)
    state = TrainState.create(jax.random.key(0), {"model": ModelState(params, (), {})})
    return method, state


def all_images(shape, num_values):
    """Every image of ``shape`` with values in 0..num_values-1, uint8 (num_values^D, H, W, C)."""
    d = math.prod(shape)
    grid = np.array(list(itertools.product(range(num_values), repeat=d)), np.uint8)
    return grid.reshape(-1, *shape)


def probabilities(method, state, images, labels=None):
    x, target = method.prepare(None, jnp.asarray(images), train=False)
    nll = method.nll(state.models["model"].params, x, target, labels)
    return np.exp(-np.asarray(nll, np.float64))


def assert_frequencies_match(samples, images, probs):
    """Chi-square test of the sample's image counts against ``probs`` (rare cells pooled)."""
    d = images[0].size
    codes = {im.tobytes(): k for k, im in enumerate(images.reshape(len(images), d))}
    idx = [codes[s.astype(np.uint8).tobytes()] for s in samples.reshape(len(samples), d)]
    counts = np.bincount(idx, minlength=len(images))
    expected = probs * len(samples)
    rare = expected < 5
    obs = np.append(counts[~rare], counts[rare].sum())
    exp = np.append(expected[~rare], expected[rare].sum())
    keep = exp > 0
    assert keep.sum() >= 8, "the distribution should not be degenerate"
    p = stats.chisquare(obs[keep], exp[keep] * obs.sum() / exp[keep].sum()).pvalue
    assert p > 1e-3, (p, counts, expected)


# ---------------------------------------------------------------- likelihoods


@pytest.mark.parametrize(
    "architecture",
    ["pixelcnn", "gated_pixelcnn", "pixelrnn_row", "pixelrnn_diagonal", "multiscale"],
)
def test_probabilities_of_all_images_sum_to_one(architecture):
    """2x2 RGB images with binary channels (K = 2, 4096 images): a normalised distribution."""
    method, state = make(architecture, "categorical", (2, 2, 3), num_bits=1, features=6)
    images = all_images((2, 2, 3), 2)
    probs = probabilities(method, state, images)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-4)
    assert probs.max() > 100 * probs.min()  # far from uniform: the check is not vacuous


def test_conditional_probabilities_sum_to_one_per_label():
    method, state = make("gated_pixelcnn", "bernoulli", (2, 3, 1), num_classes=3)
    images = all_images((2, 3, 1), 2)
    per_label = [probabilities(method, state, images, jnp.full(len(images), k)) for k in range(3)]
    for probs in per_label:
        np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
    assert np.abs(per_label[0] - per_label[1]).max() > 1e-3  # the label matters


def _sub_pixel_log_probs(method, state, image, logits_at):
    """log p(v_t | v_<t) for each sub-pixel t from a pass on ``image`` with v_>=t replaced by noise."""
    h, w, c = image.shape
    rng = np.random.default_rng(5)
    corrupted = []
    for t in range(h * w * c):
        im = image.reshape(-1).copy()
        im[t:] = rng.integers(0, 256, size=im.size - t)
        corrupted.append(im.reshape(h, w, c))
    x, _ = method.prepare(None, jnp.asarray(np.stack(corrupted)), train=False)
    out = np.asarray(method.module.apply({"params": state.models["model"].params}, x), np.float64)
    return [logits_at(out[t], *np.unravel_index(t, (h, w, c))) for t in range(h * w * c)]


def test_categorical_nll_equals_sum_of_sequential_softmax_terms():
    method, state = make("pixelrnn_diagonal", "categorical", (3, 3, 3), num_bits=8)
    image = np.random.default_rng(0).integers(0, 256, (3, 3, 3)).astype(np.uint8)

    def log_prob(out, i, j, c):
        return special.log_softmax(out[i, j, c])[image[i, j, c]]

    expected = -sum(_sub_pixel_log_probs(method, state, image, log_prob))
    nll = -np.log(probabilities(method, state, image[None]))[0]
    np.testing.assert_allclose(nll, expected, rtol=1e-5)


def _logistic_bin_probs(p, v, channels, m):
    """Numpy, float64: P(v_pixel) under one pixel's mixture parameters (Salimans et al. Eq. 2)."""
    logit_pi, rest = p[:m], p[m:].reshape(channels, -1, m)
    v = np.asarray(v, np.float64)  # uint8 arithmetic would wrap around in 2 * v
    x = 2 * v / 255 - 1
    mean = rest[:, 0].copy()
    if channels == 3:
        coef = np.tanh(rest[:, 2])
        mean[1] += coef[0] * x[0]
        mean[2] += coef[1] * x[0] + coef[2] * x[1]
    inv_s = np.exp(-np.maximum(rest[:, 1], -7.0))
    upper = np.where(v[:, None] == 255, 1.0, special.expit(inv_s * (x[:, None] + 1 / 255 - mean)))
    lower = np.where(v[:, None] == 0, 0.0, special.expit(inv_s * (x[:, None] - 1 / 255 - mean)))
    return np.sum(special.softmax(logit_pi) * np.prod(upper - lower, axis=0))


@pytest.mark.parametrize("channels", [1, 3])
def test_logistic_mixture_nll_equals_sum_of_per_pixel_terms(channels):
    method, state = make(
        "pixelcnnpp", "logistic_mixture", (4, 4, channels), num_bits=8, features=4, scale=1.0
    )
    image = np.random.default_rng(1).integers(0, 256, (4, 4, channels)).astype(np.uint8)
    m = method.config.model.num_mixtures
    terms = _sub_pixel_log_probs(
        method,
        state,
        image,
        lambda out, i, j, c: (
            np.log(_logistic_bin_probs(out[i, j], image[i, j], channels, m)) if c == 0 else 0.0
        ),  # one term per pixel: its channels are coupled in the likelihood
    )
    nll = -np.log(probabilities(method, state, image[None]))[0]
    np.testing.assert_allclose(nll, -sum(terms), rtol=1e-5)


# ---------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler", ["naive", "cached"])
def test_pixelcnn_samples_follow_the_model(sampler):
    method, state = make("pixelcnn", "bernoulli", (2, 2, 1), features=4, scale=3.0)
    images = all_images((2, 2, 1), 2)
    samples = method.sample_values(state, jax.random.key(1), 20000, sampler=sampler)
    assert samples.dtype == np.int32 and samples.shape == (20000, 2, 2, 1)
    assert_frequencies_match(samples, images, probabilities(method, state, images))


def test_conditional_rgb_samples_follow_the_model():
    method, state = make("gated_pixelcnn", "categorical", (1, 2, 3), num_classes=2, scale=3.0)
    images = all_images((1, 2, 3), 2)
    labels = jnp.ones(30000, jnp.int32)
    samples = method.sample_values(state, jax.random.key(2), 30000, labels=labels)
    assert_frequencies_match(samples, images, probabilities(method, state, images, labels[:64]))


def test_multiscale_samples_follow_the_model_in_few_sequential_steps():
    method, state = make("multiscale", "bernoulli", (2, 2, 1), scale=3.0, features=4)
    images = all_images((2, 2, 1), 2)
    assert method.sampler_name() == "multiscale"
    samples = method.sample_values(state, jax.random.key(3), 20000)
    assert_frequencies_match(samples, images, probabilities(method, state, images))


def test_multiscale_sampler_counts_its_network_evaluations():
    calls = []

    def counted(kind, logits_fn):
        def fn(*args):
            out = logits_fn(*args)
            jax.debug.callback(lambda: calls.append(kind))
            return out

        return fn

    def base_fn(x):  # (B, 2, 2, 1) -> logits favouring 1 after a 1 (any causal function will do)
        return 2.0 * jnp.cumsum(x, axis=2) - 1.0

    def group_fn(index, known, target):
        return jnp.sum(known, axis=-1, keepdims=True) - 0.5 * index

    shape = (3, 8, 8, 1)
    out = jax.jit(
        lambda key: multiscale_sample(
            counted("base", base_fn),
            counted("group", group_fn),
            key,
            shape,
            num_scales=2,
            likelihood="bernoulli",
        )
    )(jax.random.key(0))
    assert out.shape == shape and set(np.unique(out)) <= {0, 1}
    assert calls.count("base") == 4 and calls.count("group") == 6  # 2x2 base, 3 groups x 2 scales
    assert len(calls) == multiscale_num_evaluations(8, 8, 1, 2) == 10  # naive: 64 passes


def test_cached_sample_equals_naive_sample_for_the_same_key():
    method, state = make(
        "pixelcnn",
        "categorical",
        (5, 4, 3),
        num_bits=2,
        features=6,
        num_layers=2,
        kernel_size=3,
        first_kernel_size=5,
    )
    assert method.sampler_name() == "cached"
    key = jax.random.key(7)
    naive = method.sample_values(state, key, 4, sampler="naive")
    cached = method.sample_values(state, key, 4, sampler="cached")
    np.testing.assert_array_equal(naive, cached)
    assert len(np.unique(naive)) == 4  # every value occurs: the comparison is not vacuous
    np.testing.assert_array_equal(naive, method.sample_values(state, key, 4, sampler="naive"))
    assert not np.array_equal(naive, method.sample_values(state, jax.random.key(8), 4))


def test_logistic_mixture_draws_follow_the_discretized_likelihood():
    """One RGB pixel, 2 components: sample counts on an 8x8x8 grid of cells vs exact masses."""
    rng = np.random.default_rng(0)
    m = 2
    params = rng.normal(size=10 * m).astype(np.float32)
    params[m:].reshape(3, 3, m)[:, 0] *= 0.5  # means within [-1, 1]
    params[m:].reshape(3, 3, m)[:, 1] = rng.uniform(-3, -1.5, (3, m))  # scales of 3-30 bins
    p = jnp.asarray(params)

    @jax.jit
    def cell_masses(p):  # exact P(v) for all 256^3 values through the loss, summed into cells
        def per_r(r):
            g, b = jnp.meshgrid(jnp.arange(256), jnp.arange(256), indexing="ij")
            v = jnp.stack([jnp.full_like(g, r), g, b], -1).reshape(-1, 1, 1, 3)
            x = v * (2 / 255) - 1
            prob = jnp.exp(
                -discretized_logistic_mixture_nll(
                    jnp.broadcast_to(p, (v.shape[0], 1, 1, p.size)), x
                )
            )
            return prob.reshape(8, 32, 8, 32).sum((1, 3))

        return jax.lax.map(per_r, jnp.arange(256)).reshape(8, 32, 8, 8).sum(1)

    masses = np.asarray(cell_masses(p), np.float64)
    np.testing.assert_allclose(masses.sum(), 1.0, rtol=1e-4)
    n = 100000
    draws = jax.jit(lambda key: draw_logistic_mixture(key, jnp.broadcast_to(p, (n, p.size)), 3))(
        jax.random.key(0)
    )
    draws = np.asarray(draws)
    assert draws.min() >= 0 and draws.max() <= 255
    counts = np.zeros((8, 8, 8))
    np.add.at(counts, tuple((draws // 32).T), 1)
    keep = masses.reshape(-1) * n >= 5
    obs = np.append(counts.reshape(-1)[keep], counts.reshape(-1)[~keep].sum())
    exp = np.append(masses.reshape(-1)[keep], masses.reshape(-1)[~keep].sum()) * n
    assert keep.sum() >= 20
    assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-3


def test_pixelcnnpp_first_pixel_follows_its_marginal():
    method, state = make(
        "pixelcnnpp", "logistic_mixture", (4, 4, 1), num_bits=8, features=4, scale=1.0
    )
    samples = method.sample_values(state, jax.random.key(4), 3000)
    assert samples.shape == (3000, 4, 4, 1) and samples.min() >= 0 and samples.max() <= 255
    # Parameters of pixel (0, 0) see no pixel: take them from any pass.
    x, _ = method.prepare(None, jnp.zeros((1, 4, 4, 1), jnp.uint8), train=False)
    p00 = np.asarray(method.module.apply({"params": state.models["model"].params}, x))[0, 0, 0]
    pmf = np.array(
        [_logistic_bin_probs(p00.astype(np.float64), np.array([v]), 1, 2) for v in range(256)]
    )
    np.testing.assert_allclose(pmf.sum(), 1.0, rtol=1e-9)
    empirical = np.searchsorted(np.sort(samples[:, 0, 0, 0]), np.arange(256), side="right") / 3000
    ks = np.abs(empirical - np.cumsum(pmf)).max()
    assert ks < 1.63 / math.sqrt(3000)  # Kolmogorov-Smirnov at the 1% level (conservative)


def test_naive_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="likelihood="):
        naive_sample(lambda x: x, jax.random.key(0), (1, 2, 2, 1), likelihood="gaussian")
    with pytest.raises(ValueError, match="shape must be"):
        naive_sample(lambda x: x, jax.random.key(0), (2, 2, 1), likelihood="bernoulli")


# ---------------------------------------------------------------- training through the engine

TINY_TRAIN = [
    "train.batch_size=20",
    "train.progress=false",
    "model.features=6",
    "model.num_layers=1",
    "model.output_features=16",
    "model.base_features=4",
    "model.num_blocks=1",
    "model.num_mixtures=2",
]
ARCHITECTURES = {
    "pixelcnn": ["model.likelihood=bernoulli", "data.preprocess=binarize_dynamic"],
    "gated_pixelcnn": ["model.conditional=true"],
    "pixelrnn_row": [],
    "pixelrnn_diagonal": [],
    "pixelcnnpp": ["model.likelihood=logistic_mixture", "model.conditional=true"],
    "multiscale": ["model.num_scales=2"],
}


def _trains_on_digits(architecture: str, *extra: str):
    """Eight steps of ``architecture`` on digits: finite, decreasing, compiled once."""
    overrides = TINY_TRAIN + [
        f"model.architecture={architecture}",
        "model.conditional=false",
        "model.likelihood=categorical",
        "data.preprocess=integer",
        *extra,
    ]
    config = load_config("gated_pixelcnn_digits", overrides + ARCHITECTURES[architecture])
    trainer = Trainer(config, None)
    losses = [trainer.step()["loss"] for _ in range(8)]
    assert np.all(np.isfinite(losses)) and trainer.num_traces == 1
    assert losses[-1] < losses[0]
    return config, trainer


@pytest.mark.parametrize(
    "architecture",
    [
        # PixelCNN++'s gradient takes ~40 s to compile on 2 CPU cores: run with -m slow.
        # multiscale compiles for ~17 s: also -m slow.
        pytest.param(a, marks=pytest.mark.slow) if a in ("pixelcnnpp", "multiscale") else a
        for a in sorted(ARCHITECTURES)
    ],
)
def test_every_architecture_trains_on_digits(architecture):
    config, trainer = _trains_on_digits(architecture)
    small = dataclasses.replace(config.eval, batch_size=50, max_examples=50)
    trainer.method.config = dataclasses.replace(config, eval=small)
    data = dataclasses.replace(
        trainer.eval_data,
        images=trainer.eval_data.images[:50],
        labels=trainer.eval_data.labels[:50],
    )
    result = trainer.method.evaluate(trainer.state, data, trainer.eval_key())
    assert result["num_examples"] == 50
    assert result["nll_bits_per_dim"] == pytest.approx(result["nll_nats"] / (64 * math.log(2)))


def test_autoregressive_configs_fit_their_data():
    """Every autoregressive experiment builds its method on its dataset's shape (no compile)."""
    shapes = {
        "digits": ((8, 8, 1), 8, 10),
        "binarized_mnist": ((28, 28, 1), 1, None),
        "mnist": ((28, 28, 1), 8, 10),
        "cifar10": ((32, 32, 3), 8, 10),
    }
    names = [n for n in available_configs() if load_config(n).method == "autoregressive"]
    assert {
        "pixelcnn_digits", "gated_pixelcnn_digits", "pixelcnn_binarized_mnist",
        "pixelrnn_binarized_mnist", "gated_pixelcnn_mnist", "pixelcnnpp_cifar10",
        "multiscale_pixelcnn_mnist",
    } <= set(names)
    for name in names:
        config = load_config(name)
        shape, bits, classes = shapes[config.data.name]
        AutoregressiveMethod(config, DataSpec(shape, bits, classes, config.data.name))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.architecture=wavenet"], "model.architecture"),
        (["model.likelihood=gaussian"], "model.likelihood"),
        (["model.likelihood=logistic_mixture"], "'logistic_mixture' with model.architecture="),
        (["model.architecture=pixelcnnpp"], "'logistic_mixture' with model.architecture="),
        (["data.preprocess=unit"], "data.preprocess='unit'"),
        (["model.likelihood=bernoulli"], "data.preprocess='integer'"),
        (["model.architecture=pixelcnn"], "model.conditional=True; expected false"),
        (["model.sampler=cached"], "the cached sampler is PixelCNN's"),
        (["model.sampler=multiscale"], "multiscale sampler"),
        (["model.sampler=fast"], "model.sampler"),
    ],
)
def test_bad_config_is_a_clear_error(overrides, match):
    """Refused when the config is loaded, before any data is read."""
    with pytest.raises(ConfigValueError, match=match):
        load_config("gated_pixelcnn_digits", overrides)


def test_conditional_without_labels_and_eight_bit_mixture_are_errors():
    config = load_config("gated_pixelcnn_digits")
    with pytest.raises(ConfigValueError, match="has no labels"):
        AutoregressiveMethod(config, DataSpec((8, 8, 1), 8, None, "unlabelled"))
    config = load_config(
        "gated_pixelcnn_digits",
        ["model.architecture=pixelcnnpp", "model.likelihood=logistic_mixture"],
    )
    with pytest.raises(ConfigValueError, match="4-bit values"):
        AutoregressiveMethod(config, DataSpec((8, 8, 1), 4, 10, "digits4"))
    method, state = make("pixelcnn", "bernoulli", (2, 2, 1))
    with pytest.raises(ValueError, match="num must be >= 1"):
        method.sample_values(state, jax.random.key(0), 0)
    with pytest.raises(ValueError, match="needs the multiscale model"):
        method.sample_values(state, jax.random.key(0), 2, sampler="multiscale")


# ---------------------------------------------------------------- mixed precision (bfloat16)

# One case per architecture (and the RGB channel masks / channel coupling where they exist).
BF16_CASES = [
    ("pixelcnn", "bernoulli", (8, 8, 1), 1, None),
    ("pixelcnn", "categorical", (4, 4, 3), 8, None),
    ("gated_pixelcnn", "categorical", (8, 8, 1), 8, 3),
    ("pixelrnn_row", "categorical", (4, 4, 3), 8, None),
    ("pixelrnn_diagonal", "bernoulli", (8, 8, 1), 1, None),
    ("pixelcnnpp", "logistic_mixture", (4, 4, 3), 8, 3),
    ("multiscale", "categorical", (8, 8, 1), 8, 3),
]
# bfloat16 keeps 8 significant bits, so one rounding errs by at most u = 2^-8 (relative). The
# logits of these one-layer nets come out of about n = 16 roundings in sequence (the input,
# each cast kernel, each layer's output and residual sum, the head); independent rounding
# errors grow like sqrt(n) u (Higham, "Accuracy and Stability of Numerical Algorithms", 2002,
# Sec. 2.8). The float32 likelihood of such logits is therefore expected within 4 u = 2^-6 of
# the float32 network's.
BF16_RTOL = 4 * 2.0**-8


def _case_id(case):
    return f"{case[0]}-{case[1]}-{'x'.join(map(str, case[2]))}"


def _bf16_case(architecture, likelihood, shape, num_bits, num_classes):
    """The float32 and bfloat16 methods with the same float32 weights, and one batch."""
    kwargs = dict(num_bits=num_bits, num_classes=num_classes, scale=1.0)
    method32, state = make(architecture, likelihood, shape, **kwargs)
    method16, state16 = make(architecture, likelihood, shape, compute_dtype="bfloat16", **kwargs)
    params = state.models["model"].params
    same = jax.tree.map(np.array_equal, params, state16.models["model"].params)
    assert all(jax.tree.leaves(same))  # the same float32 weights for both dtypes
    rng = np.random.default_rng(0)
    high = 2 if likelihood == "bernoulli" else 2**num_bits
    images = jnp.asarray(rng.integers(0, high, (8, *shape)), jnp.uint8)
    labels = None if num_classes is None else jnp.asarray(rng.integers(0, num_classes, 8))
    return method32, method16, params, images, labels


@pytest.mark.parametrize(
    "case",
    [
        # PixelCNN++'s gradient takes ~40 s to compile on 2 CPU cores: run with -m slow.
        pytest.param(c, marks=pytest.mark.slow) if c[0] == "pixelcnnpp" else c
        for c in BF16_CASES
    ],
    ids=_case_id,
)
def test_bfloat16_loss_matches_float32_with_the_same_params(case):
    method32, method16, params, images, labels = _bf16_case(*case)
    x, target = method32.prepare(None, images, train=False)

    def loss(method):
        return jax.value_and_grad(lambda p: jnp.mean(method.nll(p, x, target, labels)))

    loss32 = jax.jit(lambda p: loss(method32)(p)[0])(params)
    loss16, grads16 = jax.jit(loss(method16))(params)
    assert loss16.dtype == jnp.float32 and np.isfinite(float(loss16))
    np.testing.assert_allclose(float(loss16), float(loss32), rtol=BF16_RTOL)
    assert loss16 != loss32  # the network did run in bfloat16
    for g, p in zip(jax.tree.leaves(grads16), jax.tree.leaves(params), strict=True):
        assert g.dtype == jnp.float32 and g.shape == p.shape
        assert np.all(np.isfinite(np.asarray(g)))
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads16))


@pytest.mark.parametrize("case", BF16_CASES, ids=_case_id)
def test_bfloat16_keeps_the_float32_parameter_tree_and_float32_outputs(case):
    """``train.compute_dtype`` changes no parameter (names, shapes, dtypes) and no output dtype."""
    architecture, likelihood, shape, num_bits, num_classes = case
    trees, outputs = [], []
    for dtype in ("float32", "bfloat16"):
        method, _ = make(
            architecture,
            likelihood,
            shape,
            num_bits=num_bits,
            num_classes=num_classes,
            compute_dtype=dtype,
        )
        batch = {"image": jnp.zeros((2, *shape), jnp.uint8), "label": jnp.zeros(2, jnp.int32)}
        params = jax.eval_shape(method.init, jax.random.key(0), batch)["model"].params
        trees.append(params)
        x, _ = method.prepare(None, batch["image"], train=False)
        args = (
            (x,)
            if architecture.startswith("pixelrnn") or architecture == "pixelcnn"
            else (x, None if num_classes is None else batch["label"])
        )
        out = jax.eval_shape(method.module.apply, {"params": params}, *args)
        outputs.append([(o.shape, o.dtype) for o in jax.tree.leaves(out)])
    assert jax.tree.structure(trees[0]) == jax.tree.structure(trees[1])
    for a, b in zip(jax.tree.leaves(trees[0]), jax.tree.leaves(trees[1]), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == jnp.float32
    assert outputs[0] == outputs[1]  # the logits (all groups for multiscale) are float32
    assert {dtype for _, dtype in outputs[1]} == {jnp.dtype(jnp.float32)}


def test_bfloat16_initialisation_equals_float32_initialisation():
    """Flax initialisers draw float32 parameters whatever the module's computation dtype."""
    inits = []
    for dtype in ("float32", "bfloat16"):
        method, _ = make(
            "gated_pixelcnn",
            "categorical",
            (4, 4, 1),
            num_bits=2,
            num_classes=2,
            compute_dtype=dtype,
        )
        batch = {"image": jnp.zeros((2, 4, 4, 1), jnp.uint8), "label": jnp.zeros(2, jnp.int32)}
        inits.append(method.init(jax.random.key(3), batch)["model"].params)
    for a, b in zip(jax.tree.leaves(inits[0]), jax.tree.leaves(inits[1]), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sampler", ["naive", "cached"])
def test_bfloat16_pixelcnn_samples_follow_the_bfloat16_model(sampler):
    method, state = make(
        "pixelcnn", "bernoulli", (2, 2, 1), features=4, scale=3.0, compute_dtype="bfloat16"
    )
    images = all_images((2, 2, 1), 2)
    samples = method.sample_values(state, jax.random.key(1), 20000, sampler=sampler)
    assert samples.dtype == np.int32 and set(np.unique(samples)) == {0, 1}
    assert_frequencies_match(samples, images, probabilities(method, state, images))


def test_bfloat16_cached_and_naive_samplers_draw_valid_categorical_values():
    """RGB, 4 values: both samplers give integers in 0..3 and mostly the same draws per key.

    Their bfloat16 logits differ by roundings (convolution vs the cached einsum), so a draw can
    flip where two Gumbel-perturbed logits are within a rounding of each other: rare, not never.
    """
    method, state = make(
        "pixelcnn",
        "categorical",
        (5, 4, 3),
        num_bits=2,
        features=6,
        num_layers=2,
        first_kernel_size=5,
        compute_dtype="bfloat16",
    )
    key = jax.random.key(7)
    naive = method.sample_values(state, key, 8, sampler="naive")
    cached = method.sample_values(state, key, 8, sampler="cached")
    for s in (naive, cached):
        assert s.dtype == np.int32 and set(np.unique(s)) == {0, 1, 2, 3}
    assert np.mean(naive == cached) > 0.9


def test_bfloat16_multiscale_samples_follow_the_bfloat16_model():
    method, state = make(
        "multiscale", "bernoulli", (2, 2, 1), scale=3.0, features=4, compute_dtype="bfloat16"
    )
    images = all_images((2, 2, 1), 2)
    samples = method.sample_values(state, jax.random.key(3), 20000)
    assert samples.dtype == np.int32
    assert_frequencies_match(samples, images, probabilities(method, state, images))


@pytest.mark.slow  # PixelCNN++'s sampler compiles for ~15 s
def test_bfloat16_pixelcnnpp_samples_are_8_bit_values_from_the_marginal():
    method, state = make(
        "pixelcnnpp",
        "logistic_mixture",
        (4, 4, 1),
        num_bits=8,
        features=4,
        scale=1.0,
        compute_dtype="bfloat16",
    )
    samples = method.sample_values(state, jax.random.key(4), 3000)
    assert samples.dtype == np.int32 and samples.min() >= 0 and samples.max() <= 255
    x, _ = method.prepare(None, jnp.zeros((1, 4, 4, 1), jnp.uint8), train=False)
    p00 = method.module.apply({"params": state.models["model"].params}, x)[0, 0, 0]
    assert p00.dtype == jnp.float32
    pmf = np.array(
        [_logistic_bin_probs(np.asarray(p00, np.float64), np.array([v]), 1, 2) for v in range(256)]
    )
    empirical = np.searchsorted(np.sort(samples[:, 0, 0, 0]), np.arange(256), side="right") / 3000
    assert np.abs(empirical - np.cumsum(pmf)).max() < 1.63 / math.sqrt(3000)  # KS, 1% level


@pytest.mark.parametrize(
    "architecture",
    [
        # One architecture in the default suite (the bfloat16 plumbing is shared; each module's
        # dtypes are tested in test_models_pixel.py); the others with -m slow.
        a if a == "pixelcnn" else pytest.param(a, marks=pytest.mark.slow)
        for a in sorted(ARCHITECTURES)
    ],
)
def test_every_architecture_trains_on_digits_in_bfloat16(architecture):
    config, trainer = _trains_on_digits(architecture, "train.compute_dtype=bfloat16")
    model = trainer.state.models["model"]
    for leaf in jax.tree.leaves((model.params, model.opt_state)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32
