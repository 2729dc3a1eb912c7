"""Probabilistic principal component analysis (Tipping & Bishop 1999).

The model, its maximum-likelihood solution and its EM algorithm:

    z ~ N(0, I_q),  x | z ~ N(W z + mu, sigma^2 I_D)             (T&B Eqs. 2-3)
    p(x) = N(x | mu, C),  C = W W^T + sigma^2 I_D                 (T&B Eq. 4)
    L = -N/2 (D log 2 pi + log|C| + tr(C^{-1} S))                 (T&B Eq. 5)
    W_ML = U_q (Lambda_q - sigma^2 I)^{1/2},  sigma^2_ML = sum_{j>q} lambda_j / (D - q)   (Eqs. 7-8)
    E[z | x] = M^{-1} W^T (x - mu),  M = W^T W + sigma^2 I_q      (T&B Eq. 6, Sec. 3.2)
    EM: W' = S W (sigma^2 I + M^{-1} W^T S W)^{-1}                (T&B Eq. 29)
        sigma^2' = tr(S - S W M^{-1} W'^T) / D                    (T&B Eq. 30)

S is the maximum-likelihood sample covariance (divided by N). scikit-learn's ``PCA`` divides by
N - 1 instead (and averages the discarded eigenvalues over min(N, D) - q of them); both are
PPCA, fitted to slightly different covariance estimates. Log-likelihoods are per example, in
nats, of the continuous density; C^{-1} and log|C| go through the q x q matrix M (Woodbury).

References:
  Tipping & Bishop (1999), Probabilistic principal component analysis, JRSS B 61(3).
"""

from __future__ import annotations

import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from genjax.classical.gmm import check_data, check_matches


@flax.struct.dataclass
class PPCA:
    """Parameters of a probabilistic PCA model (a pytree; checkpointable).

    Attributes:
      mean: ``(D,)`` data mean mu.
      weight: ``(D, q)`` factor loadings W.
      noise_variance: scalar isotropic noise variance sigma^2.
    """

    mean: jax.Array
    weight: jax.Array
    noise_variance: jax.Array


def _check_latent_dim(latent_dim: Any, d: int) -> int:
    if not isinstance(latent_dim, int | np.integer) or not 1 <= latent_dim < d:
        raise ValueError(f"latent_dim must be an integer in [1, D={d}), got {latent_dim!r}")
    return int(latent_dim)


