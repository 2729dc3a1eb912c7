"""Paths between two latent codes, for interpolation pictures."""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.eval._checks import as_float, positive_int

INTERPOLATION_METHODS = ("linear", "slerp")

# Below this |sin(omega)| the two codes are (anti)parallel and slerp is undefined or
# numerically unstable; the path falls back to linear interpolation.
_SLERP_EPS = 1e-6


def interpolate_latents(z1, z2, num_steps: int, *, method: str = "linear") -> jax.Array:
    """Evenly spaced points on the path from ``z1`` to ``z2`` (both endpoints included).

    With ``t_i = i / (num_steps - 1)``:

    * ``"linear"``: ``(1 - t) z1 + t z2``.
    * ``"slerp"`` (spherical linear interpolation, White 2016):
      ``sin((1 - t) omega) / sin(omega) z1 + sin(t omega) / sin(omega) z2`` with
      ``omega = arccos(<z1, z2> / (|z1| |z2|))`` taken over all entries. When
      ``|z1| = |z2| = r`` every point has norm ``r``, so under a Gaussian prior (whose mass
      sits near a sphere) the path stays where the decoder was trained, whereas the linear
      midpoint of two independent codes has norm about ``r / sqrt(2)``. If the codes are
      (anti)parallel (``|sin(omega)| < 1e-6``) or one is zero, slerp falls back to linear.

    Args:
      z1: start code, any shape (e.g. ``(latent_dim,)``); float, finite.
      z2: end code, same shape as ``z1``.
      num_steps: number of points, ``>= 2``.
      method: ``"linear"`` or ``"slerp"``.

    Returns:
      ``(num_steps, *z1.shape)`` JAX array; row 0 equals ``z1`` and row ``-1`` equals ``z2``.

    References:
      White, "Sampling Generative Networks", arXiv:1609.04468, 2016 (the slerp formula
      of its interpolation section).
    """
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"method must be one of {INTERPOLATION_METHODS}, got {method!r}")
    num_steps = positive_int("num_steps", num_steps)
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2 (both endpoints), got {num_steps}")
    a = as_float("z1", z1)
    b = as_float("z2", z2)
    if a.shape != b.shape:
        raise ValueError(f"z2 must have the shape of z1 {a.shape}, got {b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)
    # Latent codes are small: NumPy float64 is exact enough and avoids compiling.
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    t = np.linspace(0.0, 1.0, num_steps).reshape((num_steps,) + (1,) * a.ndim)
    path = (1.0 - t) * a64 + t * b64
    if method == "slerp":
        na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
        cos = np.clip(np.vdot(a64, b64) / (na * nb), -1.0, 1.0) if na > 0 and nb > 0 else 1.0
        omega = float(np.arccos(cos))
        if abs(np.sin(omega)) >= _SLERP_EPS:
            path = (np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    path = path.astype(dtype)
    path[0], path[-1] = a, b  # exact endpoints despite rounding
    return jnp.asarray(path)
