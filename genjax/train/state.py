"""Train state: everything a run needs to continue bit-for-bit, as one pytree.

A :class:`TrainState` holds the global step, the run's base rng key and any number of named
:class:`ModelState` entries (a VAE has one, ``"vae"``; a GAN has two, ``"generator"`` and
``"discriminator"``). Each :class:`ModelState` owns parameters, the optax optimizer state and
the non-trained variable collections of a Flax module (e.g. ``batch_stats``).

The optax ``GradientTransformation`` itself is not part of the state (it is code, built from
the config): methods keep it and pass it to :func:`apply_gradients`.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class ModelState:
    """One optimised network: parameters, optimizer state, other variable collections."""

    params: Any
    opt_state: Any
    collections: Any = flax.struct.field(default_factory=dict)

    @classmethod
    def create(cls, variables: dict, tx: optax.GradientTransformation) -> ModelState:
        """Builds a state from Flax ``variables`` (``{"params": ..., other collections}``)."""
        variables = dict(variables)
        params = variables.pop("params")
        return cls(params=params, opt_state=tx.init(params), collections=variables)

    @property
    def variables(self) -> dict:
        """The ``variables`` dict for ``module.apply``."""
        return {"params": self.params, **self.collections}


@flax.struct.dataclass
class TrainState:
    """Global step, base rng key (raw ``uint32`` key data) and the named model states."""

    step: jax.Array
    rng: jax.Array
    models: dict[str, ModelState]

    @classmethod
    def create(cls, rng: jax.Array, models: dict[str, ModelState]) -> TrainState:
        if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)
        return cls(step=jnp.zeros((), jnp.int32), rng=rng, models=dict(models))

    def step_keys(self, *purposes: str) -> dict[str, jax.Array]:
        """Keys for this step, one per purpose: ``split(fold_in(base, step))``.

        Every call inside one step with the same purposes returns the same keys, so a method
        names each use (``"latents"``, ``"dequantize"``, ``"dropout"``, ``"penalty"``) once.
        """
        base = jax.random.fold_in(jax.random.wrap_key_data(self.rng), self.step)
        keys = jax.random.split(base, len(purposes))
        return dict(zip(purposes, keys, strict=True))

    def replace_model(self, name: str, model: ModelState) -> TrainState:
        return self.replace(models={**self.models, name: model})


def global_norm(tree: Any) -> jax.Array:
    """The l2 norm of all leaves of a pytree together."""
    return optax.tree.norm(tree)


def apply_gradients(
    model: ModelState,
    grads: Any,
    tx: optax.GradientTransformation,
    *,
    collections: Any = None,
) -> tuple[ModelState, dict[str, jax.Array]]:
    """One optimizer update, returning the new state and its norms.

    Args:
      model: the state to update.
      grads: gradients with the structure of ``model.params``.
      tx: the optax transformation the state was created with.
      collections: updated non-trained collections (e.g. new ``batch_stats``); ``None`` keeps
        the old ones.

    Returns:
      ``(new_model_state, {"grad_norm", "param_norm", "update_norm"})`` where each norm is the
      global l2 norm (big_vision's ``l2_grads``, ``l2_params``, ``l2_updates``).
    """
    updates, opt_state = tx.update(grads, model.opt_state, model.params)
    params = optax.apply_updates(model.params, updates)
    new = model.replace(
        params=params,
        opt_state=opt_state,
        collections=model.collections if collections is None else collections,
    )
    norms = {
        "grad_norm": global_norm(grads),
        "param_norm": global_norm(params),
        "update_norm": global_norm(updates),
    }
    return new, norms


def prefixed(prefix: str, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """``{"grad_norm": g}`` -> ``{"prefix/grad_norm": g}`` (for methods with several models)."""
    return {f"{prefix}/{k}": v for k, v in metrics.items()}
