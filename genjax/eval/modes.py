"""Toy Gaussian mixtures (ring of 8, grid of 25) and the mode-coverage metric.

The mixtures' centres are the datasets' own (:mod:`genjax.data.toy`, re-exported here).

The mixtures are uniform over their components, each an isotropic Gaussian with the
same standard deviation: the ring of 8 at radius 2 with std 0.02 (Metz et al. 2017) and
the 5x5 grid over {-4, -2, 0, 2, 4}^2 with std 0.05 (Srivastava et al. 2017, Lin et al.
2018).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc

from genjax.data.toy import grid_of_gaussians, ring_of_gaussians
from genjax.eval._checks import feature_matrix, positive_float, positive_int, prng_key, same_dim

__all__ = ["ModeCoverage", "grid_of_gaussians", "high_quality_probability", "mode_coverage",
           "ring_of_gaussians", "sample_mixture"]


class ModeCoverage(NamedTuple):
    """Result of ``mode_coverage``.

    Attributes:
      modes_captured: number of components with at least ``min_samples_per_mode``
        high-quality samples.
      high_quality_fraction: share of all samples that are high quality, in ``[0, 1]``.
      counts: ``(K,)`` int array, high-quality samples registered to each component.
    """

    modes_captured: int
    high_quality_fraction: float
    counts: np.ndarray


def sample_mixture(key, centers, std: float, n: int) -> jax.Array:
    """Draws ``n`` points from the uniform mixture of ``N(center_k, std^2 I)``.

    Args:
      key: ``jax.random`` key or int seed.
      centers: ``(K, D)`` component means.
      std: per-coordinate standard deviation, > 0.
      n: number of points.

    Returns:
      ``(n, D)`` float32 JAX array.
    """
    c = jnp.asarray(feature_matrix("centers", centers), dtype=jnp.float32)
    std, n = positive_float("std", std), positive_int("n", n)
    return _sample_mixture(prng_key("key", key), c, jnp.float32(std), n=n)


@functools.partial(jax.jit, static_argnames="n")
def _sample_mixture(key, centers, std, *, n: int) -> jax.Array:
    k_comp, k_noise = jax.random.split(key)
    components = jax.random.randint(k_comp, (n,), 0, centers.shape[0])
    noise = jax.random.normal(k_noise, (n, centers.shape[1]), dtype=jnp.float32)
    return centers[components] + std * noise


def mode_coverage(
    samples,
    centers,
    *,
    std: float,
    threshold_stds: float = 3.0,
    min_samples_per_mode: int = 1,
) -> ModeCoverage:
    """Modes captured and share of high-quality samples for a known Gaussian mixture.

    Each sample is registered to its nearest centre (Euclidean; with a shared isotropic
    ``std`` this is also the nearest in standard deviations). It is *high quality* when
    that distance is strictly below ``threshold_stds * std``. A mode is *captured* when
    at least ``min_samples_per_mode`` high-quality samples are registered to it. The
    default 1 is the VEEGAN protocol as implemented in the PacGAN reference code
    (``mode coverage = number of nonzero counts``, 2,500 samples for the grid); stricter
    variants use e.g. 20 to ignore stray samples, so state the value you report.

    Args:
      samples: ``(N, D)`` generated points.
      centers: ``(K, D)`` mixture centres (e.g. from ``ring_of_gaussians``).
      std: the components' standard deviation, > 0.
      threshold_stds: high-quality radius in units of ``std``.
      min_samples_per_mode: high-quality samples needed to count a mode as captured.

    Returns:
      ``ModeCoverage(modes_captured, high_quality_fraction, counts)``.

    References:
      Srivastava, Valkov, Russell, Gutmann & Sutton, "VEEGAN: Reducing Mode Collapse in
      GANs using Implicit Variational Learning", NeurIPS 2017 (synthetic experiments).
      Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative
      adversarial networks", NeurIPS 2018 (same metric; reference code
      github.com/fjxmlzn/PacGAN, ``MetricLogger``).
    """
    x = feature_matrix("samples", samples).astype(np.float64)
    c = feature_matrix("centers", centers).astype(np.float64)
    same_dim("centers", c, "samples", x)
    std = positive_float("std", std)
    threshold = positive_float("threshold_stds", threshold_stds)
    min_count = positive_int("min_samples_per_mode", min_samples_per_mode)
    counts = np.zeros(c.shape[0], dtype=np.int64)
    high_quality = 0
    block = max(1, 2**22 // max(1, c.shape[0] * c.shape[1]))  # bounded (block, K, D) memory
    for start in range(0, x.shape[0], block):
        rows = x[start : start + block]
        d2 = ((rows[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)
        nearest = d2.argmin(axis=1)
        good = np.sqrt(d2[np.arange(rows.shape[0]), nearest]) < threshold * std
        counts += np.bincount(nearest[good], minlength=c.shape[0])
        high_quality += int(good.sum())
    return ModeCoverage(
        modes_captured=int((counts >= min_count).sum()),
        high_quality_fraction=high_quality / x.shape[0],
        counts=counts,
    )


def high_quality_probability(dim: int, threshold_stds: float = 3.0) -> float:
    """Probability that one component's own sample lies within ``threshold_stds`` of its mean.

    ``P(chi^2_dim < threshold^2)``; for ``dim = 2`` this is ``1 - exp(-threshold^2 / 2)``
    (0.9889 at 3 std). It is the high-quality fraction of a perfect sampler when the
    components are well separated: the ceiling against which to read the metric.
    """
    dim = positive_int("dim", dim)
    t = positive_float("threshold_stds", threshold_stds)
    # Regularized lower incomplete gamma: the chi^2_dim CDF at t^2.
    return float(gammainc(dim / 2.0, t * t / 2.0))
