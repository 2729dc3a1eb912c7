"""The classical methods on the engine's Fitter: fit, metrics, log rows, pictures (tiny data)."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_engine import REPO, tiny_config

from genjax.experiments import load_config
from genjax.train.config import ConfigValueError
from genjax.train.loop import Fitter, Trainer

DIGITS = ["data.max_train_examples=400", "data.max_eval_examples=200", "train.progress=false"]


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fit(name, *overrides):
    fitter = Fitter(load_config(name, list(overrides)), None)
    rows = []
    fitter.fit(log=lambda step, metrics: rows.append((step, metrics)))
    return fitter, rows


def test_gmm_toy(tmp_path):
    fitter, rows = _fit("gmm_toy2d", "model.toy_examples=1500", "model.num_restarts=1",
                        "model.max_iters=25")
    m = fitter.evaluate()
    assert "train_bits_per_dim" not in m and np.isfinite(m["train_log_likelihood_nats"])
    assert m["covariance_type"] == "full" and 1 <= m["iterations"] <= 25
    # One train row per EM iteration of the kept restart: its log-likelihood, non-decreasing.
    assert [step for step, _ in rows] == list(range(m["iterations"]))
    lls = [metrics["log_likelihood_nats"] for _, metrics in rows]
    assert np.all(np.diff(lls) >= -1e-5)
    written = fitter.write_pictures(tmp_path)
    assert [p.name for p in written] == ["gmm_ellipses.png"] and _is_png(written[0])
    json.dumps(m)


def test_gmm_images(tmp_path):
    fitter, _ = _fit("gmm_digits", *DIGITS, "model.num_components=4", "model.num_restarts=1",
                     "model.max_iters=5", "model.num_samples=8")
    m = fitter.evaluate()
    names = [p.name for p in fitter.write_pictures(tmp_path)]
    assert names == ["gmm_means.png", "gmm_samples.png"]
    assert all(_is_png(tmp_path / name) for name in names)
    np.testing.assert_allclose(
        m["test_bits_per_dim"], -m["test_log_likelihood_nats"] / (64 * np.log(2))
    )
    samples = fitter.sample(jax.random.key(0), 5)
    assert samples.shape == (5, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    json.dumps(m)


def test_ppca(tmp_path):
    # float32 EM vs closed form: the float32 S-form likelihood is resolved to ~1e-5 relative,
    # so EM (tol 1e-6 nats) ends within 1e-4 relative of the closed-form optimum.
    fitter, rows = _fit("ppca_digits", *DIGITS, "model.latent_dim=4", "model.max_iters=500",
                        "model.num_samples=8")
    m = fitter.evaluate()
    names = [p.name for p in fitter.write_pictures(tmp_path)]
    assert names == ["ppca_principal_directions.png", "ppca_samples.png"]
    assert all(_is_png(tmp_path / name) for name in names)
    np.testing.assert_allclose(
        m["train_em_log_likelihood_nats"], m["train_closed_form_log_likelihood_nats"], rtol=1e-4
    )
    assert m["train_closed_form_log_likelihood_nats"] >= m["train_em_log_likelihood_nats"] - 1e-3
    assert len(rows) == m["em_iterations"]
    json.dumps(m)


def test_linear_ae(tmp_path):
    fitter, rows = _fit("linear_ae_digits", *DIGITS, "model.latent_dim=3", "model.steps=300",
                        "model.batch_size=64", "train.log_every=100")
    m = fitter.evaluate()
    assert [p.name for p in fitter.write_pictures(tmp_path)] == ["linear_ae_decoder.png"]
    assert _is_png(tmp_path / "linear_ae_decoder.png")
    # PCA is the optimum of the training loss, so the AE cannot beat it on the training set.
    assert m["train_reconstruction_error"] >= m["train_pca_reconstruction_error"] * (1 - 1e-5)
    assert len(m["principal_angles_rad"]) == 3 and np.isfinite(m["final_training_loss"])
    assert [step for step, _ in rows] == [0, 100, 200, 299]
    assert rows[-1][1]["loss"] == pytest.approx(m["final_training_loss"])
    with pytest.raises(ValueError, match="not a generative model"):
        fitter.sample(jax.random.key(0), 3)
    json.dumps(m)


def test_each_engine_class_refuses_the_other_kind_and_an_unfitted_state():
    with pytest.raises(TypeError, match="fitted by its own algorithm.*Fitter"):
        Trainer(load_config("gmm_toy2d"), None)
    with pytest.raises(TypeError, match="trained by steps.*Trainer"):
        Fitter(tiny_config(), None)
    fitter = Fitter(load_config("gmm_toy2d"), None)
    with pytest.raises(RuntimeError, match="nothing is fitted yet"):
        fitter.evaluate()
    with pytest.raises(ConfigValueError, match="train.ema_decay=0.9"):
        load_config("ppca_digits", ["train.ema_decay=0.9"])


def test_classical_pictures_are_drawn_without_the_state_machine_interface(tmp_path):
    """Every classical picture comes from genjax.eval.plots' Figure/Agg helpers: after a
    fresh process draws them all, matplotlib.pyplot was never imported."""
    code = f"""
import sys
from pathlib import Path
from genjax.experiments import load_config
from genjax.train.loop import Fitter
out = Path({str(tmp_path)!r})
names = []
for name, extra in [("gmm_toy2d", ["model.num_restarts=1", "model.max_iters=3"]),
                    ("gmm_digits", ["model.num_restarts=1", "model.max_iters=2",
                                    "model.num_components=3", "model.num_samples=4"]),
                    ("ppca_digits", ["model.latent_dim=2", "model.max_iters=3",
                                     "model.num_samples=4"]),
                    ("linear_ae_digits", ["model.latent_dim=2", "model.steps=3"])]:
    fitter = Fitter(load_config(name, extra + ["data.max_train_examples=200"]), None)
    fitter.fit()
    names += [p.name for p in fitter.write_pictures(out)]
print(sorted(names))
print("matplotlib" in sys.modules, "matplotlib.pyplot" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names, modules = proc.stdout.strip().splitlines()[-2:]
    assert names == str(sorted(["gmm_ellipses.png", "gmm_means.png", "gmm_samples.png",
                                "ppca_principal_directions.png", "ppca_samples.png",
                                "linear_ae_decoder.png"]))
    assert modules == "True False"  # matplotlib drew them; pyplot never imported
