"""Gaussian mixture model fitted by expectation-maximization, in the log domain.

The model and the algorithm, top to bottom (Bishop 2006, Sec. 9.2; Dempster et al. 1977):

    p(x) = sum_k pi_k N(x | mu_k, Sigma_k)                              (Bishop Eq. 9.7)
    E-step: log r_nk = log pi_k + log N(x_n | mu_k, Sigma_k) - logsumexp_j(...)   (Eq. 9.23)
    M-step: N_k = sum_n r_nk + 10 eps,  pi_k = N_k / sum_j N_j,  mu_k = sum_n r_nk x_n / N_k
            Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I   (Eqs. 9.24-9.26)

Covariance forms (``covariance_type``), as in scikit-learn's ``GaussianMixture``:

* ``"spherical"``: Sigma_k = s_k I with one variance per component (the course's sigma I,
  but per component, which is what scikit-learn calls spherical); stored as ``(K,)``.
* ``"diag"``: Sigma_k = diag(v_k); stored as ``(K, D)``.
* ``"full"``: stored as ``(K, D, D)``.

``reg_covar`` (default 1e-6, scikit-learn's default) is added to every variance after each
M-step so that no component collapses onto a single point; with it the M-step maximizes the
expected complete-data log-likelihood plus -N_k reg_covar tr(Sigma_k^{-1}) / 2, and the
log-likelihood is non-decreasing in practice (tested; exactly so for ``reg_covar = 0``).
The ``10 eps`` added to N_k (as scikit-learn does) keeps an empty component finite.

Log-likelihoods are per example, in nats, of the continuous density. The E- and M-steps visit
the components one after another (``lax.map``): memory is O(N D + N K), never O(N K D), and
on CPU this is several times faster than one batched ``(N, K, D)`` computation.

References:
  Dempster, Laird & Rubin (1977), Maximum likelihood from incomplete data via the EM algorithm.
  Bishop (2006), Pattern Recognition and Machine Learning, Sec. 9.2.
  Arthur & Vassilvitskii (2007), k-means++: the advantages of careful seeding.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

COVARIANCE_TYPES = ("spherical", "diag", "full")

_log = logging.getLogger(__name__)


@flax.struct.dataclass
class GaussianMixture:
    """Parameters of a fitted Gaussian mixture (a pytree; checkpointable).

    Attributes:
      weights: ``(K,)`` mixing proportions pi_k, summing to one.
      means: ``(K, D)`` component means mu_k.
      covariances: ``(K,)`` variances (spherical), ``(K, D)`` (diag) or ``(K, D, D)`` (full).
      covariance_type: ``"spherical"``, ``"diag"`` or ``"full"`` (static, not a leaf).
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    covariance_type: str = flax.struct.field(pytree_node=False, default="full")


