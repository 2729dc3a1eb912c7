"""Numerical precision of a run: the compute dtype and the matmul precision.

Parameters, optimizer states and parameter averages are float32 always. ``train.compute_dtype``
sets the dtype in which activations, matmuls and convolutions run (``bfloat16`` on
accelerators); methods pass :func:`compute_dtype` to their modules as the Flax ``dtype``
attribute and keep every likelihood, log-determinant, loss reduction and metric in float32.

On GPUs and TPUs JAX's default precision of float32 matmuls and convolutions is reduced (TF32 or
one bfloat16 pass). :func:`matmul_precision` gives the precision a computation needs so that a
float32 number means the same on every backend: true float32 (``"highest"``) for float32 runs and
for every evaluation, the backend default for bfloat16 runs (whose inputs are bfloat16 anyway).

On GPUs, :func:`compiler_options` also keeps XLA's autotuner to deterministic algorithms for the
training programs (``train.gpu_exclude_nondeterministic_ops``, on by default): measured on an
NVIDIA H200 (jax 0.11.2, CUDA 13), the algorithms it otherwise picked for PixelCNN's float32 step
gave wrong gradients (bias gradients off by up to 1.5x their scale, gradient norm 758.7 where the
CPU and the PyTorch twin give 659.8) while the loss itself agreed to 1e-7; with the option the
gradients agree with the CPU's to 1.2e-6 (``benchmarks/results/h200_2026-12-04c``).
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16")
GPU_PLATFORMS = ("gpu", "cuda", "rocm")


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


def compiler_options(train_config, platform: str) -> dict[str, bool]:
    """XLA options for compiling a run's training programs on ``platform``.

    ``{"xla_gpu_exclude_nondeterministic_ops": True}`` on a GPU when
    ``train_config.gpu_exclude_nondeterministic_ops`` (the default; see the module docstring for
    why), else none. Pass the result to ``jax.jit(...).lower(...).compile(options or None)``.
    It does not make a GPU run bitwise reproducible by itself (scatter-adds still use atomics):
    for that, ``XLA_FLAGS=--xla_gpu_deterministic_ops=true``.
    """
    if platform in GPU_PLATFORMS and train_config.gpu_exclude_nondeterministic_ops:
        return {"xla_gpu_exclude_nondeterministic_ops": True}
    return {}


def as_float32(x: jax.Array) -> jax.Array:
    """``x`` as at least float32 (bfloat16/float16 up to float32; float64 kept)."""
    return jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))
