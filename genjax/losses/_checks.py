"""Argument validation shared by the loss modules (private).

Every check runs on static information only (shapes, dtypes, Python scalars), so the
losses stay traceable under ``jax.jit`` and ``jax.grad``. Array *values* are never
inspected: that would force a device-to-host transfer and is impossible on tracers.
Errors name the argument, what was expected and what was given.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _describe(x) -> str:
    return f"shape {tuple(jnp.shape(x))} and dtype {jnp.result_type(x)}"


def float_array(name: str, x) -> jax.Array:
    """Returns ``x`` as a floating-point JAX array, or raises if it is not one.

    Python floats and floating NumPy arrays are accepted; integer, boolean and complex
    inputs are refused (an integer ``logits`` array is almost always a bug).
    """
    try:
        dtype = jnp.result_type(x)
    except TypeError as err:
        raise TypeError(f"{name} must be a floating-point array, got {type(x).__name__}") from err
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating-point array, got {_describe(x)}")
    return jnp.asarray(x)


def float32_array(name: str, x) -> jax.Array:
    """:func:`float_array`, then cast up to at least float32 (float64 is kept).

    Likelihoods, log-determinants and loss reductions are computed in float32 even when the
    network ran in bfloat16 (``train.compute_dtype``): a sum of many bfloat16 terms would lose
    whole nats (its spacing at 10^4 is 64).
    """
    x = float_array(name, x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def real_array(name: str, x, like: jax.Array) -> jax.Array:
    """Returns ``x`` (float, int or bool) cast to the floating dtype of ``like``."""
    try:
        dtype = jnp.result_type(x)
    except TypeError as err:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from err
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got {_describe(x)}")
    return jnp.asarray(x).astype(like.dtype)


def integer_array(name: str, x) -> jax.Array:
    """Returns ``x`` as an integer JAX array, or raises if it is not one."""
    try:
        dtype = jnp.result_type(x)
    except TypeError as err:
        raise TypeError(f"{name} must be an integer array, got {type(x).__name__}") from err
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"{name} must be an integer array, got {_describe(x)}")
    return jnp.asarray(x)


def min_ndim(name: str, x, ndim: int, what: str = "") -> None:
    """Raises unless ``x`` has at least ``ndim`` axes."""
    if jnp.ndim(x) < ndim:
        hint = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must have at least {ndim} axes{hint}, got shape {tuple(jnp.shape(x))}"
        )


def exact_ndim(name: str, x, ndim: int, what: str = "") -> None:
    """Raises unless ``x`` has exactly ``ndim`` axes."""
    if jnp.ndim(x) != ndim:
        hint = f" {what}" if what else ""
        raise ValueError(f"{name} must have {ndim} axes{hint}, got shape {tuple(jnp.shape(x))}")


def same_shape(name_a: str, a, name_b: str, b) -> None:
    """Raises unless ``a`` and ``b`` have identical shapes."""
    if tuple(jnp.shape(a)) != tuple(jnp.shape(b)):
        raise ValueError(
            f"{name_b} must have the shape of {name_a} {tuple(jnp.shape(a))}, "
            f"got {tuple(jnp.shape(b))}"
        )


def broadcastable(name: str, x, shape: Sequence[int], target: str) -> None:
    """Raises unless ``x`` broadcasts to ``shape`` without changing ``shape``."""
    shape = tuple(shape)
    try:
        result = np.broadcast_shapes(tuple(jnp.shape(x)), shape)
    except ValueError:
        result = None
    if result != shape:
        raise ValueError(
            f"{name} must broadcast to the shape of {target} {shape}, got {tuple(jnp.shape(x))}"
        )


def positive_int(name: str, value) -> int:
    """Returns ``value`` if it is a Python/NumPy integer >= 1, else raises."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def finite_scalar(name: str, value, *, low=-math.inf, high=math.inf, open_low=False) -> float:
    """Returns ``value`` as float if it is a finite real in ``[low, high]`` (or ``(low, high]``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a Python number, got {value!r}")
    value = float(value)
    too_low = value <= low if open_low else value < low
    if not math.isfinite(value) or too_low or value > high:
        bracket = "(" if open_low else "["
        raise ValueError(
            f"{name} must be a finite number in {bracket}{low}, {high}], got {value!r}"
        )
    return value
