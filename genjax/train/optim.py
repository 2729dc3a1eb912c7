"""Build optax transformations from :class:`genjax.train.config.OptimConfig`, and WGAN's
weight-clipping transformation (an optimizer step, not a loss)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from genjax.losses import _checks
from genjax.train.config import OPTIMIZERS, SCHEDULES, OptimConfig


def learning_rate_schedule(cfg: OptimConfig, num_steps: int) -> optax.Schedule:
    """The learning rate as a function of the step, with optional linear warm-up.

    Schedules (``optim.schedule``): ``constant``; ``cosine`` (to 0 at ``num_steps``);
    ``exponential`` (``lr * decay_rate ** (step / decay_steps)``); ``iwae`` (Burda et al.'s
    stages, ``decay_steps`` = steps per epoch); ``linear`` (constant, then linearly to 0 over the
    last ``decay_steps`` steps of the run: CycleGAN's schedule).
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule={cfg.schedule!r}; expected one of {SCHEDULES}")
    lr = cfg.learning_rate
    if cfg.schedule == "constant":
        main = optax.constant_schedule(lr)
    elif cfg.schedule == "cosine":
        main = optax.cosine_decay_schedule(lr, max(1, num_steps - cfg.warmup_steps))
    elif cfg.decay_steps <= 0:
        raise ValueError(f"optim.schedule={cfg.schedule!r} needs optim.decay_steps > 0")
    elif cfg.schedule == "exponential":
        main = optax.exponential_decay(lr, cfg.decay_steps, cfg.decay_rate)
    elif cfg.schedule == "linear":
        hold = max(0, num_steps - cfg.warmup_steps - cfg.decay_steps)
        main = optax.join_schedules(
            [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, cfg.decay_steps)], [hold]
        )
    else:
        main = iwae_schedule(lr, cfg.decay_steps)
    if cfg.warmup_steps > 0:
        warm = optax.linear_schedule(0.0, lr, cfg.warmup_steps)
        return optax.join_schedules([warm, main], [cfg.warmup_steps])
    return main


def iwae_schedule(learning_rate: float, steps_per_epoch: int) -> optax.Schedule:
    """Burda et al. (2016), Sec. 5: rate ``lr * 10 ** (-i / 7)`` for ``3 ** i`` epochs, i = 0..7.

    ``decay_steps`` is the number of steps per epoch; the 8 stages span 3280 epochs, after
    which the last rate is kept.
    """
    boundaries, epochs = {}, 0
    for i in range(1, 8):
        epochs += 3 ** (i - 1)
        boundaries[epochs * steps_per_epoch] = 10 ** (-1 / 7)
    return optax.piecewise_constant_schedule(learning_rate, boundaries)


def make_optimizer(cfg: OptimConfig, num_steps: int) -> optax.GradientTransformation:
    """``optax`` chain: optional global-norm clipping, then the named optimizer."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"optim.name={cfg.name!r}; expected one of {OPTIMIZERS}")
    lr = learning_rate_schedule(cfg, num_steps)
    if cfg.name == "adam":
        opt = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "adamw":
        opt = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    elif cfg.name == "sgd":
        opt = optax.sgd(lr, momentum=cfg.momentum or None)
    else:
        opt = optax.rmsprop(lr, eps=cfg.eps, momentum=cfg.momentum)
    if cfg.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
    return opt


def weight_clipping_transform(clip_value: float) -> optax.GradientTransformation:
    """An optax transformation whose updates leave the parameters clipped to ``[-c, c]``.

    ``update(updates, state, params)`` returns ``u' = clip(params + updates, -c, c) - params``,
    so that ``optax.apply_updates(params, u')`` equals :func:`clip_weights` of
    ``params + updates`` (up to one float rounding, and always inside ``[-c, c]``: where
    rounding would leave the interval, ``u'`` is moved by one ulp towards it).

    It must be the **last** element of an ``optax.chain`` (after the optimiser and the
    learning-rate scaling), and ``params`` must be passed to ``update``, e.g.
    ``tx = optax.chain(optax.rmsprop(5e-5), weight_clipping_transform(0.01))``;
    ``updates, opt_state = tx.update(grads, opt_state, params)``.

    Args:
      clip_value: ``c > 0``.

    Returns:
      An ``optax.GradientTransformation`` with an empty state.

    References:
      Arjovsky et al. (2017), Algorithm 1, line 7 (``w <- clip(w, -c, c)`` after RMSProp).
    """
    c = _checks.finite_scalar("clip_value", clip_value, low=0.0, open_low=True)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def clipped_update(u: jax.Array, p: jax.Array) -> jax.Array:
        u = jnp.asarray(u, p.dtype)
        step = jnp.clip(p + u, -c, c) - p
        result = p + step  # what optax.apply_updates computes
        high, low = jnp.asarray(c, p.dtype), jnp.asarray(-c, p.dtype)
        step = jnp.where(result > high, jnp.nextafter(step, jnp.asarray(-jnp.inf, p.dtype)), step)
        return jnp.where(result < low, jnp.nextafter(step, jnp.asarray(jnp.inf, p.dtype)), step)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "weight_clipping_transform needs params: call tx.update(updates, state, params)"
            )
        return jax.tree.map(clipped_update, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)