@jax.jit
def _moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and maximum-likelihood (divide-by-N) covariance S of ``x``."""
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    return mean, xc.T @ xc / x.shape[0]


def fit_ppca_closed_form(x: Any, latent_dim: int) -> PPCA:
    """Maximum-likelihood PPCA in closed form (Tipping & Bishop 1999, Eqs. 7-8, with R = I).

    The eigenvalues of S come from an SVD of the centred data; sigma^2 is the mean of the
    D - q discarded eigenvalues (their sum is tr S minus the q largest).

    Args:
      x: ``(N, D)`` finite floating data.
      latent_dim: q, ``1 <= q < D``.

    Returns:
      The fitted ``PPCA``; W's columns are the principal directions scaled by
      sqrt(lambda_i - sigma^2), in decreasing order of eigenvalue.
    """
    x = check_data(x)
    q = _check_latent_dim(latent_dim, x.shape[1])
    return _closed_form(x, q)


@jax.jit(static_argnames="q")
def _closed_form(x: jax.Array, q: int) -> PPCA:
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    _, s, vt = jnp.linalg.svd(xc, full_matrices=False)
    eig = s**2 / n
    eig_q = jnp.concatenate([eig, jnp.zeros((max(q - eig.shape[0], 0),), x.dtype)])[:q]
    vt_q = jnp.concatenate([vt, jnp.zeros((max(q - vt.shape[0], 0), d), x.dtype)])[:q]
    sigma2 = (jnp.sum(xc * xc) / n - jnp.sum(eig_q)) / (d - q)
    weight = vt_q.T * jnp.sqrt(jnp.maximum(eig_q - sigma2, 0.0))[None, :]
    return PPCA(mean, weight, sigma2)


def _m_matrix(params: PPCA) -> jax.Array:
    q = params.weight.shape[1]
    eye = jnp.eye(q, dtype=params.weight.dtype)
    return params.weight.T @ params.weight + params.noise_variance * eye


@jax.jit
def ppca_log_likelihood(params: PPCA, x: jax.Array) -> jax.Array:
    """Per-example log-likelihood log N(x_n | mu, W W^T + sigma^2 I) (T&B 1999, Eq. 4).

    Uses log|C| = (D - q) log sigma^2 + log|M| and
    C^{-1} = (I - W M^{-1} W^T) / sigma^2.

    Args:
      params: the model.
      x: ``(N, D)`` data.

    Returns:
      ``(N,)`` log-likelihoods in nats per example.
    """
    check_matches(x, params.mean.shape[0])
    d, q = params.weight.shape
    s2 = params.noise_variance
    chol = jnp.linalg.cholesky(_m_matrix(params))
    e = x - params.mean
    v = jax.scipy.linalg.solve_triangular(chol, params.weight.T @ e.T, lower=True)  # (q, N)
    maha = (jnp.sum(e * e, axis=-1) - jnp.sum(v * v, axis=0)) / s2
    log_det = (d - q) * jnp.log(s2) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return -0.5 * (d * math.log(2.0 * math.pi) + log_det + maha)


@jax.jit
def ppca_posterior_mean(params: PPCA, x: jax.Array) -> jax.Array:
    """Posterior latent means E[z | x_n] = M^{-1} W^T (x_n - mu) (T&B 1999, Sec. 3.2).

    Args:
      params: the model.
      x: ``(N, D)`` data.

    Returns:
      ``(N, q)`` posterior means. (The posterior covariance is sigma^2 M^{-1}.)
    """
    check_matches(x, params.mean.shape[0])
    return jnp.linalg.solve(_m_matrix(params), params.weight.T @ (x - params.mean).T).T


@jax.jit(static_argnames="n")
def sample_ppca(key: jax.Array, params: PPCA, n: int) -> tuple[jax.Array, jax.Array]:
    """Ancestral sampling: z ~ N(0, I_q), x = W z + mu + eps, eps ~ N(0, sigma^2 I) (T&B Eq. 2).

    Args:
      key: PRNG key.
      params: the model.
      n: number of samples.

    Returns:
      ``(x, z)``: ``(n, D)`` samples and their ``(n, q)`` latent codes.
    """
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    d, q = params.weight.shape
    z_key, e_key = jax.random.split(key)
    z = jax.random.normal(z_key, (n, q), params.weight.dtype)
    eps = jax.random.normal(e_key, (n, d), params.weight.dtype)
    return z @ params.weight.T + params.mean + jnp.sqrt(params.noise_variance) * eps, z


def _mean_log_likelihood_from_cov(weight, s2, cov):
    """(1/N) L = -(D log 2 pi + log|C| + tr(C^{-1} S)) / 2 (T&B Eq. 5), via M (q x q)."""
    d, q = weight.shape
    m = weight.T @ weight + s2 * jnp.eye(q, dtype=weight.dtype)
    chol = jnp.linalg.cholesky(m)
    a = jax.scipy.linalg.solve_triangular(chol, weight.T, lower=True)  # L^{-1} W^T
    tr = (jnp.trace(cov) - jnp.sum((a @ cov) * a)) / s2
    log_det = (d - q) * jnp.log(s2) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return -0.5 * (d * math.log(2.0 * math.pi) + log_det + tr)


@jax.jit(static_argnames="max_iters")
def _run_em(weight, s2, cov, tol, max_iters: int):
    d, q = weight.shape
    eye = jnp.eye(q, dtype=weight.dtype)

    def body(c):
        i, w, s2, prev, hist, _ = c
        ll = _mean_log_likelihood_from_cov(w, s2, cov)
        # Eq. 29 rewritten with symmetric positive-definite factors only:
        # (s2 I + M^{-1} W^T S W)^{-1} = (s2 M + W^T S W)^{-1} M.
        m = jax.scipy.linalg.cho_factor(w.T @ w + s2 * eye, lower=True)
        sw = cov @ w
        b = jax.scipy.linalg.cho_factor(s2 * (w.T @ w + s2 * eye) + w.T @ sw, lower=True)
        w_new = sw @ jax.scipy.linalg.cho_solve(b, w.T @ w + s2 * eye)  # Eq. 29
        minv_w_new_t = jax.scipy.linalg.cho_solve(m, w_new.T)
        s2_new = (jnp.trace(cov) - jnp.sum(sw * minv_w_new_t.T)) / d  # Eq. 30
        return i + 1, w_new, s2_new, ll, hist.at[i].set(ll), jnp.abs(ll - prev) < tol

    def cond(c):
        return (c[0] < max_iters) & ~c[-1]

    hist = jnp.full((max_iters,), jnp.nan, weight.dtype)
    init = (jnp.int32(0), weight, s2, jnp.asarray(-jnp.inf, weight.dtype), hist, jnp.bool_(False))
    n_iter, weight, s2, _, hist, converged = jax.lax.while_loop(cond, body, init)
    return weight, s2, hist, n_iter, converged


def fit_ppca_em(
    key: jax.Array, x: Any, latent_dim: int, *, max_iters: int = 1000, tol: float = 1e-6
) -> tuple[PPCA, dict[str, Any]]:
    """Maximum-likelihood PPCA by EM (Tipping & Bishop 1999, Sec. 3.2 and Eqs. 29-30).

    Each iteration costs O(D^2 q) given S; it runs in one jitted ``lax.while_loop`` that stops
    when the mean log-likelihood (nats per example) changes by less than ``tol`` or after
    ``max_iters`` iterations. W starts from N(0, 1) entries scaled to the data, sigma^2 from tr S / D.

    Args:
      key: PRNG key for the initial W.
      x: ``(N, D)`` finite floating data.
      latent_dim: q, ``1 <= q < D``.
      max_iters: maximum number of EM iterations (>= 1).
      tol: stopping tolerance on the change of the mean log-likelihood, in nats (0: never).

    Returns:
      ``(params, history)`` with ``history`` = ``log_likelihood`` (numpy ``(n_iter,)``, mean
      log-likelihood before each update), ``n_iter``, ``converged``, ``final_log_likelihood``.
      W converges to the closed form up to a rotation (T&B Sec. 3.2).
    """
    x = check_data(x)
    n, d = x.shape
    q = _check_latent_dim(latent_dim, d)
    if not isinstance(max_iters, int | np.integer) or max_iters < 1:
        raise ValueError(f"max_iters must be a positive integer, got {max_iters!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    mean, cov = _moments(x)
    s2 = jnp.trace(cov) / d
    weight = jax.random.normal(key, (d, q), x.dtype) * jnp.sqrt(s2)
    weight, s2, hist, n_iter, conv = _run_em(weight, s2, cov, tol, int(max_iters))
    params = PPCA(mean, weight, s2)
    final = float(_mean_log_likelihood_from_cov(weight, s2, cov))
    history = {
        "log_likelihood": np.asarray(hist)[: int(n_iter)],
        "n_iter": int(n_iter),
        "converged": bool(conv),
        "final_log_likelihood": final,
    }
    return params, history


@jax.jit
def principal_directions(params: PPCA) -> jax.Array:
    """Orthonormal basis ``(D, q)`` of span(W): its left singular vectors, largest first.

    For the maximum-likelihood W = U_q (Lambda_q - sigma^2 I)^{1/2} R, any rotation R, these
    are the top-q eigenvectors U_q of S up to sign (T&B 1999, Sec. 3.2).
    """
    u, _, _ = jnp.linalg.svd(params.weight, full_matrices=False)
    return u
