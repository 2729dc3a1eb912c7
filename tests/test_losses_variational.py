"""Tests of genjax.losses.variational against NumPy/SciPy and closed forms.

Expected values are computed independently with scipy.stats / scipy.special in float64.
Float32 comparisons use rtol=1e-5 (simple formulas); gradients are checked in float64.
"""

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special, stats

from genjax.losses import (
    bernoulli_log_likelihood,
    elbo,
    gaussian_kl,
    gaussian_log_density,
    gaussian_log_likelihood,
    iwae_bound,
    monte_carlo_kl,
    reparameterize,
    standard_normal_log_density,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- gaussian_kl ----------------------------------------------------------------------------


def _np_kl(mean, log_var):
    """KL(N(m, v) || N(0, 1)) = log(1/sigma) + (v + m^2)/2 - 1/2 per dimension, summed."""
    var = np.exp(log_var)
    per_dim = -0.5 * log_var + 0.5 * (var + mean**2) - 0.5
    return per_dim.reshape(per_dim.shape[0], -1).sum(1)


def test_gaussian_kl_scalar_case():
    # One example, one latent: m = 1, v = e -> KL = -1/2 + (e + 1)/2 - 1/2 = e/2 - 1/2.
    kl = gaussian_kl(jnp.array([1.0]), jnp.array([1.0]))
    np.testing.assert_allclose(kl, [math.e / 2 - 0.5], rtol=1e-6)


def test_gaussian_kl_batched_matches_numpy_and_sums_all_non_batch_axes():
    rng = _rng(1)
    mean = rng.normal(size=(4, 3, 2)).astype(np.float32)
    log_var = rng.normal(size=(4, 3, 2)).astype(np.float32)
    kl = gaussian_kl(mean, log_var)
    assert kl.shape == (4,)
    np.testing.assert_allclose(
        kl, _np_kl(mean.astype(np.float64), log_var.astype(np.float64)), rtol=1e-5
    )


def test_gaussian_kl_is_zero_at_the_prior_and_accurate_near_it():
    np.testing.assert_array_equal(gaussian_kl(jnp.zeros((2, 5)), jnp.zeros((2, 5))), 0.0)
    # For tiny log_var the KL is lv^2/4 + lv^3/12 + ... per dimension. In float32 the naive
    # (exp(lv) - 1 - lv) / 2 is off by ~7e-9 here (exp(lv) rounds at 1.2e-7); expm1 keeps the
    # absolute error at the float32 spacing of lv itself (~7e-12).
    lv32 = np.float32(1e-4)
    lv = float(lv32)
    exact = lv**2 / 4 + lv**3 / 12 + lv**4 / 48
    got = gaussian_kl(jnp.zeros((1, 1)), jnp.full((1, 1), lv32))
    np.testing.assert_allclose(got, [exact], rtol=0, atol=1e-11)


def test_gaussian_kl_matches_monte_carlo():
    # 400,000 samples; the tolerance is 5 standard errors of the Monte Carlo mean.
    rng = _rng(2)
    mean = np.array([[0.5, -1.0, 2.0]])
    log_var = np.array([[-1.0, 0.3, 0.0]])
    n = 400_000
    z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, 3))
    log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(1)
    log_p = stats.norm.logpdf(z).sum(1)
    samples = log_q - log_p
    se = samples.std() / math.sqrt(n)
    kl = float(gaussian_kl(jnp.asarray(mean, jnp.float32), jnp.asarray(log_var, jnp.float32))[0])
    assert abs(kl - samples.mean()) < 5 * se


def test_monte_carlo_kl_matches_scipy_and_averages_to_closed_form():
    rng = _rng(3)
    mean = rng.normal(size=(2, 3))
    log_var = rng.normal(size=(2, 3)) * 0.5
    z = reparameterize(
        jax.random.key(0),
        jnp.asarray(mean, jnp.float32),
        jnp.asarray(log_var, jnp.float32),
        num_samples=200_000,
    )
    mc = monte_carlo_kl(z, jnp.asarray(mean, jnp.float32), jnp.asarray(log_var, jnp.float32))
    assert mc.shape == (200_000, 2)
    zn = np.asarray(z[:5], np.float64)
    expected = (stats.norm.logpdf(zn, mean, np.exp(0.5 * log_var)) - stats.norm.logpdf(zn)).sum(-1)
    np.testing.assert_allclose(mc[:5], expected, rtol=1e-4, atol=1e-5)
    mc = np.asarray(mc, np.float64)
    se = mc.std(0) / math.sqrt(mc.shape[0])
    assert np.all(np.abs(mc.mean(0) - _np_kl(mean, log_var)) < 5 * se)


