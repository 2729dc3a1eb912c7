"""Tests of genjax.losses.adversarial.

Expected values are computed independently in NumPy float64 from probabilities
(``D = expit(logit)``) at moderate logits; float32 results are compared at rtol=1e-5.
Gradients are checked against finite differences in float64.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special

from genjax.losses import (
    clip_weights,
    gradient_penalty,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _logits(seed, shape, scale=2.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


def f32(a):
    return jnp.asarray(a, jnp.float32)


# -- values --------------------------------------------------------------------------------------


def test_minimax_and_nonsaturating_losses_match_numpy_probabilities():
    real, fake = _logits(0, (6, 1)), _logits(1, (4, 1))  # different batch sizes are allowed
    d_real, d_fake = special.expit(real), special.expit(fake)
    np.testing.assert_allclose(
        minimax_discriminator_loss(f32(real), f32(fake)),
        -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        minimax_generator_loss(f32(fake)), np.mean(np.log(1 - d_fake)), rtol=1e-5
    )
    np.testing.assert_allclose(
        nonsaturating_generator_loss(f32(fake)), -np.mean(np.log(d_fake)), rtol=1e-5
    )


def test_minimax_discriminator_loss_scalar_case_is_2_log_2_at_chance():
    np.testing.assert_allclose(
        minimax_discriminator_loss(jnp.zeros((1,)), jnp.zeros((1,))), 2 * math.log(2), rtol=1e-6
    )


def test_patch_discriminator_outputs_are_averaged_over_all_elements():
    real, fake = _logits(2, (2, 3, 3, 1)), _logits(3, (2, 3, 3, 1))
    expected = -np.mean(np.log(special.expit(real))) - np.mean(np.log(special.expit(-fake)))
    np.testing.assert_allclose(
        minimax_discriminator_loss(f32(real), f32(fake)), expected, rtol=1e-5
    )


def test_wasserstein_losses_match_numpy():
    real, fake = _logits(4, (5,)), _logits(5, (3,))
    np.testing.assert_allclose(
        wasserstein_critic_loss(f32(real), f32(fake)), fake.mean() - real.mean(), rtol=1e-5
    )
    np.testing.assert_allclose(wasserstein_generator_loss(f32(fake)), -fake.mean(), rtol=1e-5)


def test_least_squares_losses_match_numpy_for_both_codings():
    real, fake = _logits(6, (5, 1)), _logits(7, (5, 1))
    np.testing.assert_allclose(
        least_squares_discriminator_loss(f32(real), f32(fake)),
        0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        least_squares_generator_loss(f32(fake)), 0.5 * np.mean((fake - 1) ** 2), rtol=1e-5
    )
    np.testing.assert_allclose(
        least_squares_discriminator_loss(f32(real), f32(fake), real_target=1.0, fake_target=-1.0),
        0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean((fake + 1) ** 2),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        least_squares_generator_loss(f32(fake), target=0.0), 0.5 * np.mean(fake**2), rtol=1e-5
    )


# -- stability and gradients ---------------------------------------------------------------------


def test_logit_losses_are_finite_with_finite_gradients_at_extreme_logits():
    real = jnp.array([100.0, -100.0])
    fake = jnp.array([-100.0, 100.0])
    d = minimax_discriminator_loss(real, fake)
    np.testing.assert_allclose(d, 100.0, rtol=1e-6)  # one confident miss of 100 nats in each mean
    np.testing.assert_allclose(minimax_generator_loss(fake), -50.0, rtol=1e-6)
    np.testing.assert_allclose(nonsaturating_generator_loss(fake), 50.0, rtol=1e-6)
    grads = [
        jax.grad(minimax_discriminator_loss, argnums=(0, 1))(real, fake),
        jax.grad(minimax_generator_loss)(fake),
        jax.grad(nonsaturating_generator_loss)(fake),
    ]
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(g))
    # d/dl of -mean(log sigmoid(l)) = -(1 - sigmoid(l)) / B: -0.5 at l = -100, 0 at l = 100.
    np.testing.assert_allclose(grads[0][0], [0.0, -0.5], atol=1e-7)


def test_gradients_match_finite_differences(x64):
    real, fake = jnp.asarray(_logits(8, (4, 1))), jnp.asarray(_logits(9, (3, 1)))

    # All losses in one tuple: one compilation; second order covers the log-sigmoid curvature.
    def all_losses(r, f):
        return (
            minimax_discriminator_loss(r, f),
            minimax_generator_loss(f),
            nonsaturating_generator_loss(f),
            wasserstein_critic_loss(r, f),
            wasserstein_generator_loss(f),
            least_squares_discriminator_loss(r, f, fake_target=-1.0),
            least_squares_generator_loss(f),
        )

    check_grads(jax.jit(all_losses), (real, fake), order=2, modes=("rev",), atol=1e-6, rtol=1e-6)


# -- gradient penalty ----------------------------------------------------------------------------


def test_gradient_penalty_of_a_linear_critic_is_exact_for_4d_inputs():
    # f(x) = sum(w * x) over (H, W, C): grad_x f = w everywhere, so the per-example norm is
    # ||w|| over ALL non-batch axes, whatever the interpolation.
    rng = np.random.default_rng(10)
    w = f32(rng.normal(size=(4, 3, 2)) * 0.3)
    real, fake = f32(rng.normal(size=(5, 4, 3, 2))), f32(rng.normal(size=(5, 4, 3, 2)))
    critic = lambda x: jnp.sum(w * x, axis=(1, 2, 3))
    norm = float(np.linalg.norm(np.asarray(w, np.float64)))
    np.testing.assert_allclose(
        gradient_penalty(critic, real, fake, jax.random.key(0)), (norm - 1) ** 2, rtol=1e-5
    )
    np.testing.assert_allclose(
        gradient_penalty(critic, real, fake, jax.random.key(0), target=2.0),
        (norm - 2) ** 2,
        rtol=1e-5,
    )
    # A (B, 1) critic output is accepted and gives the same value.
    critic_col = lambda x: critic(x)[:, None]
    np.testing.assert_allclose(
        gradient_penalty(critic_col, real, fake, jax.random.key(0)), (norm - 1) ** 2, rtol=1e-5
    )


def test_gradient_penalty_of_a_quadratic_critic_uses_documented_interpolation():
    # f(x) = 1/2 sum(x^2): grad = x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per example
    # drawn as documented: jax.random.uniform(key, (B, 1, 1, 1)).
    rng = np.random.default_rng(11)
    real = rng.normal(size=(6, 2, 2, 3))
    fake = rng.normal(size=(6, 2, 2, 3))
    key = jax.random.key(3)
    critic = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2, 3))
    eps = np.asarray(jax.random.uniform(key, (6, 1, 1, 1)), np.float64)
    x_hat = eps * real + (1 - eps) * fake
    norms = np.sqrt((x_hat**2).reshape(6, -1).sum(1))
    got = gradient_penalty(critic, f32(real), f32(fake), key)
    np.testing.assert_allclose(got, np.mean((norms - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_interpolates_uniformly_monte_carlo():
    # real with ||r|| = 2, fake = 0, f = 1/2 ||x||^2: norm = 2 eps, E[(2 eps - 1)^2] = 1/3 for
    # eps ~ U[0, 1]. 20,000 examples; tolerance 5 standard errors (sd of (2u-1)^2 is 2/sqrt(45)).
    n = 20_000
    real = jnp.zeros((n, 4)).at[:, 0].set(2.0)
    critic = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=1)
    got = float(gradient_penalty(critic, real, jnp.zeros_like(real), jax.random.key(5)))
    assert abs(got - 1 / 3) < 5 * (2 / math.sqrt(45)) / math.sqrt(n)


def test_gradient_penalty_at_zero_gradient_is_target_squared_with_finite_gradients():
    real = jnp.ones((3, 2))
    zero_critic = lambda p: lambda x: p * jnp.sum(x * 0.0, axis=1)
    pen = jax.jit(lambda p: gradient_penalty(zero_critic(p), real, real, jax.random.key(0)))
    np.testing.assert_allclose(pen(1.0), 1.0)
    assert np.isfinite(jax.grad(pen)(1.0))


def _mlp_critic(params, x):
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ params["w1"] + params["b1"])
    return h @ params["w2"]  # (B, 1)


def test_gradient_penalty_second_order_gradient_wrt_critic_params(x64):
    # The penalty's gradient w.r.t. the critic parameters needs d^2 f / dx d(theta); check it (and
    # one more order) against central finite differences in float64.
    rng = np.random.default_rng(12)
    params = {
        "w1": jnp.asarray(rng.normal(size=(6, 5))),
        "b1": jnp.asarray(rng.normal(size=(5,))),
        "w2": jnp.asarray(rng.normal(size=(5, 1))),
    }
    real = jnp.asarray(rng.normal(size=(3, 2, 3, 1)))
    fake = jnp.asarray(rng.normal(size=(3, 2, 3, 1)))
    key = jax.random.key(7)
    pen = jax.jit(lambda p: gradient_penalty(lambda x: _mlp_critic(p, x), real, fake, key))
    grads = jax.grad(pen)(params)
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(g)) and np.any(g != 0)
    check_grads(pen, (params,), order=2, modes=("rev",), atol=1e-5, rtol=1e-5)



def test_gradient_penalty_promotes_mixed_dtypes_to_float32():
    # A bfloat16 fake (a generator run under train.compute_dtype=bfloat16) with a float32 real:
    # both are promoted to float32, so x_hat, its gradient and the norms are float32, and the
    # result equals bit for bit the penalty on the upcast fake.
    rng = np.random.default_rng(12)
    real = f32(rng.normal(size=(5, 3, 2)))
    fake = jnp.asarray(rng.normal(size=(5, 3, 2)), jnp.bfloat16)
    w = f32(rng.normal(size=(3, 2)))
    seen = []

    def critic(x):  # records the dtype it is given; computes in bfloat16 inside
        seen.append(x.dtype)
        return jnp.sum(x.astype(jnp.bfloat16) * w.astype(jnp.bfloat16), axis=(1, 2))

    key = jax.random.key(1)
    got = gradient_penalty(critic, real, fake, key)
    assert got.dtype == jnp.float32 and set(seen) == {jnp.dtype(jnp.float32)}
    np.testing.assert_array_equal(got, gradient_penalty(critic, real, f32(fake), key))
    # The critic is linear, so its gradient (w rounded to bfloat16, cast up at the critic's
    # input) does not depend on x_hat: every dtype combination gives the same float32 number,
    # the penalty of the rounded w computed in float32.
    for a, b in ((real.astype(jnp.bfloat16), real), (fake, fake)):
        again = gradient_penalty(critic, a, b, key)
        assert again.dtype == jnp.float32
        np.testing.assert_array_equal(again, got)
    w16 = np.asarray(w.astype(jnp.bfloat16), np.float64)
    np.testing.assert_allclose(got, (np.linalg.norm(w16) - 1) ** 2, rtol=1e-5)


def test_bfloat16_scores_give_float32_losses_equal_to_the_float32_computation():
    rng = np.random.default_rng(13)
    real = jnp.asarray(rng.normal(scale=2.0, size=(6,)), jnp.bfloat16)
    fake = jnp.asarray(rng.normal(scale=2.0, size=(6,)), jnp.bfloat16)
    pairs = [minimax_discriminator_loss, wasserstein_critic_loss, least_squares_discriminator_loss]
    singles = [minimax_generator_loss, nonsaturating_generator_loss, wasserstein_generator_loss,
               least_squares_generator_loss]
    for fn in pairs:
        got = fn(real, fake)
        assert got.dtype == jnp.float32, fn.__name__
        np.testing.assert_array_equal(got, fn(f32(real), f32(fake)), err_msg=fn.__name__)
        np.testing.assert_array_equal(fn(f32(real), fake), got, err_msg=fn.__name__)
    for fn in singles:
        got = fn(fake)
        assert got.dtype == jnp.float32, fn.__name__
        np.testing.assert_array_equal(got, fn(f32(fake)), err_msg=fn.__name__)

# -- weight clipping -----------------------------------------------------------------------------


def test_clip_weights_clips_every_leaf():
    params = {"a": jnp.array([-0.5, 0.005, 0.3]), "b": [jnp.array([[0.02, -0.001]])]}
    clipped = clip_weights(params, 0.01)
    np.testing.assert_array_equal(clipped["a"], np.float32([-0.01, 0.005, 0.01]))
    np.testing.assert_array_equal(clipped["b"][0], np.float32([[0.01, -0.001]]))


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: minimax_discriminator_loss(jnp.zeros((4, 1)), jnp.zeros((4,))),
            "fake_logits must have the per-example shape of real_logits (1,)",
        ),
        (
            lambda: minimax_discriminator_loss(jnp.zeros((4,), jnp.int32), jnp.zeros((4,))),
            "real_logits must be a floating-point array",
        ),
        (lambda: minimax_generator_loss(jnp.zeros(())), "fake_logits must have at least 1 axes"),
        (
            lambda: nonsaturating_generator_loss(jnp.zeros((2,), jnp.int32)),
            "fake_logits must be a floating-point",
        ),
        (
            lambda: wasserstein_critic_loss(jnp.zeros((4, 2)), jnp.zeros((4, 1))),
            "fake_scores must have the per-example shape of real_scores",
        ),
        (
            lambda: wasserstein_generator_loss(jnp.zeros(())),
            "fake_scores must have at least 1 axes",
        ),
        (
            lambda: least_squares_discriminator_loss(
                jnp.zeros((4,)), jnp.zeros((4,)), real_target=math.nan
            ),
            "real_target must be a finite number",
        ),
        (
            lambda: least_squares_generator_loss(jnp.zeros((4, 3)), target=math.inf),
            "target must be a finite number",
        ),
        (
            lambda: gradient_penalty(
                lambda x: x.sum(1), jnp.zeros((4, 3)), jnp.zeros((4, 2)), jax.random.key(0)
            ),
            "fake must have the shape of real (4, 3)",
        ),
        (
            lambda: gradient_penalty(
                lambda x: x.sum(1), jnp.zeros((4,)), jnp.zeros((4,)), jax.random.key(0)
            ),
            "real must have at least 2 axes",
        ),
        (
            lambda: gradient_penalty(
                lambda x: x, jnp.zeros((4, 3)), jnp.zeros((4, 3)), jax.random.key(0)
            ),
            "critic_fn must return scores of shape (4,) or (4, 1)",
        ),
        (
            lambda: gradient_penalty(
                lambda x: x.sum(1),
                jnp.zeros((4, 3)),
                jnp.zeros((4, 3)),
                jax.random.key(0),
                target=-1.0,
            ),
            "target must be a finite number in [0.0",
        ),
        (
            lambda: clip_weights({"w": jnp.zeros(2)}, 0.0),
            "clip_value must be a finite number in (0.0",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_gradient_penalty_rejects_a_non_callable_critic():
    with pytest.raises(TypeError, match="critic_fn must be callable"):
        gradient_penalty(jnp.zeros(3), jnp.zeros((4, 3)), jnp.zeros((4, 3)), jax.random.key(0))
