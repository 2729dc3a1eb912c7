"""Improved precision and recall of generated samples (k-NN manifold estimates)."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax.eval._checks import feature_matrix, positive_int, same_dim
from genjax.eval._pairwise import map_row_blocks, squared_distances


class PrecisionRecall(NamedTuple):
    """Fractions in ``[0, 1]``.

    Attributes:
      precision: share of generated samples inside the estimated real manifold (quality).
      recall: share of real samples inside the estimated generated manifold (coverage).
    """

    precision: float
    recall: float


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbor_sq_distance(block, reference, *, k: int):
    # The k + 1 smallest distances of a reference point include itself at distance 0.
    neg_smallest, _ = jax.lax.top_k(-squared_distances(block, reference), k + 1)
    return -neg_smallest[:, k]


@jax.jit
def _inside_any_ball(block, centers, radii_sq):
    return jnp.any(squared_distances(block, centers) <= radii_sq[None, :], axis=1)


def manifold_radii(features, *, k: int = 3, batch_size: int = 1000) -> np.ndarray:
    """Squared distance from each feature vector to its k-th nearest other vector.

    Args:
      features: ``(N, D)`` array, ``N > k``.
      k: neighbourhood size (the point itself is not counted).
      batch_size: rows per block; memory is ``batch_size * N`` floats.

    Returns:
      ``(N,)`` float array of squared Euclidean radii.
    """
    f = feature_matrix("features", features)
    k = positive_int("k", k)
    if f.shape[0] <= k:
        raise ValueError(f"features must have more than k={k} rows, got {f.shape[0]}")
    batch_size = positive_int("batch_size", batch_size)
    ref = jnp.asarray(f)
    fn = functools.partial(_kth_neighbor_sq_distance, k=k)
    return map_row_blocks(fn, f, batch_size, ref)


def _coverage(points: np.ndarray, centers: np.ndarray, radii_sq: np.ndarray, batch_size: int):
    inside = map_row_blocks(
        _inside_any_ball, points, batch_size, jnp.asarray(centers), jnp.asarray(radii_sq)
    )
    return float(inside.mean())


def precision_recall(f_real, f_fake, *, k: int = 3, batch_size: int = 1000) -> PrecisionRecall:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of balls centred on its points, the radius of a ball
    being the distance to the centre's k-th nearest neighbour within the same set (itself
    excluded). Then (Eq. 1-2 of the paper)

    * precision = share of fake points inside at least one real ball,
    * recall = share of real points inside at least one fake ball,

    with "inside" meaning distance <= radius, as in the reference implementation. The
    paper uses k = 3, VGG-16 fc2 features and 50,000 images per set; results depend on all
    three. Pairwise distances are computed in JAX in blocks of ``batch_size`` rows
    (memory ``batch_size * max(N, M)`` floats).

    Args:
      f_real: ``(N, D)`` features of real data, ``N > k``.
      f_fake: ``(M, D)`` features of generated samples, ``M > k``.
      k: neighbourhood size.
      batch_size: rows per block.

    Returns:
      ``PrecisionRecall(precision, recall)`` as Python floats in ``[0, 1]``.

    References:
      Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall Metric
      for Assessing Generative Models", NeurIPS 2019, Sec. 2, Eq. (1)-(2).
    """
    real = feature_matrix("f_real", f_real)
    fake = feature_matrix("f_fake", f_fake)
    same_dim("f_real", real, "f_fake", fake)
    k = positive_int("k", k)
    for name, f in (("f_real", real), ("f_fake", fake)):
        if f.shape[0] <= k:
            raise ValueError(f"{name} must have more than k={k} rows, got {f.shape[0]}")
    batch_size = positive_int("batch_size", batch_size)
    real_radii = manifold_radii(real, k=k, batch_size=batch_size)
    fake_radii = manifold_radii(fake, k=k, batch_size=batch_size)
    return PrecisionRecall(
        precision=_coverage(fake, real, real_radii, batch_size),
        recall=_coverage(real, fake, fake_radii, batch_size),
    )
