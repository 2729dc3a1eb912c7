"""Variational objectives: the VAE evidence lower bound and the importance-weighted bound.

Conventions (all functions):

* Axis 0 of every per-example input is the batch axis ``B``; sample axes (``S`` or ``K``)
  come *before* it. Everything after the batch axis is summed over (pixels, channels,
  latent dimensions), so a result has one value per example.
* Log-densities and bounds are in **nats** (natural log), *per example*, and are not
  reduced over the batch: the caller takes the mean (or sum) it needs.
* Densities are returned as log-densities (higher is better). A training loss is the
  negated mean, e.g. ``-jnp.mean(elbo(log_lik, kl))``.
* Gaussians are parameterised by ``mean`` and ``log_var`` (log of the variance, not of the
  standard deviation), as in Kingma & Welling (2014).
* Floating inputs of any precision are accepted (e.g. bfloat16 outputs of a network run under
  ``train.compute_dtype=bfloat16``); they are cast up to at least float32 first, so every
  log-density, KL, bound and reduction is computed and returned in float32 (float64 stays
  float64).

References:
  Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
  Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
  arXiv:1509.00519.
"""

import math

import jax
import jax.numpy as jnp

from genjax.losses import _checks

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_after(x: jax.Array, num_leading: int) -> jax.Array:
    """Sums ``x`` over all axes after the first ``num_leading``."""
    return jnp.sum(x, axis=tuple(range(num_leading, x.ndim)))


