"""Adversarial objectives: minimax / non-saturating GAN, WGAN (clipping and gradient penalty), LSGAN.

Conventions (all functions):

* Real before fake. Discriminators output **logits** (``D(x) = sigmoid(logit)``), critics
  and least-squares discriminators output unbounded **scores**.
* Every loss is a scalar to be **minimised** by the player named in the function, the mean
  over all elements of its inputs (examples, and patches for a PatchGAN output of shape
  (B, H, W, 1)). ``log`` is the natural log. No label smoothing or other hidden change of the
  objective: what the docstring states is what is computed.
* Real and fake inputs may have different batch sizes but must have the same per-example
  shape (``x.shape[1:]``), since they come from the same discriminator.
* Floating inputs of any precision are accepted (bfloat16 outputs of a network run under
  ``train.compute_dtype=bfloat16``) and cast up to at least float32, so every loss and its
  reduction is computed and returned in float32 (float64 stays float64). Real and fake may
  have different float dtypes.

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, arXiv:1406.2661.
  Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, arXiv:1701.07875.
  Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, arXiv:1704.00028.
  Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, arXiv:1611.04076.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from genjax.losses import _checks


def _outputs(real_name: str, real, fake_name: str, fake) -> tuple[jax.Array, jax.Array]:
    """Validates a pair of discriminator outputs (float, >= 1 axis, same per-example shape)."""
    real = _checks.float32_array(real_name, real)
    fake = _checks.float32_array(fake_name, fake)
    _checks.min_ndim(real_name, real, 1, "a leading batch axis")
    _checks.min_ndim(fake_name, fake, 1, "a leading batch axis")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"{fake_name} must have the per-example shape of {real_name} {real.shape[1:]} "
            f"(shape {real.shape}), got shape {fake.shape}"
        )
    return real, fake


def _output(name: str, x) -> jax.Array:
    x = _checks.float32_array(name, x)
    _checks.min_ndim(name, x, 1, "a leading batch axis")
    return x


# -- Goodfellow et al. (2014) ------------------------------------------------------------------


def minimax_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Discriminator loss of the original GAN: ``-E[log D(x)] - E[log(1 - D(G(z)))]``.

    Computed as ``-mean(log_sigmoid(real_logits)) - mean(log_sigmoid(-fake_logits))``, stable for
    any finite logit. This is the negated value function ``V(D, G)``; no label smoothing.

    Args:
      real_logits: discriminator logits on data, shape (B, ...).
      fake_logits: discriminator logits on generated samples, shape (B', ...) with the same
        per-example shape.

    Returns:
      Scalar loss in nats, minimised by the discriminator (``2 log 2`` at ``D = 1/2``).

    References:
      Goodfellow et al. (2014), Eq. 1 and Algorithm 1.
    """
    real_logits, fake_logits = _outputs("real_logits", real_logits, "fake_logits", fake_logits)
    return -jnp.mean(jax.nn.log_sigmoid(real_logits)) - jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def minimax_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """Saturating ("minimax") generator loss ``E[log(1 - D(G(z)))]``.

    The generator's term of ``V(D, G)`` as written in Eq. 1; its gradient vanishes when the
    discriminator confidently rejects the samples. See :func:`nonsaturating_generator_loss`.

    Args:
      fake_logits: discriminator logits on generated samples, shape (B, ...).

    Returns:
      Scalar ``mean(log_sigmoid(-fake_logits))`` in nats (<= 0), minimised by the generator.

    References:
      Goodfellow et al. (2014), Eq. 1 and Algorithm 1 (generator step).
    """
    return jnp.mean(jax.nn.log_sigmoid(-_output("fake_logits", fake_logits)))


def nonsaturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss ``-E[log D(G(z))]``.

    The heuristic of Goodfellow et al. (2014), Section 3: maximise ``log D(G(z))`` instead of
    minimising ``log(1 - D(G(z)))``; same fixed point, strong gradients early in training.

    Args:
      fake_logits: discriminator logits on generated samples, shape (B, ...).

    Returns:
      Scalar ``-mean(log_sigmoid(fake_logits))`` in nats (>= 0), minimised by the generator.

    References:
      Goodfellow et al. (2014), Section 3, paragraph after Eq. 1.
    """
    return -jnp.mean(jax.nn.log_sigmoid(_output("fake_logits", fake_logits)))


# -- Wasserstein GAN ----------------------------------------------------------------------------


def wasserstein_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
    """Critic loss of WGAN: ``E[f(G(z))] - E[f(x)]``.

    Minimising it maximises the Kantorovich-Rubinstein estimate ``E[f(x)] - E[f(G(z))]`` of the
    Wasserstein-1 distance; ``f`` must be kept (approximately) 1-Lipschitz, by
    :func:`clip_weights` / :func:`genjax.train.optim.weight_clipping_transform` (WGAN) or
    :func:`gradient_penalty` (WGAN-GP). Its negation is the usual "W-distance" training curve.

    Args:
      real_scores: critic outputs on data, shape (B, ...).
      fake_scores: critic outputs on generated samples, same per-example shape.

    Returns:
      Scalar loss, minimised by the critic.

    References:
      Arjovsky et al. (2017), Eq. 3 and Algorithm 1; Gulrajani et al. (2017), Eq. 3.
    """
    real_scores, fake_scores = _outputs("real_scores", real_scores, "fake_scores", fake_scores)
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores: jax.Array) -> jax.Array:
    """Generator loss of WGAN: ``-E[f(G(z))]``.

    Args:
      fake_scores: critic outputs on generated samples, shape (B, ...).

    Returns:
      Scalar loss, minimised by the generator.

    References:
      Arjovsky et al. (2017), Algorithm 1, line 10; Gulrajani et al. (2017), Algorithm 1.
    """
    return -jnp.mean(_output("fake_scores", fake_scores))


def gradient_penalty(
    critic_fn: Callable[[jax.Array], jax.Array],
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
    *,
    target: float = 1.0,
) -> jax.Array:
    """WGAN-GP two-sided gradient penalty ``E[(||grad_x f(x_hat)||_2 - target)^2]``.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per example, drawn as
    ``jax.random.uniform(key, (B, 1, ..., 1), dtype)`` where ``dtype`` is the common dtype of
    ``real`` and ``fake``, at least float32: a bfloat16 ``fake`` (or ``real``) is promoted, and
    ``x_hat``, its gradient and the norms are float32 (the critic may compute in bfloat16
    inside; its scores are summed in float32). The gradient is that of
    ``sum_i f(x_hat_i)``, i.e. each example's own input gradient (the critic must not mix
    examples: no batch normalisation, as the paper warns). The norm is taken per example over
    **all** non-batch axes (the whole image, channels included), then the squared deviations
    are averaged over the batch. A zero gradient has norm 0 and a zero (sub)gradient there.

    The result is differentiable with respect to the critic's parameters (closed over by
    ``critic_fn``; this needs second derivatives of the critic) and to ``real`` and ``fake``.
    Multiply by the coefficient yourself (``lambda = 10`` in the paper):
    ``wasserstein_critic_loss(r, f) + 10 * gradient_penalty(critic_fn, real, fake, key)``.

    Args:
      critic_fn: maps a batch (B, ...) to scores of shape (B,) or (B, 1).
      real: data batch, shape (B, ...), floating point.
      fake: generated batch, same shape as ``real``, floating point (any float dtype).
      key: a JAX PRNG key for the interpolation coefficients.
      target: the gradient norm the penalty pulls towards (keyword-only, >= 0; 1 in the paper).

    Returns:
      Scalar penalty (without the coefficient lambda).

    References:
      Gulrajani et al. (2017), Eq. 3 and Algorithm 1 (lines 4-7).
    """
    if not callable(critic_fn):
        raise TypeError(f"critic_fn must be callable, got {type(critic_fn).__name__}")
    target = _checks.finite_scalar("target", target, low=0.0)
    real = _checks.float_array("real", real)
    fake = _checks.float_array("fake", fake)
    _checks.min_ndim("real", real, 2, "(B, ...) with at least one non-batch axis")
    _checks.same_shape("real", real, "fake", fake)
    dtype = jnp.promote_types(jnp.promote_types(real.dtype, fake.dtype), jnp.float32)
    real, fake = real.astype(dtype), fake.astype(dtype)
    batch = real.shape[0]
    eps = jax.random.uniform(key, (batch,) + (1,) * (real.ndim - 1), dtype=dtype)
    x_hat = eps * real + (1.0 - eps) * fake

    def total_score(x: jax.Array) -> jax.Array:
        scores = jnp.asarray(critic_fn(x))
        if scores.shape not in ((batch,), (batch, 1)):
            raise ValueError(
                f"critic_fn must return scores of shape ({batch},) or ({batch}, 1) for an input "
                f"of shape {x.shape}, got shape {scores.shape}"
            )
        return jnp.sum(scores.astype(jnp.promote_types(scores.dtype, jnp.float32)))

    grads = jax.grad(total_score)(x_hat)
    squared_norm = jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))
    # Double-where: sqrt has an infinite derivative at 0; keep the gradient finite (zero) there.
    positive = squared_norm > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, squared_norm, 1.0)), 0.0)
    return jnp.mean(jnp.square(norm - target))


# -- weight clipping (original WGAN) ------------------------------------------------------------


def clip_weights(params: Any, clip_value: float) -> Any:
    """Clips every array of a parameter pytree to ``[-clip_value, clip_value]``.

    Apply it to the critic's parameters after each optimiser step (WGAN, ``c = 0.01``).

    Args:
      params: pytree of floating-point arrays.
      clip_value: ``c > 0``.

    Returns:
      Pytree of the same structure with values clipped elementwise.

    References:
      Arjovsky et al. (2017), Algorithm 1, line 7.
    """
    c = _checks.finite_scalar("clip_value", clip_value, low=0.0, open_low=True)
    return jax.tree.map(lambda p: jnp.clip(p, -c, c), params)


# -- Least squares GAN --------------------------------------------------------------------------


def least_squares_discriminator_loss(
    real_scores: jax.Array,
    fake_scores: jax.Array,
    *,
    real_target: float = 1.0,
    fake_target: float = 0.0,
) -> jax.Array:
    """LSGAN discriminator loss ``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]``.

    ``b = real_target`` and ``a = fake_target``. The defaults are the 0-1 coding
    ``a = 0, b = c = 1`` of Mao et al. (2017); with ``a = -1, b = 1, c = 0`` the generator
    minimises the Pearson chi^2 divergence between ``p_data + p_g`` and ``2 p_g`` (their
    Section 3.2).

    Args:
      real_scores: discriminator outputs (not passed through a sigmoid) on data, (B, ...).
      fake_scores: outputs on generated samples, same per-example shape.
      real_target: ``b`` (keyword-only).
      fake_target: ``a`` (keyword-only).

    Returns:
      Scalar loss, minimised by the discriminator.

    References:
      Mao et al. (2017), Eq. 2.
    """
    real_scores, fake_scores = _outputs("real_scores", real_scores, "fake_scores", fake_scores)
    b = _checks.finite_scalar("real_target", real_target)
    a = _checks.finite_scalar("fake_target", fake_target)
    return 0.5 * jnp.mean(jnp.square(real_scores - b)) + 0.5 * jnp.mean(jnp.square(fake_scores - a))


def least_squares_generator_loss(fake_scores: jax.Array, *, target: float = 1.0) -> jax.Array:
    """LSGAN generator loss ``1/2 E[(D(G(z)) - c)^2]`` with ``c = target``.

    Args:
      fake_scores: discriminator outputs on generated samples, (B, ...).
      target: ``c``, the value the generator wants the discriminator to output (keyword-only).

    Returns:
      Scalar loss, minimised by the generator.

    References:
      Mao et al. (2017), Eq. 2.
    """
    c = _checks.finite_scalar("target", target)
    return 0.5 * jnp.mean(jnp.square(_output("fake_scores", fake_scores) - c))
