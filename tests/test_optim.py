"""Tests of genjax.train.optim's weight-clipping transformation (WGAN, Arjovsky et al. 2017)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.losses import clip_weights
from genjax.train.optim import weight_clipping_transform


def f32(a):
    return jnp.asarray(a, jnp.float32)


def test_weight_clipping_transform_leaves_params_clipped_after_apply_updates():
    c = 0.01
    rng = np.random.default_rng(13)
    params = {
        "w": f32(rng.normal(scale=0.02, size=(50,))),
        "b": f32(rng.normal(scale=0.02, size=(7,))),
    }
    grads = jax.tree.map(lambda p: f32(rng.normal(size=p.shape)), params)
    tx = optax.chain(optax.rmsprop(5e-3), weight_clipping_transform(c))
    raw_tx = optax.rmsprop(5e-3)
    state, raw_state = tx.init(params), raw_tx.init(params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        raw_updates, raw_state = raw_tx.update(grads, raw_state, params)
        expected = clip_weights(optax.apply_updates(params, raw_updates), c)
        new = optax.apply_updates(params, updates)
        for p, e in zip(jax.tree.leaves(new), jax.tree.leaves(expected), strict=True):
            assert np.all(np.abs(np.asarray(p)) <= np.float32(c))
            # equal up to one float32 rounding of params + update (|params| <= 0.1 here)
            np.testing.assert_allclose(p, e, rtol=0, atol=1e-8)
        params = new


def test_weight_clipping_transform_stays_inside_the_interval_when_rounding_would_leave_it():
    # p = 1000, u = -1000.5: clip(p + u) = -0.01, but fl(fl(-0.01 - 1000) + 1000) = -0.0100098
    # in float32 (the spacing at 1000 is 6.1e-5); the transform must still land inside [-c, c].
    c = 0.01
    params = jnp.array([1000.0, -1000.0, 0.005], jnp.float32)
    raw = jnp.array([-1000.5, 1000.5, 0.001], jnp.float32)
    naive = params + (jnp.clip(params + raw, -c, c) - params)
    assert np.any(np.abs(np.asarray(naive)) > np.float32(c))  # the hazard is real
    updates, _ = weight_clipping_transform(c).update(raw, optax.EmptyState(), params)
    new = np.asarray(optax.apply_updates(params, updates))
    assert np.all(np.abs(new) <= np.float32(c))
    np.testing.assert_allclose(new, [-c, c, 0.006], atol=1e-4)


def test_weight_clipping_transform_requires_params():
    tx = weight_clipping_transform(0.01)
    with pytest.raises(ValueError, match="needs params"):
        tx.update({"w": jnp.zeros(2)}, tx.init({"w": jnp.zeros(2)}))


@pytest.mark.parametrize("bad", [math.nan, 0.0, -0.01, math.inf])
def test_weight_clipping_transform_refuses_a_bad_clip_value(bad):
    with pytest.raises(ValueError, match="clip_value must be a finite number"):
        weight_clipping_transform(bad)