def _diagonal_gaussian(name: str, x, mean, log_var) -> jax.Array:
    """Per-example diagonal Gaussian log-density; ``name`` is used in error messages."""
    x = _checks.float32_array(name, x)
    mean = _checks.float32_array("mean", mean)
    log_var = _checks.float32_array("log_var", log_var)
    _checks.min_ndim(name, x, 1, "a leading batch axis")
    _checks.broadcastable("mean", mean, x.shape, name)
    _checks.broadcastable("log_var", log_var, x.shape, name)
    log_var = jnp.broadcast_to(log_var, x.shape)
    ll = -0.5 * (_LOG_2PI + log_var + jnp.square(x - mean) * jnp.exp(-log_var))
    return _sum_after(ll, 1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL divergence from a diagonal Gaussian to the standard normal, per example.

    ``KL(N(mean, diag(exp(log_var))) || N(0, I)) = 1/2 sum_j (exp(log_var_j) + mean_j^2 - 1 - log_var_j)``,
    summed over all non-batch axes. ``exp(log_var) - 1 - log_var`` is computed as
    ``expm1(log_var) - log_var``, which avoids the cancellation of ``exp(log_var) - 1`` near
    ``log_var = 0`` (where the KL is ~ ``log_var^2 / 4`` per dimension).

    Args:
      mean: posterior means, shape (B, ...), floating point.
      log_var: posterior log-variances, same shape as ``mean``.

    Returns:
      (B,) KL divergence in nats per example (non-negative).

    References:
      Kingma & Welling (2014), Appendix B (the negative of the KL term in Eq. 10).
    """
    mean = _checks.float32_array("mean", mean)
    log_var = _checks.float32_array("log_var", log_var)
    _checks.min_ndim("mean", mean, 1, "a leading batch axis")
    _checks.same_shape("mean", mean, "log_var", log_var)
    return 0.5 * _sum_after(jnp.expm1(log_var) - log_var + jnp.square(mean), 1)


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Bernoulli log-likelihood ``log p(x | logits)``, summed per example.

    ``sum_j x_j log sigmoid(l_j) + (1 - x_j) log sigmoid(-l_j)``, with log-sigmoid evaluated
    stably (finite values and gradients for any finite logit). For ``x`` in ``{0, 1}`` this is
    the Bernoulli log-probability mass; for continuous ``x`` in ``[0, 1]`` (grey levels used as
    targets, as in many VAE papers) it is the negative binary cross-entropy, which is *not* a
    normalised log-density of ``x``: do not report it as a log-likelihood of continuous data.

    Args:
      logits: decoder logits, shape (B, ...), floating point.
      x: targets in [0, 1] (float, int or bool), same shape as ``logits``. Values are not
        checked (that would require reading the array).

    Returns:
      (B,) log-likelihood in nats per example (<= 0 for binary ``x``).

    References:
      Kingma & Welling (2014), Appendix C.1 (Bernoulli MLP decoder).
    """
    logits = _checks.float32_array("logits", logits)
    _checks.min_ndim("logits", logits, 1, "a leading batch axis")
    _checks.same_shape("logits", logits, "x", x)
    x = _checks.real_array("x", x, logits)
    ll = x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)
    return _sum_after(ll, 1)


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Diagonal Gaussian log-density ``log N(x; mean, diag(exp(log_var)))``, per example.

    ``sum_j -1/2 (log(2 pi) + log_var_j + (x_j - mean_j)^2 / exp(log_var_j))`` over all
    non-batch axes of ``x``. ``mean`` and ``log_var`` may be any shapes that broadcast to
    ``x.shape`` (e.g. a scalar or a learned per-dimension ``log_var`` of shape ``x.shape[1:]``);
    a broadcast parameter counts once per dimension of ``x``.

    Args:
      x: observations, shape (B, ...), floating point.
      mean: means, broadcastable to ``x.shape``.
      log_var: log-variances, broadcastable to ``x.shape``.

    Returns:
      (B,) log-density in nats per example.

    References:
      Kingma & Welling (2014), Appendix C.2 (Gaussian MLP decoder).
    """
    return _diagonal_gaussian("x", x, mean, log_var)


def gaussian_log_density(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """``log N(z; mean, diag(exp(log_var)))`` summed over the non-batch axes of ``z``.

    The same formula as :func:`gaussian_log_likelihood`, named for its use on latents
    (``log q(z|x)`` in an importance weight).

    Args:
      z: points, shape (B, ...), floating point.
      mean: means, broadcastable to ``z.shape``.
      log_var: log-variances, broadcastable to ``z.shape``.

    Returns:
      (B,) log-density in nats per example.

    References:
      Burda et al. (2016), Eq. 8 (the ``q(h|x)`` in the importance weights).
    """
    return _diagonal_gaussian("z", z, mean, log_var)


def standard_normal_log_density(z: jax.Array) -> jax.Array:
    """``log N(z; 0, I)`` summed over the non-batch axes of ``z``.

    Args:
      z: points, shape (B, ...), floating point.

    Returns:
      (B,) log-density in nats per example: ``-1/2 sum_j (z_j^2 + log(2 pi))``.

    References:
      Kingma & Welling (2014), Section 3 (the prior ``p(z) = N(z; 0, I)``).
    """
    z = _checks.float32_array("z", z)
    _checks.min_ndim("z", z, 1, "a leading batch axis")
    return _sum_after(-0.5 * (jnp.square(z) + _LOG_2PI), 1)


def reparameterize(
    key: jax.Array, mean: jax.Array, log_var: jax.Array, *, num_samples: int = 1
) -> jax.Array:
    """Draws ``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` (reparameterization trick).

    Differentiable in ``mean`` and ``log_var``; the noise depends on ``key`` only.

    Args:
      key: a JAX PRNG key.
      mean: means, shape (B, ...), floating point.
      log_var: log-variances, broadcastable to ``mean.shape``.
      num_samples: number S >= 1 of independent samples per example (keyword-only).

    Returns:
      (S, B, ...) samples in the dtype of ``mean`` cast up to at least float32 (the noise is
      drawn in that dtype). The sample axis is kept when S = 1.

    References:
      Kingma & Welling (2014), Section 2.4 and Eq. 10 (``z = mu + sigma * eps``).
    """
    num_samples = _checks.positive_int("num_samples", num_samples)
    mean = _checks.float32_array("mean", mean)
    log_var = _checks.float32_array("log_var", log_var)
    _checks.min_ndim("mean", mean, 1, "a leading batch axis")
    _checks.broadcastable("log_var", log_var, mean.shape, "mean")
    eps = jax.random.normal(key, (num_samples, *mean.shape), dtype=mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


def monte_carlo_kl(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Single-sample KL estimate ``log q(z|x) - log p(z)`` for each sample of ``z``.

    With ``z ~ q(z|x) = N(mean, diag(exp(log_var)))`` (e.g. from :func:`reparameterize`) and
    ``p(z) = N(0, I)``, the mean over the sample axis is an unbiased estimate of
    :func:`gaussian_kl` (which has lower variance). It gives the ELBO in the sampled form of
    Kingma & Welling (2014), Eq. 6: ``mean_s(log p(x|z_s) - monte_carlo_kl(z, ...)[s])``.

    Args:
      z: samples, shape (S, B, ...), floating point.
      mean: means of q, shape (B, ...) (the shape of ``z[0]``).
      log_var: log-variances of q, broadcastable to ``mean.shape``.

    Returns:
      (S, B) ``log q(z_s|x) - log p(z_s)`` in nats, summed over the latent axes.

    References:
      Kingma & Welling (2014), Eq. 6 (generic SGVB estimator, log q(z|x) - log p(z) per sample).
    """
    z = _checks.float32_array("z", z)
    mean = _checks.float32_array("mean", mean)
    log_var = _checks.float32_array("log_var", log_var)
    _checks.min_ndim("z", z, 2, "(S, B, ...)")
    _checks.same_shape("z[0]", z[0], "mean", mean)
    _checks.broadcastable("log_var", log_var, mean.shape, "mean")
    log_q = -0.5 * (_LOG_2PI + log_var + jnp.square(z - mean) * jnp.exp(-log_var))
    log_p = -0.5 * (_LOG_2PI + jnp.square(z))
    return _sum_after(log_q - log_p, 2)


def elbo(log_likelihood: jax.Array, kl: jax.Array) -> jax.Array:
    """Evidence lower bound with a closed-form KL, per example.

    ``ELBO(x) = 1/S sum_s log p(x | z_s) - KL(q(z|x) || p(z))`` with ``z_s ~ q(z|x)``.

    Args:
      log_likelihood: (S, B) reconstruction log-likelihoods ``log p(x | z_s)`` in nats, one per
        posterior sample (e.g. :func:`bernoulli_log_likelihood` of decoded
        :func:`reparameterize` samples).
      kl: (B,) KL divergences in nats (e.g. :func:`gaussian_kl`).

    Returns:
      (B,) ELBO in nats per example (a lower bound on ``log p(x)``; maximise it).

    References:
      Kingma & Welling (2014), Eq. 10.
    """
    log_likelihood = _checks.float32_array("log_likelihood", log_likelihood)
    kl = _checks.float32_array("kl", kl)
    _checks.exact_ndim("log_likelihood", log_likelihood, 2, "(S, B)")
    _checks.exact_ndim("kl", kl, 1, "(B,)")
    if log_likelihood.shape[1] != kl.shape[0]:
        raise ValueError(
            f"kl must have shape (B,) = ({log_likelihood.shape[1]},) to match log_likelihood "
            f"of shape (S, B) = {log_likelihood.shape}, got {kl.shape}"
        )
    return jnp.mean(log_likelihood, axis=0) - kl


def iwae_bound(log_weights: jax.Array) -> jax.Array:
    """Importance-weighted lower bound ``log 1/K sum_k w_k``, per example.

    ``L_K(x) = logsumexp_k(log w_k) - log K`` with ``log w_k = log p(x, z_k) - log q(z_k|x)`` and
    ``z_k ~ q(z|x)``, computed with a stable log-sum-exp. ``L_1`` is the single-sample ELBO
    estimate, ``L_K`` increases with K on average and tends to ``log p(x)`` as K grows.

    Args:
      log_weights: (K, B) log importance weights in nats, K samples for each of B examples.

    Returns:
      (B,) bound in nats per example.

    References:
      Burda et al. (2016), Eq. 8 (and Theorem 1 for the monotonicity in K).
    """
    log_weights = _checks.float32_array("log_weights", log_weights)
    _checks.exact_ndim("log_weights", log_weights, 2, "(K, B)")
    num = log_weights.shape[0]
    if num < 1:
        raise ValueError(f"log_weights must hold K >= 1 samples, got shape {log_weights.shape}")
    return jax.nn.logsumexp(log_weights, axis=0) - jnp.log(jnp.asarray(num, log_weights.dtype))
