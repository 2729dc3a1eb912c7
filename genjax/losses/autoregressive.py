"""Autoregressive-model likelihoods: 256-way softmax, Bernoulli, discretized logistic mixture.

All functions return the **negative log-likelihood of the discrete data in nats per
example** (summed over pixels and channels, not over the batch), directly comparable across
models; :func:`genjax.losses.bits_per_dim` converts it (``nll / (H W C ln 2)``). No
dequantization is involved: these are probabilities of the 8-bit (or binary) values.

Floating inputs of any precision are accepted (e.g. bfloat16 outputs of a network run under
``train.compute_dtype=bfloat16``); they are cast up to at least float32 first, so every
likelihood and reduction is computed and returned in float32 (float64 stays float64).

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016,
  arXiv:1601.06759.
  Salimans, Karpathy, Chen & Kingma, "PixelCNN++: Improving the PixelCNN with Discretized
  Logistic Mixture Likelihood and Other Modifications", ICLR 2017, arXiv:1701.05517.
"""

import math

import jax
import jax.numpy as jnp

from genjax.losses import _checks
from genjax.losses.variational import bernoulli_log_likelihood

# Half the width of one of the 256 bins of [-1, 1]: x = 2 v / 255 - 1 has spacing 2 / 255.
_HALF_BIN = 1.0 / 255.0
# Bins whose centres are within this distance of -1 / +1 are the open-ended edge bins.
_EDGE = 0.999
# Where (upper - lower standardised bin edge) is below this, log P(bin) is taken as
# log pdf(centre) + log(bin width); the relative error of that midpoint rule is < 1e-11 there.
_NARROW = 1e-5


