"""Numerical precision of a run: the compute dtype and the matmul precision.

Parameters, optimizer states and parameter averages are float32 always. ``train.compute_dtype``
sets the dtype in which activations, matmuls and convolutions run (``bfloat16`` on
accelerators); methods pass :func:`compute_dtype` to their modules as the Flax ``dtype``
attribute and keep every likelihood, log-determinant, loss reduction and metric in float32.

On GPUs and TPUs JAX's default precision of float32 matmuls and convolutions is reduced (TF32 or
one bfloat16 pass). :func:`matmul_precision` gives the precision a computation needs so that a
float32 number means the same on every backend: true float32 (``"highest"``) for float32 runs and
for every evaluation, the backend default for bfloat16 runs (whose inputs are bfloat16 anyway).
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16")


def check_compute_dtype(name: str) -> None:
    """Raises ValueError naming ``train.compute_dtype`` unless ``name`` is supported."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"train.compute_dtype={name!r}; expected one of {COMPUTE_DTYPES}")


def compute_dtype(config) -> jnp.dtype:
    """The ``jnp`` dtype of ``config.train.compute_dtype`` (float32 or bfloat16)."""
    check_compute_dtype(config.train.compute_dtype)
    return jnp.dtype(config.train.compute_dtype)


def matmul_precision(dtype_name: str = "float32") -> contextlib.AbstractContextManager:
    """A context for tracing: ``"highest"`` for float32 work, the default for bfloat16."""
    if dtype_name == "float32":
        return jax.default_matmul_precision("highest")
    return contextlib.nullcontext()


def as_float32(x: jax.Array) -> jax.Array:
    """``x`` as at least float32 (bfloat16/float16 up to float32; float64 kept)."""
    return jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))
