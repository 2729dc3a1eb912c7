"""Blocked pairwise computations shared by the sample-based metrics (private).

A full ``(N, M)`` distance matrix between two large sets is never built: the query set is
cut into row blocks of ``batch_size`` and a jitted function reduces each block against the
whole reference set, so memory stays at ``batch_size * M`` numbers. The last block is
padded to ``batch_size`` rows so that one compilation serves every block.

Squared distances use ``|x|^2 + |y|^2 - 2 x.y`` with the matrix product at
``Precision.HIGHEST``: on GPUs the default float32 matmul precision may use TF32 (10-bit
mantissa), whose rounding would move a Parzen log-density by several nats. In float32 the
remaining cancellation error is about ``1e-7 * (|x|^2 + |y|^2)``; results are clamped at 0.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

HIGHEST = jax.lax.Precision.HIGHEST


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared Euclidean distances ``(N, D), (M, D) -> (N, M)``, clamped at 0."""
    xx = jnp.sum(x * x, axis=1)[:, None]
    yy = jnp.sum(y * y, axis=1)[None, :]
    xy = jnp.matmul(x, y.T, precision=HIGHEST)
    return jnp.maximum(xx + yy - 2.0 * xy, 0.0)


def map_row_blocks(fn: Callable[..., jax.Array], x: np.ndarray, batch_size: int, *args):
    """Applies ``fn(block, *args)`` to consecutive row blocks of ``x`` and concatenates.

    Args:
      fn: a jitted function whose outputs have the block's rows on their leading axis.
      x: ``(N, ...)`` array, split along axis 0.
      batch_size: rows per block (the last block is padded by repeating row 0, and the
        padded rows are dropped from the output).
      *args: further arguments passed unchanged to every call (already on device).

    Returns:
      The NumPy concatenation of the per-block outputs, ``(N, ...)``.
    """
    n = x.shape[0]
    block = min(batch_size, n)
    outputs = []
    for start in range(0, n, block):
        rows = x[start : start + block]
        valid = rows.shape[0]
        if valid < block:
            pad = np.repeat(rows[:1], block - valid, axis=0)
            rows = np.concatenate([rows, pad], axis=0)
        out = fn(jnp.asarray(rows), *args)
        outputs.append(np.asarray(out)[:valid])
    return np.concatenate(outputs, axis=0)
