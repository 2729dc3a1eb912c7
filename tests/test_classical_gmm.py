"""Tests for genjax.classical.gmm: EM monotonicity, scikit-learn agreement, sampling, k-means++."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from genjax.classical import (
    COVARIANCE_TYPES,
    GaussianMixture,
    em_step,
    fit_gmm,
    gmm_log_likelihood,
    init_from_centres,
    kmeans_plus_plus,
    mixture_moments,
    sample_gmm,
    toy_mixture_2d,
)
from genjax.classical.gmm import _kmeans_plus_plus


def _toy(n=1500, seed=0):
    return np.asarray(toy_mixture_2d(jax.random.key(seed), n)[0])


def _random_params(rng, k, d, covariance_type, dtype=np.float64):
    w = rng.dirichlet(np.ones(k) * 3)
    mu = rng.normal(size=(k, d)) * 3
    if covariance_type == "spherical":
        cov = rng.uniform(0.3, 2.0, size=k)
    elif covariance_type == "diag":
        cov = rng.uniform(0.3, 2.0, size=(k, d))
    else:
        a = rng.normal(size=(k, d, d))
        cov = a @ np.swapaxes(a, -1, -2) / d + 0.3 * np.eye(d)
    return GaussianMixture(*(jnp.asarray(v, dtype) for v in (w, mu, cov)), covariance_type)


def _dense_cov(params):
    cov = np.asarray(params.covariances)
    d = params.means.shape[1]
    if params.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    if params.covariance_type == "spherical":
        return cov[:, None, None] * np.eye(d)
    return cov


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_likelihood_matches_scipy(covariance_type):
    # Independent reference: scipy's multivariate normal densities mixed in float64.
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        params = _random_params(rng, 4, 3, covariance_type)
        x = rng.normal(size=(50, 3)) * 3
        ours = np.asarray(gmm_log_likelihood(params, jnp.asarray(x)))
    dens = sum(
        w * multivariate_normal(m, c).pdf(x)
        for w, m, c in zip(
            np.asarray(params.weights), np.asarray(params.means), _dense_cov(params), strict=True
        )
    )
    np.testing.assert_allclose(ours, np.log(dens), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_log_likelihood_non_decreasing(covariance_type):
    # In float64 EM's log-likelihood (with reg_covar = 1e-6) must never decrease; 1e-12
    # relative allows only for float64 rounding of a mean over 1500 examples.
    with jax.enable_x64(True):
        x = _toy().astype(np.float64)
        _, hist = fit_gmm(
            jax.random.key(3), x, 5, covariance_type=covariance_type, max_iters=25, tol=0.0
        )
        ll = hist["log_likelihood"]
        assert hist["n_iter"] == 25 and len(ll) == 25 and not hist["converged"]
        assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:])), np.diff(ll).min()
        assert ll[-1] > ll[0]


def test_em_step_reports_incoming_log_likelihood():
    x = jnp.asarray(_toy())
    p0 = init_from_centres(x, kmeans_plus_plus(jax.random.key(0), x, 5)[0], "full")
    p1, ll = em_step(p0, x)
    np.testing.assert_allclose(ll, jnp.mean(gmm_log_likelihood(p0, x)), rtol=1e-6)
    np.testing.assert_allclose(jnp.sum(p1.weights), 1.0, rtol=1e-6)


def _sklearn_fit(x, p0, covariance_type, iters, reg_covar):
    cov = np.asarray(p0.covariances, np.float64)
    prec = np.linalg.inv(cov) if covariance_type == "full" else 1.0 / cov
    w = np.asarray(p0.weights, np.float64)
    sk = SkGaussianMixture(
        p0.means.shape[0],
        covariance_type=covariance_type,
        weights_init=w / w.sum(),
        means_init=np.asarray(p0.means, np.float64),
        precisions_init=prec,
        max_iter=iters,
        tol=0.0,
        reg_covar=reg_covar,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0 runs all iterations
        return sk.fit(x)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("x64", [True, False])
def test_matches_sklearn_gaussian_mixture(covariance_type, x64):
    # Same data, same initial weights/means/precisions, same reg_covar, 25 EM iterations each
    # (tol = 0). scikit-learn computes in float64: in float64 we agree to 1e-10 relative (on
    # the 2-D toy data and on 64-D digits); in float32 rounding (eps 1.2e-7) accumulates over
    # 25 iterations, so the average log-likelihood is compared at 1e-5 relative (observed 1e-7).
    rtol = 1e-10 if x64 else 1e-5
    # float64 copies: scikit-learn keeps float32 input in float32.
    cases = [(_toy().astype(np.float64), 5, 1e-6)]
    if x64:
        cases.append((load_digits().data[:600] / 16.0, 6, 1e-2))
    with jax.enable_x64(x64):
        dtype = np.float64 if x64 else np.float32
        for x, k, reg in cases:
            xj = jnp.asarray(x, dtype)
            p0 = init_from_centres(
                xj, kmeans_plus_plus(jax.random.key(1), xj, k)[0], covariance_type, reg
            )
            params, hist = fit_gmm(
                None,
                xj,
                k,
                covariance_type=covariance_type,
                init=p0,
                max_iters=25,
                tol=0.0,
                reg_covar=reg,
            )
            sk = _sklearn_fit(x, p0, covariance_type, 25, reg)
            assert sk.n_iter_ == hist["n_iter"] == 25
            np.testing.assert_allclose(hist["final_log_likelihood"], sk.score(x), rtol=rtol)
            np.testing.assert_allclose(params.weights, sk.weights_, rtol=100 * rtol, atol=1e-7)
            np.testing.assert_allclose(params.means, sk.means_, rtol=100 * rtol, atol=1e-5)


def test_restarts_keep_the_best():
    params, hist = fit_gmm(jax.random.key(0), _toy(), 5, num_restarts=3, max_iters=25)
    assert len(hist["restart_log_likelihoods"]) == 3
    assert hist["final_log_likelihood"] == max(hist["restart_log_likelihoods"])
    np.testing.assert_allclose(
        jnp.mean(gmm_log_likelihood(params, jnp.asarray(_toy()))),
        hist["final_log_likelihood"],
        rtol=1e-6,
    )
    assert hist["converged"] and hist["n_iter"] < 25
    leaves = jax.tree.leaves(params)
    assert len(leaves) == 3 and params.covariances.shape == (5, 2, 2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ancestral_sampling_moments(covariance_type):
    # n = 200k samples. Every sample mean, sample covariance entry and component frequency
    # must lie within 5 standard errors of the exact value (standard errors estimated from
    # the samples themselves; the mixture is not Gaussian, so no closed form is assumed).
    params = _random_params(np.random.default_rng(1), 3, 3, covariance_type, np.float32)
    n = 200_000
    x, comp = sample_gmm(jax.random.key(0), params, n)
    x, comp = np.asarray(x, np.float64), np.asarray(comp)
    w = np.asarray(params.weights, np.float64)
    mean = w @ np.asarray(params.means, np.float64)
    cov = sum(
        wk * (c + np.outer(m, m))
        for wk, m, c in zip(
            w, np.asarray(params.means, np.float64), _dense_cov(params), strict=True
        )
    )
    cov = cov - np.outer(mean, mean)
    freq = np.bincount(comp, minlength=3) / n
    assert np.all(np.abs(freq - w) < 5 * np.sqrt(w * (1 - w) / n))
    assert np.all(np.abs(x.mean(0) - mean) < 5 * x.std(0) / np.sqrt(n))
    xc = x - mean
    prods = xc[:, :, None] * xc[:, None, :]
    assert np.all(np.abs(prods.mean(0) - cov) < 5 * prods.std(0) / np.sqrt(n))
    m_ours, c_ours = mixture_moments(params)
    np.testing.assert_allclose(m_ours, mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_ours, cov, rtol=1e-5, atol=1e-5)


def test_kmeans_plus_plus_picks_data_points():
    x = jnp.asarray(_toy())
    centres, idx = kmeans_plus_plus(jax.random.key(0), x, 5)
    np.testing.assert_array_equal(centres, x[idx])
    assert len(set(np.asarray(idx).tolist())) == 5
    # D^2 weighting never re-picks a chosen point, so k = N is a permutation.
    _, idx = kmeans_plus_plus(jax.random.key(1), x[:20], 20)
    assert sorted(np.asarray(idx).tolist()) == list(range(20))
    # All points identical: falls back to uniform choice, still valid indices.
    _, idx = kmeans_plus_plus(jax.random.key(2), jnp.ones((20, 2)), 20)
    assert np.all((np.asarray(idx) >= 0) & (np.asarray(idx) < 20))


def test_kmeans_plus_plus_d2_distribution():
    # Points 0, 1, 3 on a line; first centre uniform, second with probability d^2 / sum d^2.
    # 20k draws: each ordered pair's frequency within 5 binomial standard errors of exact.
    x = jnp.array([[0.0], [1.0], [3.0]])
    keys = jax.random.split(jax.random.key(0), 20_000)
    # The validated public wrapper inspects values, so vmap the jitted core directly.
    idx = np.asarray(jax.vmap(lambda k: _kmeans_plus_plus(k, x, 2)[1])(keys))
    pts = np.array([0.0, 1.0, 3.0])
    for i in range(3):
        d2 = (pts - pts[i]) ** 2
        for j in range(3):
            p = d2[j] / d2.sum() / 3
            f = np.mean((idx[:, 0] == i) & (idx[:, 1] == j))
            assert abs(f - p) <= 5 * np.sqrt(p * (1 - p) / len(keys)) + 1e-12, (i, j, f, p)


def test_toy_mixture_2d_is_seeded():
    a, ca = toy_mixture_2d(jax.random.key(5), 100)
    b, cb = toy_mixture_2d(jax.random.key(5), 100)
    assert a.shape == (100, 2) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": np.array([[0.0, np.nan], [1.0, 2.0]])}, ValueError, "finite"),
        ({"num_components": 11}, ValueError, "num_components"),
        ({"num_components": 0}, ValueError, "num_components"),
        ({"x": np.arange(20, dtype=np.int32).reshape(10, 2)}, TypeError, "floating"),
        ({"x": np.ones(10, np.float32)}, ValueError, r"\(N, D\)"),
        ({"covariance_type": "tied"}, ValueError, "covariance_type"),
        ({"init": "random"}, ValueError, "init"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"num_restarts": 0}, ValueError, "num_restarts"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {
        "x": np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32),
        "num_components": 2,
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fit_gmm(jax.random.key(0), args.pop("x"), args.pop("num_components"), **args)


def test_bad_init_shape():
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    bad = GaussianMixture(jnp.ones(3) / 3, jnp.zeros((3, 2)), jnp.ones((3, 2)), "full")
    with pytest.raises(ValueError, match="init.covariances"):
        fit_gmm(None, x, 3, init=bad)
    with pytest.raises(ValueError, match="k must be"):
        kmeans_plus_plus(jax.random.key(0), x, 11)


def test_shape_mismatch():
    params = _random_params(np.random.default_rng(0), 2, 3, "diag", np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        gmm_log_likelihood(params, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        em_step(params, jnp.ones(3))
    with pytest.raises(ValueError, match="n must be"):
        sample_gmm(jax.random.key(0), params, 0)


def test_singular_covariance_raises():
    # Two distinct points repeated, three full-covariance components and reg_covar = 0:
    # every component's covariance is singular, so EM cannot produce a finite likelihood.
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]], np.float32), 10, axis=0)
    with pytest.raises(ValueError, match="reg_covar"):
        fit_gmm(jax.random.key(0), x, 3, reg_covar=0.0, max_iters=3)
