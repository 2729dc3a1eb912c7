"""Running a jitted network over many images in fixed-size batches (private)."""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from genjax.eval._checks import positive_int


def map_batches(fn: Callable[[np.ndarray], Any], x: np.ndarray, batch_size: int) -> Any:
    """``fn`` over ``x`` in batches of ``batch_size`` rows, outputs concatenated as NumPy.

    The last batch is padded with zeros to ``batch_size`` (one compiled shape per batch size)
    and the padding's outputs are dropped, so results do not depend on ``batch_size`` for
    row-wise ``fn``. ``fn`` returns a pytree of arrays whose leading axis is the batch.
    """
    batch_size = min(positive_int("batch_size", batch_size), x.shape[0])
    parts = []
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        n = chunk.shape[0]
        if n < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]),
                                                    chunk.dtype)])
        parts.append(jax.tree.map(lambda a, n=n: np.asarray(a)[:n], fn(chunk)))
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *parts)
