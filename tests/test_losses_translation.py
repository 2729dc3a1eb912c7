"""Tests of genjax.losses.translation against NumPy/SciPy float64 computations (rtol=1e-5)."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special

from genjax.losses import cycle_consistency_loss, domain_classification_loss, identity_loss


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def f32(a):
    return jnp.asarray(a, jnp.float32)


def test_cycle_and_identity_losses_are_mean_absolute_errors():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, size=(3, 4, 4, 3))
    other = rng.uniform(-1, 1, size=(3, 4, 4, 3))
    expected = np.abs(real - other).mean()
    np.testing.assert_allclose(cycle_consistency_loss(f32(real), f32(other)), expected, rtol=1e-5)
    np.testing.assert_allclose(identity_loss(f32(real), f32(other)), expected, rtol=1e-5)
    # Scalar case and independence of the image size: a constant offset of 0.25 gives 0.25.
    np.testing.assert_allclose(
        cycle_consistency_loss(jnp.zeros((1, 1)), jnp.full((1, 1), 0.25)), 0.25
    )
    np.testing.assert_allclose(
        cycle_consistency_loss(jnp.zeros((2, 8, 8, 3)), jnp.full((2, 8, 8, 3), 0.25)), 0.25
    )


def test_domain_classification_multi_label_is_summed_binary_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(4, 5))
    labels = (rng.uniform(size=(4, 5)) < 0.5).astype(np.float64)
    p = special.expit(logits)
    expected = -np.mean(np.sum(labels * np.log(p) + (1 - labels) * np.log(1 - p), axis=1))
    got = domain_classification_loss(f32(logits), f32(labels), multi_label=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Integer / boolean labels give the same value.
    got_int = domain_classification_loss(f32(logits), labels.astype(np.int32), multi_label=True)
    np.testing.assert_allclose(got_int, expected, rtol=1e-5)


def test_domain_classification_single_label_is_softmax_cross_entropy():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(6, 8))
    labels = rng.integers(0, 8, size=(6,))
    expected = -np.mean(special.log_softmax(logits, axis=1)[np.arange(6), labels])
    got = domain_classification_loss(f32(logits), jnp.asarray(labels), multi_label=False)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Uniform logits: log K nats.
    np.testing.assert_allclose(
        domain_classification_loss(jnp.zeros((2, 8)), jnp.array([0, 7]), multi_label=False),
        math.log(8),
        rtol=1e-6,
    )


def test_domain_classification_is_stable_at_extreme_logits():
    logits = jnp.array([[100.0, -100.0]])
    multi = domain_classification_loss(logits, jnp.array([[0.0, 1.0]]), multi_label=True)
    single = domain_classification_loss(logits, jnp.array([1]), multi_label=False)
    np.testing.assert_allclose(multi, 200.0, rtol=1e-6)
    np.testing.assert_allclose(single, 200.0, rtol=1e-6)
    g = jax.grad(lambda lg: domain_classification_loss(lg, jnp.array([1]), multi_label=False))(
        logits
    )
    assert np.all(np.isfinite(g))


def test_gradients_match_finite_differences(x64):
    rng = np.random.default_rng(3)
    a, b = jnp.asarray(rng.normal(size=(2, 3, 3))), jnp.asarray(rng.normal(size=(2, 3, 3)))
    logits = jnp.asarray(rng.normal(size=(3, 4)))
    multi = jnp.asarray(rng.uniform(size=(3, 4)) < 0.5)
    single = jnp.asarray(rng.integers(0, 4, size=(3,)))

    def all_losses(a, b, lg):
        return (
            cycle_consistency_loss(a, b),  # |.| is smooth away from a == b
            identity_loss(a, b),
            domain_classification_loss(lg, multi, multi_label=True),
            domain_classification_loss(lg, single, multi_label=False),
        )

    check_grads(jax.jit(all_losses), (a, b, logits), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: cycle_consistency_loss(jnp.zeros((2, 3)), jnp.zeros((2, 4))),
            "reconstructed must have the shape of real (2, 3)",
        ),
        (
            lambda: cycle_consistency_loss(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 3))),
            "real must be a floating-point",
        ),
        (
            lambda: identity_loss(jnp.zeros((2, 3)), jnp.zeros((3, 3))),
            "mapped must have the shape of real",
        ),
        (
            lambda: domain_classification_loss(
                jnp.zeros((2, 5)), jnp.zeros((2, 4)), multi_label=True
            ),
            "labels must have the shape of logits (2, 5)",
        ),
        (
            lambda: domain_classification_loss(
                jnp.zeros((2, 5)), jnp.zeros((2, 5)), multi_label=False
            ),
            "labels must be an integer array",
        ),
        (
            lambda: domain_classification_loss(
                jnp.zeros((2, 5)), jnp.zeros((3,), jnp.int32), multi_label=False
            ),
            "labels must have shape (B,) = (2,)",
        ),
        (
            lambda: domain_classification_loss(
                jnp.zeros((5,)), jnp.zeros((5,), jnp.int32), multi_label=False
            ),
            "logits must have 2 axes",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_multi_label_must_be_given_as_a_bool():
    with pytest.raises(TypeError, match="multi_label must be a bool"):
        domain_classification_loss(jnp.zeros((2, 5)), jnp.zeros((2,), jnp.int32), multi_label=1)
    with pytest.raises(TypeError):
        domain_classification_loss(jnp.zeros((2, 5)), jnp.zeros((2,), jnp.int32))  # no default


# -- mixed precision: bfloat16 inputs (train.compute_dtype=bfloat16) -----------------------------


def test_losses_compute_bfloat16_inputs_in_float32():
    rng = np.random.default_rng(5)
    real = f32(rng.uniform(-1, 1, size=(4, 3, 3, 2)))
    other = f32(rng.uniform(-1, 1, size=(4, 3, 3, 2))).astype(jnp.bfloat16)
    third = f32(rng.uniform(-1, 1, size=(4, 3, 3, 2))).astype(jnp.bfloat16)
    logits = f32(rng.normal(size=(4, 5)) * 3).astype(jnp.bfloat16)
    up = lambda v: v.astype(jnp.float32)  # exact: every bfloat16 is a float32
    for loss in (cycle_consistency_loss, identity_loss):
        for a, b in ((real, other), (other, third)):  # float32 with bfloat16; both bfloat16
            got = loss(a, b)
            assert got.dtype == jnp.float32
            # The same float32 computation on the upcast values: reduced in float32, not in
            # bfloat16 (whose sum of 72 terms near 1 would be off by up to 2**-8 relatively).
            np.testing.assert_array_equal(got, loss(up(a), up(b)))
    labels = jnp.array([0, 4, 2, 2])
    got = domain_classification_loss(logits, labels, multi_label=False)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(
        got, domain_classification_loss(logits.astype(jnp.float32), labels, multi_label=False))
    targets = jax.nn.one_hot(labels, 5)
    got = domain_classification_loss(logits, targets, multi_label=True)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(
        got, domain_classification_loss(logits.astype(jnp.float32), targets, multi_label=True))
    grad = jax.grad(lambda v: cycle_consistency_loss(real, v))(other)
    assert grad.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(grad)))