def check_data(x: Any, name: str = "x") -> jax.Array:
    """Returns ``x`` as a finite floating ``(N, D)`` array or raises ``ValueError``/``TypeError``."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array of shape (N, D), got {type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1, got {x.shape}")
    x = jnp.asarray(x)
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return x


def check_matches(x: jax.Array, d: int, name: str = "x") -> None:
    """Raises ``ValueError`` unless ``x`` has shape ``(N, d)`` (a trace-time check)."""
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name} must have shape (N, {d}) to match the model, got {x.shape}")


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        )


def component_log_densities(params: GaussianMixture, x: jax.Array) -> jax.Array:
    """log N(x_n | mu_k, Sigma_k) for every example and component, ``(N, K)``, in nats.

    Full covariances use the Cholesky factor L_k of Sigma_k:
    log N = -(D log 2 pi + ||L_k^{-1}(x - mu_k)||^2) / 2 - sum_i log L_k,ii.
    Components are visited one after another (``lax.map``), so memory is O(N D + N K).
    """
    d = x.shape[-1]
    const = d * math.log(2.0 * math.pi)
    cov = params.covariances
    if params.covariance_type == "full":
        chol = jnp.linalg.cholesky(cov)  # (K, D, D), lower
        eye = jnp.eye(d, dtype=x.dtype)
        inv_chol = jax.vmap(lambda c: jax.scipy.linalg.solve_triangular(c, eye, lower=True))(chol)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)

        def mahalanobis(args):
            mean, inv_l = args
            y = (x - mean) @ inv_l.T  # L_k^{-1} (x_n - mu_k), row-wise
            return jnp.sum(y * y, axis=-1)

        maha = jax.lax.map(mahalanobis, (params.means, inv_chol))
    elif params.covariance_type == "diag":
        log_det = jnp.sum(jnp.log(cov), axis=-1)
        maha = jax.lax.map(lambda a: jnp.sum((x - a[0]) ** 2 / a[1], axis=-1), (params.means, cov))
    else:
        log_det = d * jnp.log(cov)
        maha = jax.lax.map(lambda a: jnp.sum((x - a[0]) ** 2, axis=-1) / a[1], (params.means, cov))
    return -0.5 * (const + log_det[None, :] + maha.T)


@jax.jit
def gmm_log_likelihood(params: GaussianMixture, x: jax.Array) -> jax.Array:
    """Per-example log-likelihood log p(x_n) = logsumexp_k (log pi_k + log N(x_n|mu_k,Sigma_k)).

    Args:
      params: the mixture.
      x: ``(N, D)`` data.

    Returns:
      ``(N,)`` log-likelihoods in nats per example (Bishop 2006, Eq. 9.14).
    """
    check_matches(x, params.means.shape[1])
    joint = component_log_densities(params, x) + jnp.log(params.weights)[None, :]
    return jax.nn.logsumexp(joint, axis=-1)


def _m_step(
    x: jax.Array, resp: jax.Array, covariance_type: str, reg_covar: jax.Array
) -> GaussianMixture:
    """Maximization step from responsibilities ``(N, K)`` (Bishop 2006, Eqs. 9.24-9.27)."""
    nk = jnp.sum(resp, axis=0) + 10.0 * jnp.finfo(x.dtype).eps
    means = (resp.T @ x) / nk[:, None]

    def scatter(args):  # sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T, or its diagonal
        r, mean = args
        diff = x - mean
        if covariance_type == "full":
            return (diff * r[:, None]).T @ diff
        return r @ (diff * diff)

    scatters = jax.lax.map(scatter, (resp.T, means))
    if covariance_type == "full":
        cov = scatters / nk[:, None, None] + reg_covar * jnp.eye(x.shape[1], dtype=x.dtype)
    else:
        cov = scatters / nk[:, None] + reg_covar
        if covariance_type == "spherical":
            cov = jnp.mean(cov, axis=-1)
    return GaussianMixture(nk / jnp.sum(nk), means, cov, covariance_type)


@jax.jit
def em_step(
    params: GaussianMixture, x: jax.Array, reg_covar: float | jax.Array = 1e-6
) -> tuple[GaussianMixture, jax.Array]:
    """One EM iteration in the log domain.

    Args:
      params: current mixture.
      x: ``(N, D)`` data.
      reg_covar: non-negative constant added to every variance after the M-step.

    Returns:
      ``(new_params, mean_log_likelihood)``, where the mean log-likelihood (nats per example)
      is that of the *incoming* ``params``, computed in the E-step as scikit-learn does.
    """
    check_matches(x, params.means.shape[1])
    joint = component_log_densities(params, x) + jnp.log(params.weights)[None, :]
    log_norm = jax.nn.logsumexp(joint, axis=-1, keepdims=True)
    resp = jnp.exp(joint - log_norm)
    reg = jnp.asarray(reg_covar, x.dtype)
    return _m_step(x, resp, params.covariance_type, reg), jnp.mean(log_norm)


def kmeans_plus_plus(key: jax.Array, x: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """k-means++ seeding (Arthur & Vassilvitskii 2007, Sec. 2.2, "D^2 weighting").

    The first centre is a uniformly drawn example; each next one is drawn with probability
    proportional to its squared distance to the nearest centre chosen so far.

    Args:
      key: PRNG key.
      x: ``(N, D)`` data.
      k: number of centres, ``1 <= k <= N``.

    Returns:
      ``(centres, indices)``: ``(k, D)`` rows of ``x`` and their ``(k,)`` indices.
    """
    x = check_data(x)
    if not isinstance(k, int | np.integer) or not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be an integer in [1, N={x.shape[0]}], got {k!r}")
    return _kmeans_plus_plus(key, x, int(k))


@jax.jit(static_argnames="k")
def _kmeans_plus_plus(key: jax.Array, x: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    n = x.shape[0]
    keys = jax.random.split(key, k)
    first = jax.random.randint(keys[0], (), 0, n, dtype=jnp.int32)

    def body(i, carry):
        idx, d2 = carry
        d2 = jnp.minimum(d2, jnp.sum((x - x[idx[i - 1]]) ** 2, axis=-1))
        # Uniform over the data when every point already coincides with a centre.
        logits = jnp.where(jnp.any(d2 > 0), jnp.log(d2), jnp.zeros_like(d2))
        return idx.at[i].set(jax.random.categorical(keys[i], logits).astype(idx.dtype)), d2

    idx = jnp.zeros((k,), jnp.int32).at[0].set(first)
    d2 = jnp.full((n,), jnp.inf, x.dtype)
    idx, _ = jax.lax.fori_loop(1, k, body, (idx, d2))
    return x[idx], idx


@jax.jit(static_argnames="covariance_type")
def init_from_centres(
    x: jax.Array, centres: jax.Array, covariance_type: str, reg_covar: float = 1e-6
) -> GaussianMixture:
    """Mixture from a hard assignment of every example to its nearest centre (one M-step).

    Args:
      x: ``(N, D)`` data.
      centres: ``(K, D)`` centres, e.g. from ``kmeans_plus_plus``.
      covariance_type: ``"spherical"``, ``"diag"`` or ``"full"``.
      reg_covar: non-negative constant added to every variance.

    Returns:
      The mixture whose responsibilities are the one-hot nearest-centre assignments.
    """
    _check_covariance_type(covariance_type)
    d2 = jnp.sum((x[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    resp = jax.nn.one_hot(jnp.argmin(d2, axis=-1), centres.shape[0], dtype=x.dtype)
    return _m_step(x, resp, covariance_type, jnp.asarray(reg_covar, x.dtype))


@jax.jit(static_argnames="max_iters")
def _run_em(params, x, reg_covar, tol, max_iters: int):
    """EM until |L_t - L_{t-1}| < tol or max_iters M-steps, in one ``lax.while_loop``."""
    history = jnp.full((max_iters,), jnp.nan, x.dtype)

    def cond(c):
        i, _, _, _, done = c
        return (i < max_iters) & ~done

    def body(c):
        i, p, prev, hist, _ = c
        p, ll = em_step(p, x, reg_covar)
        return i + 1, p, ll, hist.at[i].set(ll), jnp.abs(ll - prev) < tol

    init = (jnp.int32(0), params, jnp.asarray(-jnp.inf, x.dtype), history, jnp.bool_(False))
    n_iter, params, _, history, converged = jax.lax.while_loop(cond, body, init)
    return params, history, n_iter, converged


def fit_gmm(
    key: jax.Array,
    x: Any,
    num_components: int,
    *,
    covariance_type: str = "full",
    num_restarts: int = 1,
    max_iters: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    init: str | GaussianMixture = "kmeans++",
) -> tuple[GaussianMixture, dict[str, Any]]:
    """Fits a Gaussian mixture by EM, keeping the best of several restarts.

    Each restart is one jitted ``lax.while_loop``; it stops when the mean log-likelihood
    (nats per example) changes by less than ``tol`` between iterations (scikit-learn's rule)
    or after ``max_iters`` M-steps. The restart whose final parameters have the highest mean
    log-likelihood on ``x`` is returned.

    Args:
      key: PRNG key (split into one key per restart; unused when ``init`` is given).
      x: ``(N, D)`` finite floating data.
      num_components: K, ``1 <= K <= N``.
      covariance_type: ``"spherical"`` (per-component variance), ``"diag"`` or ``"full"``.
      num_restarts: number of k-means++ initializations (must be 1 when ``init`` is given).
      max_iters: maximum number of EM iterations per restart (0 returns the initialization).
      tol: stopping tolerance on the change of the mean log-likelihood, in nats (0: never).
      reg_covar: non-negative constant added to every variance.
      init: ``"kmeans++"`` (k-means++ centres, each example assigned to the nearest one, one
        M-step) or a ``GaussianMixture`` to start from.

    Returns:
      ``(params, history)``. ``history`` holds, for the chosen restart, ``log_likelihood``
      (numpy ``(n_iter,)``: mean log-likelihood before each M-step), ``n_iter``, ``converged``,
      ``final_log_likelihood`` (of ``params``), and ``restart_log_likelihoods`` (all restarts).

    Raises:
      ValueError: on bad arguments, or when every restart ends with a non-finite
        log-likelihood (a singular covariance: increase ``reg_covar``).
    """
    x = check_data(x)
    n, d = x.shape
    _check_covariance_type(covariance_type)
    if not isinstance(num_components, int | np.integer) or not 1 <= num_components <= n:
        raise ValueError(f"num_components must be an integer in [1, N={n}], got {num_components!r}")
    if not isinstance(num_restarts, int | np.integer) or num_restarts < 1:
        raise ValueError(f"num_restarts must be a positive integer, got {num_restarts!r}")
    if not isinstance(max_iters, int | np.integer) or max_iters < 0:
        raise ValueError(f"max_iters must be a non-negative integer, got {max_iters!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if not reg_covar >= 0:
        raise ValueError(f"reg_covar must be >= 0, got {reg_covar!r}")
    if isinstance(init, GaussianMixture):
        _check_init(init, num_components, d, covariance_type)
        if num_restarts != 1:
            raise ValueError(f"num_restarts must be 1 when init is given, got {num_restarts}")
        inits = [jax.tree.map(lambda a: jnp.asarray(a, x.dtype), init)]
    elif init == "kmeans++":
        inits = [
            init_from_centres(
                x, kmeans_plus_plus(k, x, int(num_components))[0], covariance_type, reg_covar
            )
            for k in jax.random.split(key, num_restarts)
        ]
    else:
        raise ValueError(f"init must be 'kmeans++' or a GaussianMixture, got {init!r}")

    best, scores = None, []
    for r, p0 in enumerate(inits):
        if max_iters == 0:
            params, hist, n_iter, conv = p0, jnp.zeros((0,), x.dtype), 0, False
        else:
            params, hist, n_iter, conv = _run_em(p0, x, reg_covar, tol, int(max_iters))
        score = float(jnp.mean(gmm_log_likelihood(params, x)))
        scores.append(score)
        _log.info(
            "gmm restart %d/%d: %d iterations, mean log-likelihood %.6f nats",
            r + 1,
            len(inits),
            int(n_iter),
            score,
        )
        if math.isfinite(score) and (best is None or score > best[0]):
            best = (score, params, np.asarray(hist)[: int(n_iter)], int(n_iter), bool(conv))
    if best is None:
        raise ValueError(
            "EM produced a non-finite log-likelihood in every restart (a covariance became "
            f"singular); increase reg_covar (got {reg_covar}) or decrease num_components "
            f"(got {num_components})"
        )
    score, params, hist, n_iter, conv = best
    history = {
        "log_likelihood": hist,
        "n_iter": n_iter,
        "converged": conv,
        "final_log_likelihood": score,
        "restart_log_likelihoods": scores,
    }
    return params, history


def _check_init(p: GaussianMixture, k: int, d: int, covariance_type: str) -> None:
    if p.covariance_type != covariance_type:
        raise ValueError(
            f"init.covariance_type must be {covariance_type!r}, got {p.covariance_type!r}"
        )
    cov_shape = {"spherical": (k,), "diag": (k, d), "full": (k, d, d)}[covariance_type]
    for name, got, want in (
        ("weights", p.weights.shape, (k,)),
        ("means", p.means.shape, (k, d)),
        ("covariances", p.covariances.shape, cov_shape),
    ):
        if tuple(got) != want:
            raise ValueError(f"init.{name} must have shape {want}, got {tuple(got)}")


@jax.jit(static_argnames="n")
def sample_gmm(key: jax.Array, params: GaussianMixture, n: int) -> tuple[jax.Array, jax.Array]:
    """Ancestral sampling: k ~ Categorical(pi), then x ~ N(mu_k, Sigma_k) (Bishop 2006, Sec. 8.1.2).

    Args:
      key: PRNG key.
      params: the mixture.
      n: number of samples.

    Returns:
      ``(x, component)``: ``(n, D)`` samples and the ``(n,)`` component each was drawn from.
    """
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    k_key, z_key = jax.random.split(key)
    comp = jax.random.categorical(k_key, jnp.log(params.weights), shape=(n,))
    z = jax.random.normal(z_key, (n, params.means.shape[1]), params.means.dtype)
    cov = params.covariances[comp]
    if params.covariance_type == "full":
        noise = jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov), z)
    elif params.covariance_type == "diag":
        noise = jnp.sqrt(cov) * z
    else:
        noise = jnp.sqrt(cov)[:, None] * z
    return params.means[comp] + noise, comp


def mixture_moments(params: GaussianMixture) -> tuple[jax.Array, jax.Array]:
    """Mean and covariance of the mixture: sum_k pi_k mu_k and sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T."""
    d = params.means.shape[1]
    if params.covariance_type == "full":
        cov = params.covariances
    elif params.covariance_type == "diag":
        cov = jax.vmap(jnp.diag)(params.covariances)
    else:
        cov = params.covariances[:, None, None] * jnp.eye(d)
    w = params.weights
    mean = w @ params.means
    second = jnp.einsum("k,kde->de", w, cov + params.means[:, :, None] * params.means[:, None, :])
    return mean, second - jnp.outer(mean, mean)


def toy_mixture_2d(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """Seeded 2-D toy data: five anisotropic, rotated Gaussians with unequal weights.

    Args:
      key: PRNG key.
      n: number of examples.

    Returns:
      ``(x, component)``: ``(n, 2)`` float32 points and their true ``(n,)`` component.
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return _toy_mixture_2d(key, int(n))


@jax.jit(static_argnames="n")
def _toy_mixture_2d(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    means = jnp.array([[-4.0, -3.0], [0.0, 4.0], [4.0, -2.0], [-4.0, 3.0], [1.0, -0.5]])
    scales = jnp.array([[1.2, 0.3], [1.5, 0.4], [0.8, 0.8], [0.5, 1.0], [1.0, 0.25]])
    angles = jnp.array([0.5, -0.3, 0.0, 1.2, -0.9])
    rot = jnp.stack(
        [
            jnp.stack([jnp.cos(angles), -jnp.sin(angles)], -1),
            jnp.stack([jnp.sin(angles), jnp.cos(angles)], -1),
        ],
        -2,
    )
    chol = rot * scales[:, None, :]  # R diag(s): covariance R diag(s^2) R^T
    truth = GaussianMixture(
        jnp.array([0.3, 0.25, 0.2, 0.15, 0.1]), means, chol @ jnp.swapaxes(chol, -1, -2), "full"
    )
    return sample_gmm(key, truth, n)