# -- Bernoulli / Gaussian likelihoods ---------------------------------------------------------


def test_bernoulli_log_likelihood_binary_matches_scipy():
    rng = _rng(4)
    logits = rng.normal(scale=3.0, size=(5, 2, 3)).astype(np.float32)
    x = (rng.uniform(size=(5, 2, 3)) < 0.5).astype(np.float32)
    expected = stats.bernoulli.logpmf(x, special.expit(logits.astype(np.float64)))
    ll = bernoulli_log_likelihood(logits, x)
    assert ll.shape == (5,)
    np.testing.assert_allclose(ll, expected.reshape(5, -1).sum(1), rtol=1e-5)
    # Integer and boolean targets are accepted and give the same values.
    np.testing.assert_allclose(bernoulli_log_likelihood(logits, x.astype(np.int32)), ll, rtol=1e-6)
    np.testing.assert_allclose(bernoulli_log_likelihood(logits, x.astype(bool)), ll, rtol=1e-6)


def test_bernoulli_log_likelihood_continuous_targets_is_negative_cross_entropy():
    rng = _rng(5)
    logits = rng.normal(size=(3, 4))
    x = rng.uniform(size=(3, 4))
    p = special.expit(logits)
    expected = (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(1)
    got = bernoulli_log_likelihood(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_log_likelihood_is_stable_at_extreme_logits():
    logits = jnp.array([[100.0, -100.0, 100.0, -100.0]])
    x = jnp.array([[1.0, 0.0, 0.0, 1.0]])
    ll = bernoulli_log_likelihood(logits, x)
    np.testing.assert_allclose(ll, [-200.0], rtol=1e-6)  # two confident misses of 100 nats
    grad = jax.grad(lambda lg: bernoulli_log_likelihood(lg, x).sum())(logits)
    np.testing.assert_allclose(grad, [[0.0, 0.0, -1.0, 1.0]], atol=1e-6)  # x - sigmoid(l)


def test_gaussian_log_likelihood_matches_scipy_with_broadcast_log_var():
    rng = _rng(6)
    x = rng.normal(size=(4, 2, 3))
    mean = rng.normal(size=(4, 2, 3))
    for log_var in (np.float64(-0.7), rng.normal(size=(2, 3)), rng.normal(size=(4, 2, 3))):
        expected = stats.norm.logpdf(x, mean, np.exp(0.5 * np.broadcast_to(log_var, x.shape)))
        got = gaussian_log_likelihood(
            jnp.asarray(x, jnp.float32),
            jnp.asarray(mean, jnp.float32),
            jnp.asarray(log_var, jnp.float32),
        )
        assert got.shape == (4,)
        np.testing.assert_allclose(got, expected.reshape(4, -1).sum(1), rtol=1e-5)


def test_gaussian_log_density_and_standard_normal_match_scipy():
    rng = _rng(7)
    z = rng.normal(size=(3, 4))
    mean = rng.normal(size=(3, 4))
    log_var = rng.normal(size=(3, 4))
    cov = [np.diag(np.exp(lv)) for lv in log_var]
    expected = [stats.multivariate_normal.logpdf(z[i], mean[i], cov[i]) for i in range(3)]
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    np.testing.assert_allclose(
        gaussian_log_density(f32(z), f32(mean), f32(log_var)), expected, rtol=1e-5
    )
    expected_std = stats.multivariate_normal.logpdf(z, np.zeros(4), np.eye(4))
    np.testing.assert_allclose(standard_normal_log_density(f32(z)), expected_std, rtol=1e-5)
    # Scalar case: one example with a single latent at 0 -> -log(2 pi)/2.
    np.testing.assert_allclose(
        standard_normal_log_density(jnp.zeros((1, 1))), [-0.5 * math.log(2 * math.pi)], rtol=1e-6
    )


# -- reparameterize ----------------------------------------------------------------------------


def test_reparameterize_is_mean_plus_scaled_standard_normal():
    key = jax.random.key(11)
    mean = jnp.array([[1.0, -2.0], [0.0, 3.0], [0.5, 0.5]])
    log_var = jnp.array([[0.0, 1.0], [-2.0, 0.5], [0.3, -0.3]])
    z = reparameterize(key, mean, log_var, num_samples=4)
    assert z.shape == (4, 3, 2) and z.dtype == jnp.float32
    eps = jax.random.normal(key, (4, 3, 2))
    np.testing.assert_allclose(z, mean + jnp.exp(0.5 * log_var) * eps, rtol=1e-6)
    assert reparameterize(key, mean, log_var).shape == (1, 3, 2)


def test_reparameterize_moments_match_the_gaussian():
    # 100,000 samples: standard error of the mean is sigma/316, of the variance ~ var*0.0045.
    mean = jnp.array([[1.0, -2.0]])
    log_var = jnp.array([[math.log(0.25), math.log(4.0)]])
    z = np.asarray(
        reparameterize(jax.random.key(0), mean, log_var, num_samples=100_000), np.float64
    )
    np.testing.assert_allclose(z.mean(0), mean, atol=5 * 2.0 / math.sqrt(1e5))
    np.testing.assert_allclose(z.var(0), jnp.exp(log_var), rtol=5 * math.sqrt(2 / 1e5))


# -- elbo / iwae_bound ---------------------------------------------------------------------------


def test_elbo_is_sample_mean_of_log_likelihood_minus_kl():
    ll = jnp.array([[-1.0, -2.0], [-3.0, -6.0]])
    kl = jnp.array([0.5, 1.0])
    np.testing.assert_allclose(elbo(ll, kl), [-2.5, -5.0], rtol=1e-6)


def test_iwae_bound_matches_scipy_and_k1_equals_elbo_estimate():
    rng = _rng(8)
    lw = rng.normal(scale=5.0, size=(7, 3)) - 300.0  # far from 0: needs a stable logsumexp
    expected = special.logsumexp(lw, axis=0) - math.log(7)
    np.testing.assert_allclose(iwae_bound(jnp.asarray(lw, jnp.float32)), expected, rtol=1e-5)
    one = jnp.asarray(lw[:1], jnp.float32)
    np.testing.assert_allclose(iwae_bound(one), one[0], rtol=1e-6)
    # With equal weights the bound equals the (common) log weight for any K.
    np.testing.assert_allclose(iwae_bound(jnp.full((5, 2), -3.0)), [-3.0, -3.0], rtol=1e-6)


def test_iwae_bound_approaches_exact_log_marginal_of_a_conjugate_gaussian(x64):
    # p(z) = N(0, 1), p(x|z) = N(z, s2): log p(x) = log N(x; 0, 1 + s2) exactly.
    s2 = 0.5
    x = jnp.array([[0.3], [-1.2], [2.0]])
    exact = stats.norm.logpdf(np.asarray(x)[:, 0], 0.0, math.sqrt(1 + s2))
    post_mean, post_var = x / (1 + s2), s2 / (1 + s2)

    @functools.partial(jax.jit, static_argnums=1)
    def log_weights(key, num, q_mean, q_log_var):
        z = reparameterize(key, q_mean, q_log_var, num_samples=num)  # (K, B, 1)
        flat = lambda a: a.reshape(-1, 1)
        log_px_z = gaussian_log_likelihood(flat(jnp.broadcast_to(x, z.shape)), flat(z), jnp.log(s2))
        log_pz = standard_normal_log_density(flat(z))
        bq = lambda a: flat(jnp.broadcast_to(a, z.shape))
        log_qz = gaussian_log_density(flat(z), bq(q_mean), bq(q_log_var))
        return (log_px_z + log_pz - log_qz).reshape(num, -1)

    # q equal to the exact posterior: every weight is p(x), so the bound is exact for any K.
    lw = log_weights(jax.random.key(0), 3, post_mean, jnp.log(post_var))
    np.testing.assert_allclose(iwae_bound(lw), exact, rtol=1e-10)

    # A mismatched q: the ELBO (K = 1 averaged) has a visible gap, the K = 20,000 bound
    # is within 0.01 nats of log p(x) (its bias is Var(w) / (2 K p(x)^2) ~ 1e-4 here).
    q_mean, q_log_var = post_mean + 0.4, jnp.full_like(x, math.log(0.6))
    lw = log_weights(jax.random.key(1), 20_000, q_mean, q_log_var)
    elbo_estimate = np.asarray(jnp.mean(lw, 0))
    bound = np.asarray(iwae_bound(lw))
    assert np.all(exact - elbo_estimate > 0.05)
    np.testing.assert_allclose(bound, exact, atol=0.01)


# -- gradients -----------------------------------------------------------------------------------


def test_gradients_match_finite_differences(x64):
    rng = _rng(9)
    m, lv, x = (jnp.asarray(rng.normal(size=(2, 3))) for _ in range(3))
    xb = jnp.asarray(rng.uniform(size=(2, 3)))
    key = jax.random.key(3)
    z = jnp.asarray(rng.normal(size=(4, 2, 3)))

    # Every function's outputs in one tuple, checked in float64 (reverse mode, first order)
    # with a single compilation; a failure names the offending output by its position.
    def all_terms(m, lv, x, z):
        return (
            gaussian_kl(m, lv),
            bernoulli_log_likelihood(3.0 * m, xb),
            gaussian_log_likelihood(x, m, lv),
            gaussian_log_density(x, m, lv),
            standard_normal_log_density(x),
            reparameterize(key, m, lv, num_samples=2),
            monte_carlo_kl(z, m, lv),
            elbo(z[:, :, 0], m[:, 0]),
            iwae_bound(z[:, :, 0]),
        )

    check_grads(jax.jit(all_terms), (m, lv, x, z), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 4))),
            "log_var must have the shape of mean",
        ),
        (
            lambda: gaussian_kl(jnp.zeros((2,), jnp.int32), jnp.zeros((2,))),
            "mean must be a floating-point",
        ),
        (lambda: gaussian_kl(jnp.zeros(()), jnp.zeros(())), "mean must have at least 1 axes"),
        (
            lambda: bernoulli_log_likelihood(jnp.zeros((2, 3)), jnp.zeros((2, 1))),
            "x must have the shape of logits",
        ),
        (
            lambda: bernoulli_log_likelihood(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 3))),
            "logits must be a floating",
        ),
        (
            lambda: gaussian_log_likelihood(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.zeros((4,))),
            "log_var must broadcast",
        ),
        (
            lambda: gaussian_log_likelihood(jnp.zeros((2, 3)), jnp.zeros((2, 3, 1)), 0.0),
            "mean must broadcast",
        ),
        (lambda: gaussian_log_density(jnp.zeros(()), 0.0, 0.0), "z must have at least 1 axes"),
        (
            lambda: reparameterize(
                jax.random.key(0), jnp.zeros((2, 3)), jnp.zeros((2, 3)), num_samples=0
            ),
            "num_samples",
        ),
        (
            lambda: reparameterize(jax.random.key(0), jnp.zeros((2, 3)), jnp.zeros((3, 3))),
            "log_var must broadcast",
        ),
        (
            lambda: monte_carlo_kl(jnp.zeros((4, 2, 3)), jnp.zeros((2, 2)), jnp.zeros((2, 2))),
            "mean must have the shape of z[0]",
        ),
        (lambda: elbo(jnp.zeros((3,)), jnp.zeros((3,))), "log_likelihood must have 2 axes"),
        (lambda: elbo(jnp.zeros((2, 3)), jnp.zeros((2,))), "kl must have shape (B,) = (3,)"),
        (lambda: iwae_bound(jnp.zeros((3,))), "log_weights must have 2 axes"),
        (lambda: iwae_bound(jnp.zeros((0, 3))), "K >= 1"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_num_samples_must_be_an_int():
    with pytest.raises(TypeError, match="num_samples must be an int"):
        reparameterize(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros((1, 2)), num_samples=2.0)


# -- precision ---------------------------------------------------------------------------------


def test_bfloat16_inputs_are_computed_and_returned_in_float32():
    # Outputs of a network run under train.compute_dtype=bfloat16: every function casts them up
    # first, so the result is float32 and equals, bit for bit, the float32 computation on the
    # same (bfloat16-representable) values.
    rng = _rng(20)
    bf = lambda shape, scale=1.0: jnp.asarray(rng.normal(scale=scale, size=shape), jnp.bfloat16)
    up = lambda a: jnp.asarray(a, jnp.float32)
    mean, log_var, z = bf((4, 3)), bf((4, 3), 0.5), bf((2, 4, 3))
    logits, x = bf((4, 2, 2, 1), 2.0), jnp.asarray(rng.uniform(size=(4, 2, 2, 1)) > 0.5)
    lw = bf((5, 4), 3.0)
    cases = [
        (gaussian_kl, (mean, log_var)),
        (bernoulli_log_likelihood, (logits, x)),
        (gaussian_log_likelihood, (logits, mean[:, :1, None, None], log_var[:, :1, None, None])),
        (gaussian_log_density, (z[0], mean, log_var)),
        (standard_normal_log_density, (z[0],)),
        (monte_carlo_kl, (z, mean, log_var)),
        (elbo, (bf((2, 4), 10.0), jnp.abs(bf((4,))))),
        (iwae_bound, (lw,)),
    ]
    for fn, args in cases:
        got = fn(*args)
        want = fn(*(up(a) if a.dtype == jnp.bfloat16 else a for a in args))
        assert got.dtype == jnp.float32, fn.__name__
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=fn.__name__)
    key = jax.random.key(0)
    z = reparameterize(key, mean, log_var, num_samples=2)
    assert z.dtype == jnp.float32
    np.testing.assert_array_equal(z, reparameterize(key, up(mean), up(log_var), num_samples=2))
