"""Flow objectives: change of variables, dequantization, the logit transform and bits/dim.

The evaluation convention used throughout genjax for flows (and, through
:func:`bits_per_dim`, for every likelihood model) is the one of Real NVP:

1. 8-bit data ``v`` in ``{0, ..., 255}^D`` is **uniformly dequantized** and scaled to
   ``[0, 1)^D``: ``x = (v + u) / 256``, ``u ~ U[0, 1)^D`` (:func:`dequantize`).
2. Optionally ``x`` is mapped to ``y = logit(alpha + (1 - 2 alpha) x)`` (:func:`logit_transform`)
   and the flow models ``y``; the log-Jacobian of this map is **included** in ``log p(x)``.
3. A continuous density on ``[0, 1)^D`` becomes a probability over the ``256^D`` bins by
   adding ``D log 256`` nats to the negative log-likelihood
   (:func:`discrete_nll_from_continuous`); the result, in nats per example, is converted to
   **bits per dimension** by dividing by ``D ln 2`` (:func:`bits_per_dim`).

By Jensen's inequality, the dequantized NLL upper-bounds the discrete NLL of the data, so
reported bits/dim are an upper bound on the model's true discrete code length
(Theis et al., 2016). Everything is per example, in nats unless stated otherwise.

Precision: every function accepts bfloat16 (or float16) inputs, from a network run in
``train.compute_dtype=bfloat16``, and computes in float32 (float64 inputs stay float64). This
matters: the ``D log 256`` offset is 17,035 nats for CIFAR-10 (D = 3072), where the spacing of
bfloat16 is 128 nats (of float32, 0.002), and a log-density is a sum over D dimensions.

References:
  Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
  arXiv:1605.08803.
  Theis, van den Oord & Bethge, "A note on the evaluation of generative models", ICLR 2016,
  arXiv:1511.01844.
"""

import math

import jax
import jax.numpy as jnp

from genjax.losses import _checks
from genjax.losses.variational import standard_normal_log_density

_LN2 = math.log(2.0)


def change_of_variables_log_likelihood(z: jax.Array, log_det: jax.Array) -> jax.Array:
    """``log p(x) = log N(f(x); 0, I) + log |det df/dx|`` for a flow ``z = f(x)``, per example.

    Args:
      z: the flow's output ``f(x)``, shape (B, ...), floating point.
      log_det: (B,) log absolute Jacobian determinant of ``f`` at ``x`` (summed over all
        layers, including any :func:`logit_transform`), in nats.

    Returns:
      (B,) log-density of ``x`` in nats per example (a density on the space of ``x``; negate it
      and pass it to :func:`discrete_nll_from_continuous` to score 8-bit data), at least
      float32: both inputs are cast up to float32 before the prior's sum over dimensions.

    References:
      Dinh et al. (2017), Eq. 3 (change of variables) with the isotropic Gaussian prior of
      Section 3.
    """
    z = _checks.float32_array("z", z)
    log_det = _checks.float32_array("log_det", log_det)
    _checks.min_ndim("z", z, 1, "a leading batch axis")
    if log_det.shape != z.shape[:1]:
        raise ValueError(
            f"log_det must have shape (B,) = {z.shape[:1]} for z of shape {z.shape}, "
            f"got {log_det.shape}"
        )
    return standard_normal_log_density(z) + log_det


