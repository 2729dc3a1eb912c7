"""Gaussian Parzen-window log-likelihood of test data under a model's samples.

The estimate fits an isotropic Gaussian kernel density to ``N`` model samples,

    log p(x) = logsumexp_i(-|x - s_i|^2 / (2 sigma^2)) - log N - (D / 2) log(2 pi sigma^2),

chooses ``sigma`` by the mean log-likelihood of a validation set, and reports the mean
over test points in nats (Goodfellow et al. 2014, Table 1: 10,000 samples, MNIST test
set, sigma from a grid on the validation set). It is a weak, high-variance estimate in
high dimension (Theis et al. 2016) and is provided to reproduce the historical tables,
not as a likelihood. Values depend on the data scale: state it (e.g. pixels in [0, 1]).

The ``(batch, N)`` distance block is the largest array held: memory is
``batch_size * N`` floats (never ``M * N * D``). Distances are float32 (unless x64 is
enabled) through the expanded square at full matmul precision; on MNIST-scale data
(784 pixels in [0, 1], sigma near 0.17) this moves log-densities by about 1e-4 nats.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax.eval._checks import as_float, feature_matrix, positive_float, positive_int, same_dim
from genjax.eval._pairwise import map_row_blocks, squared_distances


@jax.jit
def _log_densities_block(block, samples, sigmas):
    """``(b, D), (N, D), (S,) -> (b, S)`` Parzen log-densities, one column per sigma."""
    d2 = squared_distances(block, samples)
    n, dim = samples.shape

    def for_sigma(sigma):
        log_norm = math.log(n) + 0.5 * dim * jnp.log(2.0 * jnp.pi * sigma**2)
        return jax.nn.logsumexp(-d2 / (2.0 * sigma**2), axis=1) - log_norm

    return jax.lax.map(for_sigma, sigmas).T


def _log_densities(samples, points, sigmas: np.ndarray, batch_size: int) -> np.ndarray:
    s = jnp.asarray(samples)
    sig = jnp.asarray(sigmas, dtype=s.dtype)
    return map_row_blocks(_log_densities_block, points, batch_size, s, sig)


def _validated(samples, points, points_name: str, batch_size: int):
    s = feature_matrix("samples", samples)
    p = feature_matrix(points_name, points)
    same_dim("samples", s, points_name, p)
    return s, p, positive_int("batch_size", batch_size)


def parzen_log_densities(
    samples, test_points, sigma: float, *, batch_size: int = 100
) -> np.ndarray:
    """Per-point Parzen-window log-densities ``log p(x_j)`` in nats.

    Args:
      samples: ``(N, D)`` model samples (the kernel centres), flattened, finite.
      test_points: ``(M, D)`` points to evaluate, same scale as ``samples``.
      sigma: kernel standard deviation, > 0.
      batch_size: test points per block; memory ``batch_size * N`` floats.

    Returns:
      ``(M,)`` float array of log-densities in nats (their standard error over points is
      what papers report after the ``±``).

    References:
      Breuleux, Bengio & Vincent, "Quickly Generating Representative Samples from an
      RBM-Derived Process", Neural Computation 2011 (the Parzen log-likelihood
      estimate, the formula in this module's docstring).
    """
    sigma = positive_float("sigma", sigma)
    s, p, batch_size = _validated(samples, test_points, "test_points", batch_size)
    return _log_densities(s, p, np.array([sigma]), batch_size)[:, 0].astype(np.float64)


def parzen_log_likelihood(samples, test_points, sigma: float, *, batch_size: int = 100) -> float:
    """Mean Parzen-window log-likelihood of ``test_points`` in nats per example.

    Args:
      samples: ``(N, D)`` model samples (Goodfellow et al. use N = 10,000).
      test_points: ``(M, D)`` test data on the same scale.
      sigma: kernel standard deviation (choose it with ``select_parzen_bandwidth``).
      batch_size: test points per block.

    Returns:
      ``mean_j log p(x_j)`` in nats, a Python float.

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, Sec. 5 and Table 1.
      Breuleux, Bengio & Vincent, Neural Computation 2011.
      Theis, van den Oord & Bethge, "A note on the evaluation of generative models",
      ICLR 2016 (why these numbers mislead).
    """
    return float(np.mean(parzen_log_densities(samples, test_points, sigma, batch_size=batch_size)))


def select_parzen_bandwidth(
    samples, validation, sigmas, *, batch_size: int = 100
) -> tuple[float, dict[float, float]]:
    """Grid search of the Parzen bandwidth on validation data.

    Distances are computed once per block and reused for every sigma.

    Args:
      samples: ``(N, D)`` model samples.
      validation: ``(V, D)`` held-out data (never the test set).
      sigmas: 1-D sequence of candidate bandwidths, each > 0 (Goodfellow et al. search a
        grid such as ``np.logspace(-1, 0, 10)`` for pixels in [0, 1]).
      batch_size: validation points per block.

    Returns:
      ``(best_sigma, table)`` where ``table`` maps every sigma to its mean validation
      log-likelihood in nats and ``best_sigma`` maximizes it (first one on ties). A best
      sigma at either end of the grid means the grid should be widened.
    """
    grid = as_float("sigmas", sigmas, ndim=1, what="(num_sigmas,)").astype(np.float64)
    if grid.size == 0 or (grid <= 0).any():
        raise ValueError(f"sigmas must be a non-empty 1-D array of values > 0, got {grid!r}")
    s, v, batch_size = _validated(samples, validation, "validation", batch_size)
    means = _log_densities(s, v, grid, batch_size).astype(np.float64).mean(axis=0)
    table = {float(sig): float(m) for sig, m in zip(grid, means, strict=True)}
    return float(grid[int(np.argmax(means))]), table
