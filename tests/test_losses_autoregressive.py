"""Tests of genjax.losses.autoregressive.

References are computed independently in NumPy/SciPy float64: scipy.stats.logistic CDF
differences for the discretized logistic (a tail-safe log form where the CDFs saturate),
scipy.special.log_softmax for the categorical. Float32 results are compared at rtol=1e-5
unless a comment says otherwise; normalisation checks sum float32 probabilities in float64.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special, stats

from genjax.losses import (
    bernoulli_nll,
    bits_per_dim,
    categorical_nll,
    discretized_logistic_mixture_nll,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _to_unit(v):
    """x = 2 v / 255 - 1, rounded to float32 and returned as float64.

    The references use exactly the float32 inputs the loss sees: at a scale of exp(-7) the
    likelihood moves by ~1e-4 (relative) under the 6e-8 rounding of x itself.
    """
    return (2.0 * np.asarray(v, np.float64) / 255.0 - 1.0).astype(np.float32).astype(np.float64)


# -- categorical / Bernoulli ----------------------------------------------------------------------


def test_categorical_nll_matches_scipy_log_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(3, 2, 2, 3, 256))
    x = rng.integers(0, 256, size=(3, 2, 2, 3))
    log_p = special.log_softmax(logits, axis=-1)
    expected = -np.take_along_axis(log_p, x[..., None], -1)[..., 0].reshape(3, -1).sum(1)
    got = categorical_nll(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.uint8))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_uniform_categorical_scores_8_bits_per_dim():
    x = jnp.zeros((2, 4, 4, 3), jnp.int32)
    nll = categorical_nll(jnp.zeros((2, 4, 4, 3, 256)), x)
    np.testing.assert_allclose(bits_per_dim(nll, 4 * 4 * 3), 8.0, rtol=1e-6)


def test_bernoulli_nll_matches_scipy_and_is_stable():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(4, 5, 5, 1))
    x = (rng.uniform(size=logits.shape) < 0.5).astype(np.uint8)
    expected = -stats.bernoulli.logpmf(x, special.expit(logits)).reshape(4, -1).sum(1)
    np.testing.assert_allclose(
        bernoulli_nll(jnp.asarray(logits, jnp.float32), x), expected, rtol=1e-5
    )
    big = jnp.array([[100.0, -100.0]])
    np.testing.assert_allclose(bernoulli_nll(big, jnp.array([[0, 1]])), [200.0], rtol=1e-6)
    assert np.all(
        np.isfinite(jax.grad(lambda lg: bernoulli_nll(lg, jnp.array([[0, 1]])).sum())(big))
    )


# Jitted once per input shape: the tests call it on large or many inputs.
_nll = jax.jit(discretized_logistic_mixture_nll)


# -- discretized logistic mixture: independent reference -------------------------------------------


def _log_bin_reference(x, mean, scale):
    """log P(bin of x) for Logistic(mean, scale) on the 256 bins of [-1, 1], float64."""
    with np.errstate(all="ignore"):  # both forms are evaluated; the chosen one is finite
        return _log_bin_reference_unchecked(x, mean, scale)


def _log_bin_reference_unchecked(x, mean, scale):
    hi = np.where(x > 0.999, np.inf, (x + 1 / 255 - mean) / scale)
    lo = np.where(x < -0.999, -np.inf, (x - 1 / 255 - mean) / scale)
    # P = F(hi) - F(lo) = S(lo) - S(hi) with S = 1 - F; use the form that does not saturate.
    left = special.log_expit(hi) + np.log1p(-np.exp(special.log_expit(lo) - special.log_expit(hi)))
    right = special.log_expit(-lo) + np.log1p(
        -np.exp(special.log_expit(-hi) - special.log_expit(-lo))
    )
    return np.where((hi + lo) < 0, left, right)


def _mixture_reference(params, x, num_mixtures):
    """-log p(pixel) for one pixel: params (P,), x (C,) in [-1, 1]; coupling per the docstring."""
    m, c = num_mixtures, x.shape[0]
    log_pi = special.log_softmax(params[:m])
    rest = params[m:].reshape(c, 3 if c == 3 else 2, m)
    means, scales = rest[:, 0].copy(), np.exp(np.maximum(rest[:, 1], -7.0))
    if c == 3:
        coeff = np.tanh(rest[:, 2])
        means[1] = means[1] + coeff[0] * x[0]
        means[2] = means[2] + coeff[1] * x[0] + coeff[2] * x[1]
    log_p = sum(_log_bin_reference(x[ch], means[ch], scales[ch]) for ch in range(c))
    return -special.logsumexp(log_pi + log_p)


def test_logistic_mixture_matches_independent_reference_grey_and_rgb():
    rng = np.random.default_rng(2)
    for channels, m in ((1, 3), (3, 2)):
        p_size = (10 if channels == 3 else 3) * m
        params = rng.normal(size=(4, 2, 3, p_size))
        v = rng.integers(0, 256, size=(4, 2, 3, channels))
        v[0, 0, 0] = 0  # edge bins
        v[0, 0, 1] = 255
        x = _to_unit(v)
        expected = np.array(
            [
                sum(
                    _mixture_reference(params[b, i, j], x[b, i, j], m)
                    for i in range(2)
                    for j in range(3)
                )
                for b in range(4)
            ]
        )
        got = _nll(jnp.asarray(params, jnp.float32), jnp.asarray(x, jnp.float32))
        assert got.shape == (4,)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("log_scale", [-7.0, -4.0, 0.0, 3.0, 7.0, 12.0])
def test_single_bin_log_probability_matches_reference_across_scales(x64, log_scale):
    # Grey, one component: covers the narrow-bin (midpoint) branch at log_scale = 12 and deep
    # tails at log_scale = -7 (mean 0.8, x near -1: log P ~ -1960 nats).
    v = np.array([0, 1, 60, 127, 128, 200, 254, 255])
    x = _to_unit(v)
    for mean in (-0.8, 0.0, 0.8):
        params = np.broadcast_to(np.array([0.0, mean, log_scale]), (8, 1, 1, 3))
        got = _nll(jnp.asarray(params), jnp.asarray(x.reshape(8, 1, 1, 1)))
        expected = -_log_bin_reference(x, mean, math.exp(log_scale))
        np.testing.assert_allclose(got, expected, rtol=1e-9)


def _grey_pmf(params):
    v = np.arange(256)
    x = jnp.asarray(_to_unit(v).reshape(256, 1, 1, 1), jnp.float32)
    p = jnp.broadcast_to(jnp.asarray(params, jnp.float32), (256, 1, 1, len(params)))
    return np.exp(-np.asarray(_nll(p, x), np.float64))


def test_grey_probabilities_over_256_values_sum_to_one():
    rng = np.random.default_rng(3)
    for log_scale_shift in (-6.0, -2.0, 0.0, 2.0):
        params = rng.normal(size=(3 * 4,))
        params[8:] += log_scale_shift  # log-scales of the 4 components
        np.testing.assert_allclose(_grey_pmf(params).sum(), 1.0, atol=1e-5)


def _rgb_probabilities(params, rgb):
    """p(r, g, b) for an (N, 3) array of 8-bit colours, one-pixel images."""
    n = rgb.shape[0]
    x = jnp.asarray(_to_unit(rgb).reshape(n, 1, 1, 3), jnp.float32)
    p = jnp.broadcast_to(jnp.asarray(params, jnp.float32), (n, 1, 1, len(params)))
    return np.exp(-np.asarray(_nll(p, x), np.float64))


def test_rgb_channel_conditionals_each_sum_to_one_over_256_values():
    # One component: p(r, g, b) = p(r) p(g | r) p(b | r, g). Enumerating b for fixed (r, g)
    # gives p(r) p(g | r); enumerating g of that gives p(r); enumerating r gives 1.
    rng = np.random.default_rng(4)
    params = rng.normal(size=(10,))
    params[4:7] *= 3.0  # strong coupling coefficients
    v = np.arange(256)
    rest = params[1:].reshape(3, 3)  # (channel, [mean, log-scale, raw coupling])
    mean, s, coeff = rest[:, 0], np.exp(np.maximum(rest[:, 1], -7.0)), np.tanh(rest[:, 2])
    for r, g in ((0, 255), (17, 200), (255, 3)):
        rgb = np.stack([np.full(256, r), np.full(256, g), v], axis=1)
        p_rg = _rgb_probabilities(params, rgb).sum()
        xr, xg = _to_unit(r), _to_unit(g)
        expected = np.exp(
            _log_bin_reference(xr, mean[0], s[0])
            + _log_bin_reference(xg, mean[1] + coeff[0] * xr, s[1])
        )
        np.testing.assert_allclose(p_rg, expected, rtol=1e-5)
    # p(r) = sum over (g, b): 65,536 colours per r, for two values of r; then sum of p(r) = 1.
    gb = np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)
    for r in (0, 131):
        rgb = np.concatenate([np.full((gb.shape[0], 1), r), gb], axis=1)
        np.testing.assert_allclose(
            _rgb_probabilities(params, rgb).sum(),
            np.exp(_log_bin_reference(_to_unit(r), mean[0], s[0])),
            rtol=1e-5,
        )


@pytest.mark.slow
def test_rgb_mixture_joint_sums_to_one_over_all_256_cubed_colours():
    # Two components with coupling: sum over all 16,777,216 colours, 16 chunks of 2^20
    # (slow: ~10 s on 2 CPU cores; the default suite checks the conditionals above).
    rng = np.random.default_rng(5)
    params = rng.normal(size=(20,))
    v = np.arange(256)
    gb = np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)
    total = 0.0
    for r0 in range(0, 256, 16):
        r = np.repeat(np.arange(r0, r0 + 16), gb.shape[0])[:, None]
        rgb = np.concatenate([r, np.tile(gb, (16, 1))], axis=1)
        x = jnp.asarray(_to_unit(rgb).reshape(-1, 1, 1, 3), jnp.float32)
        p = jnp.broadcast_to(jnp.asarray(params, jnp.float32), (x.shape[0], 1, 1, 20))
        total += np.exp(-np.asarray(_nll(p, x), np.float64)).sum()
    np.testing.assert_allclose(total, 1.0, atol=1e-4)  # float32 terms, float64 sum


def test_gradients_are_finite_at_edges_and_extreme_parameters():
    v = np.array([0, 255, 0, 255, 1, 254])
    x = jnp.asarray(_to_unit(v).reshape(6, 1, 1, 1), jnp.float32)
    # Grey, two components per pixel: [logit_1, logit_2, mean_1, mean_2, log_s_1, log_s_2];
    # means far outside [-1, 1], log-scales below the clip (-7), tiny and huge.
    params = jnp.array(
        [
            [0.0, 0.0, 5.0, -5.0, -7.5, -7.5],
            [0.0, 0.0, -5.0, 5.0, -7.5, 20.0],
            [0.0, 0.0, -1.0, 1.0, 20.0, -6.9],
            [50.0, -50.0, 1.0, -1.0, -6.9, -6.9],
            [0.0, 0.0, 1.0, 0.5, -6.9, -7.0],
            [0.0, 0.0, -0.999, 0.3, -6.0, -6.5],
        ],
        jnp.float32,
    ).reshape(6, 1, 1, 6)
    loss = jax.jit(lambda p, xx: _nll(p, xx).sum())
    value = loss(params, x)
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    assert np.isfinite(value) and np.all(np.isfinite(gp)) and np.all(np.isfinite(gx))
    xrgb = jnp.asarray(
        _to_unit(np.array([[0, 255, 0], [255, 0, 255]])).reshape(2, 1, 1, 3), jnp.float32
    )
    prgb = jnp.asarray(np.random.default_rng(6).normal(scale=10.0, size=(2, 1, 1, 30)), jnp.float32)
    assert np.all(np.isfinite(jax.jit(jax.grad(loss))(prgb, xrgb)))


def test_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(7)
    params = jnp.asarray(rng.normal(size=(2, 1, 2, 20)))
    v = rng.integers(0, 256, size=(2, 1, 2, 3))
    v[0, 0, 0] = [0, 255, 128]  # both edge bins and an interior one
    x = jnp.asarray(_to_unit(v))
    logits = jnp.asarray(rng.normal(size=(2, 3, 256)))
    targets = jnp.asarray(rng.integers(0, 256, size=(2, 3)))
    binary = jnp.asarray(v[..., :1] > 128)

    def all_nlls(p, lg):
        return (
            discretized_logistic_mixture_nll(p, x),
            categorical_nll(lg, targets),
            bernoulli_nll(p[..., :1], binary),
        )

    check_grads(jax.jit(all_nlls), (params, logits), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: categorical_nll(jnp.zeros((2, 3, 256)), jnp.zeros((2, 4), jnp.int32)),
            "x must have the shape of logits without its last (class) axis (2, 3)",
        ),
        (
            lambda: categorical_nll(jnp.zeros((2, 3, 256)), jnp.zeros((2, 3))),
            "x must be an integer array",
        ),
        (
            lambda: categorical_nll(jnp.zeros((256,)), jnp.zeros((), jnp.int32)),
            "logits must have at least 2 axes",
        ),
        (
            lambda: bernoulli_nll(jnp.zeros((2, 3)), jnp.zeros((3, 2))),
            "x must have the shape of logits",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 30)), jnp.zeros((2, 4, 4, 2))
            ),
            "x must have C = 1 (grey) or 3 (RGB)",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 31)), jnp.zeros((2, 4, 4, 3))
            ),
            "params must have a last axis of 10 * M values for C = 3, got 31",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 30)), jnp.zeros((2, 4, 4, 3)), num_mixtures=2
            ),
            "10 * num_mixtures = 20 for C = 3, got 30",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 9)), jnp.zeros((2, 4, 5, 1))
            ),
            "params must have the (B, H, W) of x (2, 4, 5)",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 9)), jnp.zeros((2, 16, 1))
            ),
            "x must have 4 axes",
        ),
        (
            lambda: discretized_logistic_mixture_nll(
                jnp.zeros((2, 4, 4, 9), jnp.int32), jnp.zeros((2, 4, 4, 1))
            ),
            "params must be a floating-point",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# -- mixed precision: bfloat16 inputs, float32 likelihoods ----------------------------------------


def _bfloat16(a):
    """``a`` rounded to bfloat16, and the same values exactly in float64 (for the references)."""
    rounded = jnp.asarray(a, jnp.bfloat16)
    return rounded, np.asarray(rounded.astype(jnp.float32), np.float64)


def test_categorical_and_bernoulli_nll_of_bfloat16_logits_are_float32():
    # The references take the bfloat16 values exactly: only the loss's own arithmetic is
    # tested, at the float32 tolerance. A log-softmax over 256 values in bfloat16 would err by
    # ~1e-2 (its 8-bit mantissa), far outside it.
    rng = np.random.default_rng(10)
    logits, ref = _bfloat16(rng.normal(scale=3.0, size=(3, 2, 2, 3, 256)))
    x = rng.integers(0, 256, size=(3, 2, 2, 3))
    got = categorical_nll(logits, jnp.asarray(x, jnp.uint8))
    expected = -np.take_along_axis(special.log_softmax(ref, -1), x[..., None], -1).sum((1, 2, 3, 4))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5)

    logits, ref = _bfloat16(rng.normal(scale=3.0, size=(4, 5, 5, 1)))
    x = (rng.uniform(size=ref.shape) < 0.5).astype(np.uint8)
    got = bernoulli_nll(logits, x)
    expected = -stats.bernoulli.logpmf(x, special.expit(ref)).reshape(4, -1).sum(1)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_logistic_mixture_keeps_float32_targets_with_bfloat16_params():
    """bfloat16 network outputs, float32 targets: nothing is rounded to bfloat16 but the params.

    Narrow components (log-scales near -6: scales of 1/3 bin) centred within a bin of the
    targets make the 8-bit bins matter: rounding the targets to bfloat16 (spacing 2^-8, half a
    bin, on [0.5, 1)) moves the likelihood by far more than the float32 tolerance.
    """
    rng = np.random.default_rng(11)
    m, c = 2, 3
    v = rng.integers(150, 256, size=(4, 1, 1, c))
    x = jnp.asarray(_to_unit(v), jnp.float32)
    rest = np.zeros((4, c, 3, m))  # per channel: means, log-scales, coupling (tanh 0 = 0)
    rest[:, :, 0] = _to_unit(v).reshape(4, c, 1) + rng.uniform(-1, 1, (4, c, m)) / 255
    rest[:, :, 1] = rng.uniform(-6.5, -5.5, (4, c, m))
    raw = np.concatenate([rng.normal(size=(4, m)), rest.reshape(4, -1)], -1)
    params, ref = _bfloat16(raw.reshape(4, 1, 1, 10 * m))
    got = discretized_logistic_mixture_nll(params, x)
    assert got.dtype == jnp.float32
    xs = _to_unit(v).reshape(4, c)
    expected = [_mixture_reference(ref[b, 0, 0], xs[b], m) for b in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    rounded = discretized_logistic_mixture_nll(params, x.astype(jnp.bfloat16))
    assert rounded.dtype == jnp.float32
    assert np.abs(np.asarray(rounded) - expected).max() > 1e-3 * np.abs(expected).max()


def test_logistic_mixture_promotes_mixed_float_dtypes(x64):
    """float32 params with float64 targets: both promoted to float64 (never cast down)."""
    rng = np.random.default_rng(12)
    params = jnp.asarray(rng.normal(size=(2, 2, 2, 9)), jnp.float32)
    x = jnp.asarray(_to_unit(rng.integers(0, 256, size=(2, 2, 2, 1))))
    got = discretized_logistic_mixture_nll(params, x)
    assert got.dtype == jnp.float64
    np.testing.assert_array_equal(got, discretized_logistic_mixture_nll(params.astype(x.dtype), x))