def dequantize(key: jax.Array, x: jax.Array, *, num_bits: int = 8, dtype=jnp.float32) -> jax.Array:
    """Uniform dequantization ``(x + u) / 2^num_bits`` with ``u ~ U[0, 1)``, in ``[0, 1)``.

    Each value stays in its own bin: the result lies in ``[x / 2^b, (x + 1) / 2^b)`` even where
    float rounding of ``x + u`` would reach the upper edge (it is then moved one ulp down).

    Args:
      key: a JAX PRNG key.
      x: integer data in ``{0, ..., 2^num_bits - 1}`` (e.g. uint8 images), any shape. Values
        are not checked; reduce the bit depth first (``x >> (8 - num_bits)``) for fewer bits.
      num_bits: bits per value ``b`` (keyword-only), 1 to 16.
      dtype: floating output dtype (keyword-only), float32 or wider: in bfloat16 (8
        significant bits) ``x + u`` would round the noise ``u`` away for most pixel values.

    Returns:
      Array of ``x.shape`` and ``dtype`` with values in ``[0, 1)``.

    References:
      Dinh et al. (2017), Section 4.1; Theis et al. (2016), Section 3.1.
    """
    x = _checks.integer_array("x", x)
    num_bits = _checks.positive_int("num_bits", num_bits)
    if num_bits > 16:
        raise ValueError(f"num_bits must be in [1, 16], got {num_bits}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    if jnp.finfo(dtype).bits < 32:
        raise ValueError(
            f"dtype must be float32 or wider (the noise u would be rounded away), got "
            f"{jnp.dtype(dtype).name}"
        )
    scale = float(2**num_bits)
    xf = x.astype(dtype)
    u = jax.random.uniform(key, x.shape, dtype=dtype)
    y = (xf + u) / scale
    upper = jnp.nextafter((xf + 1.0) / scale, jnp.zeros((), dtype))
    return jnp.minimum(y, upper)


def logit_transform(x: jax.Array, *, alpha: float = 0.05) -> tuple[jax.Array, jax.Array]:
    """Real NVP pre-processing ``y = logit(alpha + (1 - 2 alpha) x)`` and its log-Jacobian.

    Maps ``[0, 1]`` to ``[logit(alpha), logit(1 - alpha)]``, so that a flow on ``y`` sees
    unbounded values away from the infinite edges of ``logit``. With
    ``s = alpha + (1 - 2 alpha) x``, ``dy/dx = (1 - 2 alpha) / (s (1 - s))`` elementwise, so

    ``log_det = sum_j log(1 - 2 alpha) - log(s_j) - log(1 - s_j)`` in nats (at least
    ``log(4 (1 - 2 alpha))`` per dimension); add it to the flow's own log-determinant.

    The released Real NVP code uses this symmetric form with ``alpha = 0.05`` (its
    ``data_constraint = 0.9`` maps ``[0, 1]`` to ``[0.05, 0.95]``).

    Args:
      x: dequantized data in ``[0, 1]``, shape (B, ...), floating point.
      alpha: boundary margin in ``[0, 1/2)`` (keyword-only); ``alpha = 0`` is the plain logit,
        infinite at 0 and 1.

    Returns:
      ``(y, log_det)``: ``y`` of ``x.shape`` and ``log_det`` of shape (B,), summed over all
      non-batch axes, in nats; both at least float32 (``x`` is cast up first).

    References:
      Dinh et al. (2017), Section 4.1 (logit of the rescaled data, alpha = 0.05).
    """
    x = _checks.float32_array("x", x)
    _checks.min_ndim("x", x, 1, "a leading batch axis")
    alpha = _checks.finite_scalar("alpha", alpha, low=0.0, high=0.5)
    if alpha == 0.5:
        raise ValueError("alpha must be in [0, 0.5), got 0.5 (the map would be constant)")
    s = alpha + (1.0 - 2.0 * alpha) * x
    log_s, log_1ms = jnp.log(s), jnp.log1p(-s)
    y = log_s - log_1ms
    per_dim = math.log1p(-2.0 * alpha) - log_s - log_1ms
    return y, jnp.sum(per_dim, axis=tuple(range(1, x.ndim)))


def discrete_nll_from_continuous(nll: jax.Array, num_dims: int, *, num_bits: int = 8) -> jax.Array:
    """Negative log-probability of ``b``-bit data from the NLL of its ``[0, 1)``-scaled density.

    For ``x = (v + u) / 2^b`` on ``[0, 1)^D``, ``-log p_bins(v) <= -log p(x) + D log 2^b``: the
    density of the scaled data times the bin volume ``2^(-b D)`` (uniform dequantization;
    equality for a density constant on each bin). This adds ``D * b * ln 2`` nats.

    Args:
      nll: ``-log p(x)`` in nats of the **[0, 1)-scaled** dequantized data (any shape, e.g.
        (B,)), with every Jacobian (logit transform included) already in it.
      num_dims: ``D``, the number of dimensions of one example (``H * W * C``).
      num_bits: ``b`` (keyword-only; 8 for standard images).

    Returns:
      NLL in nats of the discrete data, same shape as ``nll``, at least float32: the offset is
      added after casting ``nll`` up (in bfloat16 the 17,035 nats of CIFAR-10 would be
      rounded to a multiple of 128).

    References:
      Dinh et al. (2017), Section 4.1; Theis et al. (2016), Section 3.1.
    """
    nll = _checks.float32_array("nll", nll)
    num_dims = _checks.positive_int("num_dims", num_dims)
    num_bits = _checks.positive_int("num_bits", num_bits)
    return nll + num_dims * num_bits * _LN2


def bits_per_dim(nll: jax.Array, num_dims: int) -> jax.Array:
    """Converts a per-example NLL in nats into bits per dimension: ``nll / (D ln 2)``.

    For 8-bit images, pass the NLL of the *discrete* data
    (:func:`discrete_nll_from_continuous` for flows, the categorical / discretized-logistic
    NLL of :mod:`genjax.losses.autoregressive` for PixelCNNs): a uniform model then scores
    exactly 8 bits/dim.

    Args:
      nll: negative log-likelihood in nats (any shape, e.g. (B,) or a scalar mean).
      num_dims: ``D``, the number of dimensions of one example (``H * W * C``).

    Returns:
      Bits per dimension, same shape as ``nll``, at least float32.

    References:
      Dinh et al. (2017), Section 4.1 and Table 1; van den Oord et al., "Pixel Recurrent Neural
      Networks", ICML 2016, Section 5.
    """
    nll = _checks.float32_array("nll", nll)
    num_dims = _checks.positive_int("num_dims", num_dims)
    return nll / (num_dims * _LN2)
