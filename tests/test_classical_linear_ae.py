"""Tests for genjax.classical.linear_ae: principal angles and the Baldi-Hornik PCA subspace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits

from genjax.classical import (
    init_linear_ae,
    linear_ae_loss,
    linear_ae_reconstruct,
    principal_angles,
    train_linear_ae,
)


def test_principal_angles_match_scipy():
    # Independent reference: scipy.linalg.subspace_angles (float64, largest angle first).
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for p, r in [(3, 3), (4, 2), (2, 5)]:
            a, b = rng.normal(size=(9, p)), rng.normal(size=(9, r))
            ours = np.asarray(principal_angles(jnp.asarray(a), jnp.asarray(b)))
            np.testing.assert_allclose(
                ours, np.sort(scipy.linalg.subspace_angles(a, b)), rtol=1e-10, atol=1e-12
            )


def test_principal_angles_small_and_known():
    # span{e1, e2} vs span{cos t e1 + sin t e3, e2}: angles (0, t). With t = 1e-4 in float32,
    # arccos of the cosine would lose everything (cos t = 1 - 5e-9 rounds to 1); the sine
    # branch keeps t to float32 precision.
    t = 1e-4
    a = np.zeros((4, 2), np.float32)
    a[0, 0] = a[1, 1] = 1.0
    b = np.zeros((4, 2), np.float32)
    b[0, 0], b[2, 0], b[1, 1] = np.cos(t), np.sin(t), 3.0
    ang = np.asarray(principal_angles(jnp.asarray(a), jnp.asarray(b)))
    np.testing.assert_allclose(ang, [0.0, t], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        principal_angles(jnp.asarray(a), jnp.asarray(a[:, ::-1] * 2)), [0.0, 0.0], atol=1e-6
    )


def test_loss_and_reconstruction_formula():
    rng = np.random.default_rng(0)
    params = init_linear_ae(jax.random.key(0), 6, 2)
    params = {k: v + 0.1 for k, v in params.items()}
    x = rng.normal(size=(8, 6)).astype(np.float32)
    a, ab = np.asarray(params["encoder_weight"]), np.asarray(params["encoder_bias"])
    b, bb = np.asarray(params["decoder_weight"]), np.asarray(params["decoder_bias"])
    x_hat = (x @ a.T + ab) @ b.T + bb
    np.testing.assert_allclose(linear_ae_reconstruct(params, x), x_hat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        linear_ae_loss(params, x), np.mean(np.sum((x - x_hat) ** 2, 1)), rtol=1e-5
    )
    assert params["encoder_weight"].shape == (2, 6) and params["decoder_weight"].shape == (6, 2)


def test_linear_ae_spans_pca_subspace_on_digits():
    # Baldi & Hornik (1989): at the minimum the decoder spans the top-q eigenvectors of the
    # covariance and the loss equals the sum of the discarded eigenvalues. After 5000 full-batch
    # Adam steps (q = 5, digits / 16) every principal angle is below 1e-2 rad (observed 3e-3;
    # the eigengap lambda_5 / lambda_6 = 1.18 sets the speed) and the loss is within 1e-4
    # relative of PCA's.
    x = (load_digits().data / 16.0).astype(np.float32)
    params, losses = train_linear_ae(jax.random.key(0), x, 5, steps=5000, learning_rate=1e-2)
    xc = x.astype(np.float64) - x.mean(0)
    lam, vec = np.linalg.eigh(xc.T @ xc / len(x))
    top = vec[:, ::-1][:, :5]
    angles = np.asarray(principal_angles(params["decoder_weight"], jnp.asarray(top, jnp.float32)))
    assert angles.max() < 1e-2, angles
    ref = scipy.linalg.subspace_angles(np.asarray(params["decoder_weight"], np.float64), top)
    np.testing.assert_allclose(angles, np.sort(ref), atol=1e-5)
    np.testing.assert_allclose(linear_ae_loss(params, x), lam[::-1][5:].sum(), rtol=1e-4)
    assert losses.shape == (5000,) and losses[-1] < losses[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": np.full((5, 4), np.nan, np.float32)}, ValueError, "finite"),
        ({"latent_dim": 4}, ValueError, "latent_dim"),
        ({"steps": 0}, ValueError, "steps"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"batch_size": 6}, ValueError, "batch_size"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"x": np.ones((5, 4), np.float32), "latent_dim": 2}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train_linear_ae(jax.random.key(0), args.pop("x"), args.pop("latent_dim"), **args)


def test_principal_angles_bad_input():
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(jnp.ones((4, 2)), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="a must be"):
        principal_angles(jnp.ones((2, 3)), jnp.ones((2, 1)))
