"""Tests for genjax.classical.ppca: closed form vs scikit-learn, EM, posterior, sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from genjax.classical import (
    PPCA,
    fit_ppca_closed_form,
    fit_ppca_em,
    ppca_log_likelihood,
    ppca_posterior_mean,
    principal_angles,
    principal_directions,
    sample_ppca,
)


def _digits():
    return load_digits().data / 16.0  # (1797, 64) float64 in [0, 1]


@pytest.mark.parametrize("q", [2, 10])
@pytest.mark.parametrize("x64", [True, False])
def test_closed_form_matches_sklearn_pca_score(q, x64):
    # sklearn's PCA.score(X) is the mean PPCA log-likelihood, but sklearn fits the covariance
    # divided by N - 1. Fitting sklearn to the data shrunk by sqrt((N-1)/N) about its mean
    # makes that estimate equal our divide-by-N maximum-likelihood S, so both models must
    # coincide and score X identically. float64: 1e-10 relative; float32: the SVD and the
    # per-example sums lose ~1e-6 of 64-D terms of size ~10, hence 1e-5 relative + 1e-4 nats.
    x = _digits()
    n = len(x)
    m = x.mean(0)
    sk = PCA(q, svd_solver="full").fit(m + (x - m) * np.sqrt((n - 1) / n))
    with jax.enable_x64(x64):
        dtype = np.float64 if x64 else np.float32
        p = fit_ppca_closed_form(x.astype(dtype), q)
        ours = float(jnp.mean(ppca_log_likelihood(p, jnp.asarray(x, dtype))))
    tol = {"rtol": 1e-10} if x64 else {"rtol": 1e-5, "atol": 1e-4}
    np.testing.assert_allclose(ours, sk.score(x), **tol)
    np.testing.assert_allclose(p.noise_variance, sk.noise_variance_, rtol=1e-10 if x64 else 1e-4)


def test_closed_form_structure():
    # W^T W = Lambda_q - sigma^2 I (T&B Eq. 7 with R = I); sigma^2 = mean discarded eigenvalue.
    with jax.enable_x64(True):
        x = _digits()
        p = fit_ppca_closed_form(x, 5)
        xc = x - x.mean(0)
        lam, vec = np.linalg.eigh(xc.T @ xc / len(x))
        lam, vec = lam[::-1], vec[:, ::-1]
        np.testing.assert_allclose(p.noise_variance, lam[5:].mean(), rtol=1e-10)
        np.testing.assert_allclose(
            np.asarray(p.weight.T @ p.weight), np.diag(lam[:5] - lam[5:].mean()), atol=1e-12
        )
        u = np.asarray(principal_directions(p))
        np.testing.assert_allclose(np.abs(np.sum(u * vec[:, :5], axis=0)), 1.0, rtol=1e-8)


def test_log_likelihood_matches_scipy():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        p = PPCA(
            jnp.asarray(rng.normal(size=6)), jnp.asarray(rng.normal(size=(6, 2))), jnp.asarray(0.3)
        )
        x = rng.normal(size=(20, 6))
        ours = np.asarray(ppca_log_likelihood(p, jnp.asarray(x)))
    c = np.asarray(p.weight) @ np.asarray(p.weight).T + 0.3 * np.eye(6)  # T&B Eq. 4
    np.testing.assert_allclose(
        ours, multivariate_normal(np.asarray(p.mean), c).logpdf(x), rtol=1e-12
    )


def test_em_converges_to_closed_form():
    # Float64 EM with tol 1e-10 nats: log-likelihood within 1e-8 relative of the closed form,
    # non-decreasing at every iteration (1e-12 relative rounding slack), same subspace.
    with jax.enable_x64(True):
        x = _digits()
        closed = fit_ppca_closed_form(x, 5)
        em, hist = fit_ppca_em(jax.random.key(0), x, 5, max_iters=3000, tol=1e-10)
        ll_closed = float(jnp.mean(ppca_log_likelihood(closed, jnp.asarray(x))))
        ll_em = float(jnp.mean(ppca_log_likelihood(em, jnp.asarray(x))))
        angles = np.asarray(principal_angles(closed.weight, em.weight))
    assert hist["converged"] and hist["n_iter"] < 3000
    np.testing.assert_allclose(ll_em, ll_closed, rtol=1e-8)
    np.testing.assert_allclose(hist["final_log_likelihood"], ll_em, rtol=1e-10)
    ll = hist["log_likelihood"]
    assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:])), np.diff(ll).min()
    assert angles.max() < 1e-3
    np.testing.assert_allclose(em.noise_variance, closed.noise_variance, rtol=1e-5)


def test_posterior_mean_formula():
    # E[z|x] from Gaussian conditioning of the joint (z, x): cov(z, x) = W^T, cov(x) = C,
    # so E[z|x] = W^T C^{-1} (x - mu); T&B's M^{-1} W^T (x - mu) must agree.
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        w, mu, s2 = rng.normal(size=(7, 3)), rng.normal(size=7), 0.5
        x = rng.normal(size=(10, 7))
        ours = np.asarray(
            ppca_posterior_mean(
                PPCA(jnp.asarray(mu), jnp.asarray(w), jnp.asarray(s2)), jnp.asarray(x)
            )
        )
    c = w @ w.T + s2 * np.eye(7)
    np.testing.assert_allclose(ours, np.linalg.solve(c, (x - mu).T).T @ w, rtol=1e-10)


def test_sampling_covariance():
    # 200k samples: each entry of the sample covariance within 5 standard errors of
    # C = W W^T + sigma^2 I, with the Gaussian standard error sqrt((C_ii C_jj + C_ij^2) / n).
    rng = np.random.default_rng(2)
    p = PPCA(
        jnp.asarray(rng.normal(size=5), jnp.float32),
        jnp.asarray(rng.normal(size=(5, 2)), jnp.float32),
        jnp.asarray(0.2, jnp.float32),
    )
    n = 200_000
    x, z = sample_ppca(jax.random.key(0), p, n)
    x = np.asarray(x, np.float64)
    assert z.shape == (n, 2)
    w = np.asarray(p.weight, np.float64)
    c = w @ w.T + 0.2 * np.eye(5)
    se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)
    assert np.all(np.abs(np.cov(x.T, bias=True) - c) < 5 * se)
    assert np.all(np.abs(x.mean(0) - np.asarray(p.mean)) < 5 * np.sqrt(np.diag(c) / n))


@pytest.mark.parametrize(
    ("x", "q", "error", "match"),
    [
        (np.full((5, 3), np.nan), 1, ValueError, "finite"),
        (np.ones((5, 3)), 3, ValueError, "latent_dim"),
        (np.ones((5, 3)), 0, ValueError, "latent_dim"),
        (np.ones((5, 3)), 1.5, ValueError, "latent_dim"),
        (np.ones((5, 3), np.int64), 1, TypeError, "floating"),
        (np.ones((5, 3, 1)), 1, ValueError, r"\(N, D\)"),
    ],
)
def test_bad_input(x, q, error, match):
    with pytest.raises(error, match=match):
        fit_ppca_closed_form(x, q)
    with pytest.raises(error, match=match):
        fit_ppca_em(jax.random.key(0), x, q)


def test_shape_mismatch():
    p = fit_ppca_closed_form(np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), 2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\)"):
        ppca_log_likelihood(p, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\)"):
        ppca_posterior_mean(p, jnp.ones(4))
    with pytest.raises(ValueError, match="n must be"):
        sample_ppca(jax.random.key(0), p, 0)