def categorical_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """``-log softmax(logits)[x]`` summed per example (PixelRNN / PixelCNN 256-way softmax).

    Args:
      logits: (B, ..., K) unnormalised log-probabilities over K values (K = 256 for 8-bit
        sub-pixels), floating point.
      x: (B, ...) integer targets in ``[0, K)``, the shape of ``logits`` without its last axis.
        Values are not checked (that would require reading the array).

    Returns:
      (B,) negative log-likelihood in nats per example.

    References:
      van den Oord et al. (2016), Section 5.3 (discrete softmax distribution over 256 values).
    """
    logits = _checks.float32_array("logits", logits)
    x = _checks.integer_array("x", x)
    _checks.min_ndim("logits", logits, 2, "(B, ..., K)")
    if x.shape != logits.shape[:-1]:
        raise ValueError(
            f"x must have the shape of logits without its last (class) axis {logits.shape[:-1]}, "
            f"got {x.shape}"
        )
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, x[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return -jnp.sum(picked, axis=tuple(range(1, picked.ndim)))


def bernoulli_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """``-log Bernoulli(x | sigmoid(logits))`` summed per example (binarized images).

    Args:
      logits: (B, ...) logits, floating point.
      x: (B, ...) binary targets (float, int or bool), the shape of ``logits``.

    Returns:
      (B,) negative log-likelihood in nats per example (stable for any finite logit).

    References:
      van den Oord et al. (2016), Section 5.2 (binarized MNIST, sigmoid output).
    """
    return -bernoulli_log_likelihood(_checks.float32_array("logits", logits), x)


def _log_bin_probability(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """log P(bin of x) under Logistic(mean, exp(log_scale)) discretized to 256 bins of [-1, 1].

    The edge bins extend to -inf (x = -1) and +inf (x = +1). For interior bins with
    standardised edges ``a > b``, ``log(sigmoid(a) - sigmoid(b)) =
    log_sigmoid(a) - softplus(b) + log(-expm1(b - a))``, exact and free of cancellation in
    both tails. Every branch is finite with finite gradients, so ``jnp.where`` is safe.
    """
    inv_scale = jnp.exp(-log_scale)
    centred = x - mean
    upper = inv_scale * (centred + _HALF_BIN)
    lower = inv_scale * (centred - _HALF_BIN)
    # The standardised bin width 2 / (255 s), not upper - lower: that difference cancels in
    # float32 when |x - mean| >> the bin (relative error ~1e-4 at 6 scales from the mean).
    width = (2.0 * _HALF_BIN) * inv_scale
    wide = width > _NARROW
    safe_width = jnp.where(wide, width, 1.0)
    log_delta = (
        jax.nn.log_sigmoid(upper) - jax.nn.softplus(lower) + jnp.log(-jnp.expm1(-safe_width))
    )
    mid = inv_scale * centred
    # log pdf of the logistic at the centre, times the bin width 2/255.
    log_midpoint = mid - log_scale - 2.0 * jax.nn.softplus(mid) + math.log(2.0 * _HALF_BIN)
    interior = jnp.where(wide, log_delta, log_midpoint)
    left_edge = jax.nn.log_sigmoid(upper)  # log CDF(x + 1/255)
    right_edge = -jax.nn.softplus(lower)  # log (1 - CDF(x - 1/255))
    return jnp.where(x < -_EDGE, left_edge, jnp.where(x > _EDGE, right_edge, interior))


def discretized_logistic_mixture_nll(
    params: jax.Array,
    x: jax.Array,
    *,
    num_mixtures: int | None = None,
    min_log_scale: float = -7.0,
) -> jax.Array:
    """PixelCNN++ discretized logistic mixture NLL, with channel coupling for RGB.

    Each pixel is a mixture of M components shared by its channels. Component k gives
    channel c a logistic distribution with mean ``mu_c`` and scale ``s_c = exp(log_s_c)``,
    discretized to the 256 bins of ``x = 2 v / 255 - 1`` (bin ``[x - 1/255, x + 1/255]``; the
    bins of ``v = 0`` and ``v = 255`` extend to ``-inf`` and ``+inf``). For RGB the means are
    coupled linearly to the preceding channels of the *same pixel* (Section 2.2):

    ``mu_r = m_r``, ``mu_g = m_g + alpha x_r``, ``mu_b = m_b + beta x_r + gamma x_g``,

    so ``p(r, g, b) = sum_k pi_k p_k(r) p_k(g | r) p_k(b | r, g)`` is normalised over the 256^3
    colours. ``log_s`` is clipped below at ``min_log_scale`` and the coupling coefficients are
    ``tanh`` of the raw outputs (both as in the authors' released code).

    Layout of the last axis of ``params`` (P values per pixel):

    * ``params[..., :M]``: mixture logits (``pi = softmax``).
    * RGB (C = 3, P = 10 M): ``params[..., M:]`` reshaped to (3, 3, M) holds, for channel c,
      ``[c, 0]`` means, ``[c, 1]`` log-scales, ``[c, 2]`` raw coupling coefficients; the
      coefficient rows are ``alpha`` (r -> g), ``beta`` (r -> b), ``gamma`` (g -> b).
    * Grey (C = 1, P = 3 M): ``params[..., M:]`` reshaped to (1, 2, M): means, log-scales.

    Args:
      params: (B, H, W, P) network outputs, floating point (bfloat16 is cast up, see below).
      x: (B, H, W, C) images in ``[-1, 1]`` with C = 3 or 1, 8-bit values ``v`` mapped by
        ``x = 2 v / 255 - 1`` (values are not checked), floating point. ``params`` and ``x`` are
        both cast to their common dtype, at least float32: the bins of ``x`` are 2 / 255 wide and
        bfloat16's spacing on [0.5, 1) is 2^-8, half a bin, so the targets must never be rounded
        to a network's lower precision.
      num_mixtures: M (keyword-only); inferred from P when None (P / 10 for RGB, P / 3 for grey).
      min_log_scale: lower clip of the log-scales (keyword-only).

    Returns:
      (B,) negative log-likelihood of the 8-bit image in nats per example. Finite, with finite
      gradients, at the edge bins and for extreme parameters.

    References:
      Salimans et al. (2017), Eq. 2 (discretized logistic mixture, edge cases at 0 and 255)
      and Eq. 3 / Section 2.2 (conditioning on whole pixels, linear dependence on the
      preceding channels).
    """
    params = _checks.float32_array("params", params)
    x = _checks.float32_array("x", x)
    _checks.exact_ndim("params", params, 4, "(B, H, W, P)")
    _checks.exact_ndim("x", x, 4, "(B, H, W, C)")
    channels = x.shape[-1]
    if channels not in (1, 3):
        raise ValueError(f"x must have C = 1 (grey) or 3 (RGB) channels, got shape {x.shape}")
    if params.shape[:3] != x.shape[:3]:
        raise ValueError(
            f"params must have the (B, H, W) of x {x.shape[:3]}, got shape {params.shape}"
        )
    per_mixture = 10 if channels == 3 else 3
    size = params.shape[-1]
    if num_mixtures is None:
        if size == 0 or size % per_mixture:
            raise ValueError(
                f"params must have a last axis of {per_mixture} * M values for C = {channels}, "
                f"got {size}"
            )
        num_mixtures = size // per_mixture
    num_mixtures = _checks.positive_int("num_mixtures", num_mixtures)
    if size != per_mixture * num_mixtures:
        raise ValueError(
            f"params must have a last axis of {per_mixture} * num_mixtures = "
            f"{per_mixture * num_mixtures} for C = {channels}, got {size}"
        )
    min_log_scale = _checks.finite_scalar("min_log_scale", min_log_scale)
    common = jnp.promote_types(params.dtype, x.dtype)
    params, x = params.astype(common), x.astype(common)

    m = num_mixtures
    log_weights = jax.nn.log_softmax(params[..., :m], axis=-1)  # (B, H, W, M)
    rows = (per_mixture - 1) // channels  # 3 (mean, log-scale, coupling) or 2 (mean, log-scale)
    rest = params[..., m:].reshape(*params.shape[:3], channels, rows, m)
    means = rest[..., 0, :]  # (B, H, W, C, M)
    log_scales = jnp.maximum(rest[..., 1, :], min_log_scale)
    xk = x[..., None]  # (B, H, W, C, 1)
    if channels == 3:
        coeffs = jnp.tanh(rest[..., 2, :])
        mean_g = means[..., 1, :] + coeffs[..., 0, :] * xk[..., 0, :]
        mean_b = (
            means[..., 2, :] + coeffs[..., 1, :] * xk[..., 0, :] + coeffs[..., 2, :] * xk[..., 1, :]
        )
        means = jnp.stack([means[..., 0, :], mean_g, mean_b], axis=-2)
    log_probs = _log_bin_probability(xk, means, log_scales)  # (B, H, W, C, M)
    log_pixel = jax.nn.logsumexp(log_weights + jnp.sum(log_probs, axis=-2), axis=-1)
    return -jnp.sum(log_pixel, axis=(1, 2))
