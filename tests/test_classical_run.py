"""Tests for the classical experiment runners and their pictures (tiny data, few iterations)."""

import json

import jax
import numpy as np
import pytest
from sklearn.datasets import load_digits

from genjax.classical import run_gmm, run_linear_ae, run_ppca, toy_mixture_2d
from genjax.classical.plots import save_image_panels


@pytest.fixture(scope="module")
def digits():
    x = (load_digits().data / 16.0).astype(np.float32)
    return x[:400], x[400:600]


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_gmm_toy(tmp_path):
    x, _ = toy_mixture_2d(jax.random.key(0), 1500)
    m = run_gmm(x, key=jax.random.key(1), workdir=tmp_path, num_components=5, max_iters=25)
    assert _is_png(tmp_path / "gmm_ellipses.png")
    assert "train_bits_per_dim" not in m and np.isfinite(m["train_log_likelihood_nats"])
    assert m["covariance_type"] == "full" and 1 <= m["iterations"] <= 25
    json.dumps(m)


def test_run_gmm_images(tmp_path, digits):
    x, x_test = digits
    m = run_gmm(
        x,
        x_test=x_test,
        key=jax.random.key(0),
        workdir=tmp_path,
        num_components=4,
        covariance_type="diag",
        max_iters=5,
        image_shape=(8, 8),
        num_samples=8,
    )
    for name in ("gmm_means.png", "gmm_samples.png"):
        assert _is_png(tmp_path / name)
    np.testing.assert_allclose(
        m["test_bits_per_dim"], -m["test_log_likelihood_nats"] / (64 * np.log(2))
    )
    json.dumps(m)


def test_run_ppca(tmp_path, digits):
    # float32 EM vs closed form: the float32 S-form likelihood is resolved to ~1e-5 relative,
    # so EM (tol 1e-6 nats) ends within 1e-4 relative of the closed-form optimum.
    x, x_test = digits
    m = run_ppca(
        x,
        x_test=x_test,
        key=jax.random.key(0),
        workdir=tmp_path,
        latent_dim=4,
        max_iters=500,
        tol=1e-6,
        image_shape=(8, 8),
        num_samples=8,
    )
    for name in ("ppca_samples.png", "ppca_principal_directions.png"):
        assert _is_png(tmp_path / name)
    np.testing.assert_allclose(
        m["train_em_log_likelihood_nats"], m["train_closed_form_log_likelihood_nats"], rtol=1e-4
    )
    assert m["train_closed_form_log_likelihood_nats"] >= m["train_em_log_likelihood_nats"] - 1e-3
    json.dumps(m)


def test_run_linear_ae(tmp_path, digits):
    x, x_test = digits
    m = run_linear_ae(
        x,
        x_test=x_test,
        key=jax.random.key(0),
        workdir=tmp_path,
        latent_dim=3,
        steps=300,
        batch_size=64,
        image_shape=(8, 8),
    )
    assert _is_png(tmp_path / "linear_ae_decoder.png")
    # PCA is the optimum of the training loss, so the AE cannot beat it on the training set.
    assert m["train_reconstruction_error"] >= m["train_pca_reconstruction_error"] * (1 - 1e-5)
    assert len(m["principal_angles_rad"]) == 3 and np.isfinite(m["final_training_loss"])
    json.dumps(m)


def test_bad_image_shape(tmp_path, digits):
    with pytest.raises(ValueError, match="image_shape"):
        run_ppca(
            digits[0], key=jax.random.key(0), workdir=tmp_path, latent_dim=2, image_shape=(7, 7)
        )
    with pytest.raises(ValueError, match="images must have shape"):
        save_image_panels(np.zeros((2, 10)), tmp_path / "x.png", image_shape=(3, 3))
