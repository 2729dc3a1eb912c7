"""Tests of genjax.losses.flow: change of variables, dequantization, logit transform, bits/dim.

Expected values come from scipy.stats / scipy.special / numerical integration in float64.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, special, stats

from genjax.losses import (
    bits_per_dim,
    change_of_variables_log_likelihood,
    dequantize,
    discrete_nll_from_continuous,
    logit_transform,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def test_uniform_density_on_the_unit_cube_scores_exactly_8_bits_per_dim():
    # log p(x) = 0 on [0, 1)^D: the discrete model is uniform over 256^D values.
    d = 3 * 4 * 4
    nll = discrete_nll_from_continuous(jnp.zeros((5,)), d)
    np.testing.assert_allclose(nll, d * math.log(256), rtol=1e-6)
    np.testing.assert_allclose(bits_per_dim(nll, d), 8.0, rtol=1e-6)
    # 5-bit data (as in Glow's CelebA-HQ experiments): 5 bits/dim.
    nll5 = discrete_nll_from_continuous(jnp.zeros((2,)), d, num_bits=5)
    np.testing.assert_allclose(bits_per_dim(nll5, d), 5.0, rtol=1e-6)


def test_bits_per_dim_scalar_case():
    np.testing.assert_allclose(bits_per_dim(jnp.float32(math.log(2) * 10), 10), 1.0, rtol=1e-6)


def test_identity_flow_with_standard_normal_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 3))
    ll = change_of_variables_log_likelihood(jnp.asarray(x, jnp.float32), jnp.zeros((4,)))
    expected = stats.multivariate_normal.logpdf(x.reshape(4, -1), np.zeros(6), np.eye(6))
    np.testing.assert_allclose(ll, expected, rtol=1e-5)


def test_affine_flow_log_likelihood_matches_the_gaussian_it_implies():
    # z = (x - m) / s elementwise has log_det = -sum(log s); then x ~ N(m, s^2).
    rng = np.random.default_rng(1)
    x, m = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    s = np.exp(rng.normal(size=(5,)))
    z = (x - m) / s
    log_det = np.full((3,), -np.log(s).sum())
    got = change_of_variables_log_likelihood(
        jnp.asarray(z, jnp.float32), jnp.asarray(log_det, jnp.float32)
    )
    np.testing.assert_allclose(got, stats.norm.logpdf(x, m, s).sum(1), rtol=1e-5)


def test_dequantize_stays_in_each_bin_and_in_the_unit_interval():
    x = jnp.asarray(np.tile(np.arange(256, dtype=np.uint8), 4096))  # 2^20 values, 4096 per bin
    y32 = dequantize(jax.random.key(0), x)
    assert y32.dtype == jnp.float32 and y32.shape == x.shape
    y = np.asarray(y32, np.float64)
    assert y.min() >= 0.0 and y.max() < 1.0
    np.testing.assert_array_equal(np.floor(y * 256), np.asarray(x))
    # u = 256 y - x ~ U[0, 1): mean 1/2 (sd 1/sqrt(12)); 2^20 samples, tolerance 5 standard errors.
    u = y * 256 - np.asarray(x)
    assert abs(u.mean() - 0.5) < 5 / math.sqrt(12 * 2**20)
    # Different keys give different noise; the same key the same noise.
    y2 = np.asarray(dequantize(jax.random.key(0), x))
    np.testing.assert_array_equal(y, y2)
    assert np.any(np.asarray(dequantize(jax.random.key(1), x[:10])) != y[:10])


def test_dequantize_fewer_bits():
    x = jnp.arange(32, dtype=jnp.int32)
    y = np.asarray(dequantize(jax.random.key(2), x, num_bits=5))
    np.testing.assert_array_equal(np.floor(y * 32), np.arange(32))


def test_logit_transform_values_and_log_det_match_a_brute_force_jacobian(x64):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(size=(2, 2, 3)))
    alpha = 0.05
    y, log_det = logit_transform(x, alpha=alpha)
    np.testing.assert_allclose(
        y, special.logit(alpha + (1 - 2 * alpha) * np.asarray(x)), rtol=1e-12
    )
    for i in range(2):
        jac = jax.jacfwd(lambda v: logit_transform(v[None], alpha=alpha)[0][0].ravel())(x[i])
        jac = np.asarray(jac).reshape(6, 6)
        np.testing.assert_allclose(log_det[i], np.linalg.slogdet(jac)[1], rtol=1e-12)
    # Round trip through the inverse (sigmoid, then undo the affine squeeze).
    np.testing.assert_allclose(
        (special.expit(np.asarray(y)) - alpha) / (1 - 2 * alpha), x, rtol=1e-10
    )


def test_logit_transform_plus_gaussian_integrates_to_the_gaussian_mass_in_the_window():
    # 1-D: p(x) = N(y(x); 0, 1) |dy/dx| on [0, 1]. Its integral is the standard normal mass of
    # [logit(alpha), logit(1 - alpha)] = 2 Phi(logit(0.95)) - 1, by change of variables.
    alpha = 0.05

    def density(x):
        y, log_det = logit_transform(jnp.array([[x]], jnp.float32), alpha=alpha)
        return float(jnp.exp(change_of_variables_log_likelihood(y, log_det))[0])

    mass, _ = integrate.quad(density, 0.0, 1.0, epsabs=1e-9)
    expected = 2 * stats.norm.cdf(special.logit(1 - alpha)) - 1
    np.testing.assert_allclose(mass, expected, rtol=1e-5)  # float32 density values


def test_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(4)
    z = jnp.asarray(rng.normal(size=(3, 4)))
    ld = jnp.asarray(rng.normal(size=(3,)))
    x = jnp.asarray(rng.uniform(0.1, 0.9, size=(3, 4)))

    def all_terms(z, ld, x):
        return (
            change_of_variables_log_likelihood(z, ld),
            logit_transform(x, alpha=0.05),
            bits_per_dim(discrete_nll_from_continuous(ld, 4), 4),
        )

    check_grads(jax.jit(all_terms), (z, ld, x), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: change_of_variables_log_likelihood(jnp.zeros((3, 4)), jnp.zeros((4,))),
            "log_det must have shape (B,) = (3,)",
        ),
        (
            lambda: change_of_variables_log_likelihood(
                jnp.zeros((3, 4), jnp.int32), jnp.zeros((3,))
            ),
            "z must be a floating-point",
        ),
        (
            lambda: dequantize(jax.random.key(0), jnp.zeros((3,), jnp.float32)),
            "x must be an integer array",
        ),
        (
            lambda: dequantize(jax.random.key(0), jnp.zeros((3,), jnp.uint8), num_bits=17),
            "num_bits must be in [1, 16]",
        ),
        (
            lambda: dequantize(jax.random.key(0), jnp.zeros((3,), jnp.uint8), dtype=jnp.int32),
            "dtype must be a floating-point",
        ),
        (lambda: logit_transform(jnp.zeros((2, 3)), alpha=0.5), "alpha must be in [0, 0.5)"),
        (lambda: logit_transform(jnp.zeros((2, 3)), alpha=-0.1), "alpha must be a finite number"),
        (lambda: logit_transform(jnp.zeros(()), alpha=0.05), "x must have at least 1 axes"),
        (lambda: bits_per_dim(jnp.zeros((2,)), 0), "num_dims must be an int >= 1"),
        (
            lambda: discrete_nll_from_continuous(jnp.zeros((2,), jnp.int32), 3),
            "nll must be a floating-point",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_num_dims_must_be_an_int():
    with pytest.raises(TypeError, match="num_dims must be an int"):
        bits_per_dim(jnp.zeros((2,)), 3.0)


# ----------------------------------------------------------------------------- precision


def test_bfloat16_inputs_are_computed_in_float32():
    """Network outputs may be bfloat16 (train.compute_dtype); every result is float32 and
    equals the float32 computation on the same (exactly upcast) values."""
    rng = np.random.default_rng(5)
    z16 = jnp.asarray(rng.normal(size=(3, 4, 4, 2)), jnp.bfloat16)
    ld16 = jnp.asarray(rng.normal(size=(3,)), jnp.bfloat16)
    x16 = jnp.asarray(rng.uniform(size=(3, 4, 4, 2)), jnp.bfloat16)
    z32, ld32, x32 = (a.astype(jnp.float32) for a in (z16, ld16, x16))
    calls = [
        lambda z, ld, x: change_of_variables_log_likelihood(z, ld),
        lambda z, ld, x: logit_transform(x, alpha=0.05),
        lambda z, ld, x: discrete_nll_from_continuous(ld, 32),
        lambda z, ld, x: bits_per_dim(ld, 32),
    ]
    for call in calls:
        got, expected = call(z16, ld16, x16), call(z32, ld32, x32)
        for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            assert g.dtype == jnp.float32
            np.testing.assert_array_equal(g, e)


def test_log_256_offset_of_cifar10_is_added_in_float32():
    """D log 256 = 17,035 nats for CIFAR-10 (D = 3072); bfloat16's spacing there is 128 nats
    and float32's 0.002. A bfloat16 NLL must come out to float32 accuracy: atol 4e-3 nats is two
    float32 spacings at 2.2e4 (the sum and its rounding), 1.3e-6 bits/dim."""
    d = 32 * 32 * 3
    nll16 = jnp.asarray([-4321.0, 0.0, 5.125, 1234.0], jnp.bfloat16)
    got = discrete_nll_from_continuous(nll16, d)
    expected = np.asarray(nll16, np.float64) + d * 8 * math.log(2)  # the bfloat16 values, exact
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=4e-3)
    bits = bits_per_dim(got, d)
    assert bits.dtype == jnp.float32
    np.testing.assert_allclose(bits, expected / (d * math.log(2)), rtol=1e-6)
    # The offset itself, with a zero density: 8 bits/dim to float32 accuracy.
    np.testing.assert_allclose(bits_per_dim(discrete_nll_from_continuous(
        jnp.zeros(2, jnp.bfloat16), d), d), 8.0, rtol=1e-6)


def test_prior_log_density_of_a_bfloat16_latent_sums_in_float32():
    """log N(z; 0, I) over D = 3072 dimensions (about -4400 nats, where bfloat16's spacing is 32):
    summed in float32 it matches scipy on the bfloat16 values to float32 accuracy."""
    z16 = jnp.asarray(np.random.default_rng(6).normal(size=(2, 32, 32, 3)), jnp.bfloat16)
    got = change_of_variables_log_likelihood(z16, jnp.zeros((2,), jnp.bfloat16))
    assert got.dtype == jnp.float32
    expected = stats.norm.logpdf(np.asarray(z16, np.float64)).reshape(2, -1).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_dequantize_refuses_a_dtype_that_would_round_the_noise_away():
    # In bfloat16, (x + u) for x in [128, 256) has spacing 1: u would be rounded to 0 or 1.
    for dtype in (jnp.bfloat16, jnp.float16):
        with pytest.raises(ValueError, match="dtype must be float32 or wider"):
            dequantize(jax.random.key(0), jnp.zeros((3,), jnp.uint8), dtype=dtype)
