"""Argument validation shared by the evaluation modules (private).

Evaluation runs outside ``jax.jit`` on concrete arrays, so unlike the loss checks these
also inspect values (NaN, infinities, ranges). Errors name the argument, what was
expected and what was given.
"""

import math

import jax
import numpy as np


def _describe(x) -> str:
    return f"shape {tuple(np.shape(x))} and dtype {np.asarray(x).dtype}"


def as_numeric(name: str, x) -> np.ndarray:
    """Returns ``x`` as a real NumPy array (bool, int or float), or raises."""
    if isinstance(x, str | bytes) or x is None:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from err
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real, got {_describe(arr)}")
    return arr


def as_float(name: str, x, *, ndim: int | None = None, what: str = "") -> np.ndarray:
    """Returns ``x`` as a finite floating NumPy array (float64 kept, else float32).

    Integer and boolean inputs are converted; NaN or infinite entries raise, naming the
    first offending index.
    """
    arr = as_numeric(name, x)
    if ndim is not None and arr.ndim != ndim:
        hint = f" {what}" if what else ""
        raise ValueError(f"{name} must have {ndim} axes{hint}, got shape {arr.shape}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        kind = "NaN" if np.isnan(arr[where]) else "infinite"
        raise ValueError(f"{name} must be finite, got a {kind} value at index {where}")
    return arr


def feature_matrix(name: str, x, *, min_rows: int = 1) -> np.ndarray:
    """Returns ``x`` as a finite float ``(N, D)`` array with ``N >= min_rows``, or raises."""
    arr = as_float(name, x, ndim=2, what="(num_examples, feature_dim)")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least {min_rows} rows and 1 column, got shape {arr.shape}"
        )
    return arr


def same_dim(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raises unless two feature matrices have the same feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_b} must have the feature dimension of {name_a} ({a.shape[1]}), "
            f"got shape {b.shape}"
        )


def positive_int(name: str, value) -> int:
    """Returns ``value`` if it is a Python/NumPy integer >= 1, else raises."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    """Returns ``value`` as a float if it is a finite real number > 0, else raises."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def prng_key(name: str, key) -> jax.Array:
    """Returns a JAX PRNG key from a key (typed or raw ``uint32[2]``) or an int seed."""
    if isinstance(key, bool):
        raise TypeError(f"{name} must be a jax.random key or an int seed, got {key!r}")
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == np.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    raise TypeError(
        f"{name} must be a single jax.random key or an int seed, got "
        f"{type(key).__name__} {getattr(key, 'shape', '')}"
    )
