"""CycleGAN and StarGAN methods: a few real steps on tiny digits domains, evaluation, errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax.methods.translation  # noqa: F401  (registers cyclegan and stargan)
from genjax.data.domains import to_domain
from genjax.experiments import load_config
from genjax.methods.translation import CycleGANMethod, StarGANMethod
from genjax.train.loop import Trainer
from genjax.train.method import DataSpec

TINY = [  # few convolutions: XLA's compile time of each conv dominates these tests on CPU
    "model.base_features=4", "model.num_blocks=0", "model.num_downsamples=0",
    "model.discriminator_features=4", "model.classifier_steps=2",
    "train.progress=false", "eval.batch_size=16", "eval.max_examples=16",
]
DIGITS = DataSpec(shape=(8, 8, 1), num_bits=8, num_classes=10, name="digits")


def _finite(metrics):
    bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v)}
    assert not bad, bad


@pytest.fixture(scope="module")
def cyclegan():
    """A tiny CycleGAN trainer on the digits, trained 3 steps (the pool checked on the way)."""
    config = load_config("cyclegan_digits", TINY + [
        "train.batch_size=8", "model.pool_size=6", "model.domains=original,inverted"])
    trainer = Trainer(config, None)
    counts, metrics = [], []
    for _ in range(3):
        metrics.append(trainer.step())
        pool = trainer.state.models["discriminator_y"].collections["history_pool"]
        counts.append(int(pool["count"]))
    return trainer, metrics, counts


@pytest.fixture(scope="module")
def stargan():
    """A tiny StarGAN trainer on three digits domains, trained 2 steps."""
    config = load_config("stargan_digits", TINY + [
        "model.domains=original,inverted,rot90", "model.n_critic=2", "train.batch_size=12",
        "model.discriminator_layers=2"])
    trainer = Trainer(config, None)
    return trainer, [trainer.step() for _ in range(2)]


def test_cyclegan_steps(cyclegan):
    trainer, steps, counts = cyclegan
    for metrics in steps:
        _finite(metrics)
    assert counts == [4, 6, 6]  # 4 fakes of Y per step fill the pool of 6, then it stays full
    metrics = steps[-1]
    # The reported total is the documented combination of its terms (weights 1, 10, 0.5 * 10).
    np.testing.assert_allclose(
        metrics["generator/loss"],
        metrics["generator/adversarial"] + 10 * metrics["generator/cycle"]
        + 5 * metrics["generator/identity"], rtol=1e-5)
    for name in ("discriminator_x/loss", "discriminator_y/loss", "generator_xy/grad_norm",
                 "generator_yx/update_norm", "discriminator_x/param_norm"):
        assert name in metrics


@pytest.mark.slow  # trains the in-memory digit classifier (mostly XLA compile time)
def test_cyclegan_evaluation_pictures_and_samples(cyclegan, tmp_path):
    trainer = cyclegan[0]
    results = trainer.evaluate()
    _finite(results)
    assert results["num_examples"] == 16
    for direction in ("original_to_inverted", "inverted_to_original"):
        for key in (f"pixel_l1_{direction}", f"pixel_l1_{direction}_identity_baseline",
                    f"label_accuracy_{direction}", f"label_accuracy_{direction}_ground_truth"):
            assert 0.0 <= results[key] <= 1.0, key
    assert {"cycle_l1_original", "cycle_l1_inverted", "digit_classifier"} <= set(results)
    # Doing nothing from original to inverted costs exactly mean |x - (1 - x)| = mean |2x - 1|.
    x = trainer.eval_data.images[:16].astype(np.float32) / 255
    np.testing.assert_allclose(results["pixel_l1_original_to_inverted_identity_baseline"],
                               np.mean(np.abs(2 * x - 1)), rtol=1e-5)
    paths = trainer.write_pictures(tmp_path)
    assert [p.name for p in paths] == ["translation_00000003.png"] and paths[0].stat().st_size
    samples = trainer.method.sample(trainer.state, jax.random.key(0), 5)
    assert samples.shape == (5, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


def test_stargan_steps(stargan):
    trainer, steps = stargan
    for metrics in steps:
        _finite(metrics)
    np.testing.assert_allclose(
        metrics["discriminator/loss"],
        metrics["discriminator/adversarial"] + metrics["discriminator/classification"]
        + 10 * metrics["discriminator/gradient_penalty"], rtol=1e-5)
    np.testing.assert_allclose(
        metrics["generator/loss"],
        metrics["generator/adversarial"] + metrics["generator/classification"]
        + 10 * metrics["generator/reconstruction"], rtol=1e-5)
    assert set(trainer.state.models) == {"generator", "discriminator"}


@pytest.mark.slow  # trains the in-memory digit and domain classifiers
def test_stargan_evaluation_pictures_and_samples(stargan, tmp_path):
    trainer = stargan[0]
    results = trainer.evaluate()
    _finite(results)
    assert results["num_domain_pairs"] == 6
    for key in ("pixel_l1", "pixel_l1_identity_baseline", "cycle_l1", "domain_accuracy",
                "domain_accuracy_ground_truth", "label_accuracy", "label_accuracy_ground_truth",
                "discriminator_domain_accuracy_real", "pixel_l1_rot90_to_inverted"):
        assert 0.0 <= results[key] <= 1.0, key
    assert {"digit_classifier", "domain_classifier"} <= set(results)
    paths = trainer.write_pictures(tmp_path)
    assert paths[0].name == "translation_00000002.png" and paths[0].stat().st_size
    assert trainer.method.sample(trainer.state, jax.random.key(1), 4).shape == (4, 8, 8, 1)


def test_stargan_puts_each_example_in_its_source_domain():
    config = load_config("stargan_digits", TINY)
    method = StarGANMethod(config, DIGITS)
    pixels = jax.random.randint(jax.random.key(0), (6, 8, 8, 1), 0, 256).astype(jnp.uint8)
    labels = jnp.array([0, 1, 2, 3, 0, 2])
    x = np.asarray(method._views_of(pixels, labels))
    for i, c in enumerate(np.asarray(labels)):
        view = to_domain(np.asarray(pixels[i : i + 1]), method.domains[c]).astype(np.float32)
        np.testing.assert_allclose(x[i], 2 * view[0] / 255 - 1, atol=1e-6)


@pytest.mark.parametrize(
    "config_name, overrides, message",
    [
        ("cyclegan_digits", ["model.domains=original,inverted,rot90"], "exactly two domains"),
        ("cyclegan_digits", ["model.domains=original,sepia"], "unknown domains"),
        ("cyclegan_digits", ["train.batch_size=7"], "must be even"),
        ("cyclegan_digits", ["model.adversarial_loss=hinge"], "model.adversarial_loss='hinge'"),
        ("cyclegan_digits", ["model.pool_size=-1"], "model.pool_size must be >= 0"),
        ("cyclegan_digits", ["model.lambda_cyc=-1"], "model.lambda_cyc must be >= 0"),
        ("cyclegan_digits", ["data.preprocess=unit"], "data.preprocess='symmetric'"),
        ("cyclegan_digits", ["data.name=digits_domains"], "(data.name=digits) and builds"),
        ("stargan_digits", ["model.n_critic=3"], "multiple of model.n_critic=3"),
        ("stargan_digits", ["model.domains=original"], "at least 2 distinct domains"),
        ("stargan_digits", ["model.lambda_gp=-10"], "model.lambda_gp must be >= 0"),
        ("stargan_digits", ["model.classifier_steps=0"], "model.classifier_steps must be >= 1"),
    ],
)
def test_bad_config_raises_a_clear_error(config_name, overrides, message):
    config = load_config(config_name, TINY + overrides)
    method = {"cyclegan": CycleGANMethod, "stargan": StarGANMethod}[config.method]
    spec = dataclasses.replace(DIGITS, name=config.data.name)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        method(config, spec)


def test_points_are_refused():
    config = load_config("cyclegan_digits", TINY)
    with pytest.raises(ValueError, match="needs square images"):
        CycleGANMethod(config, DataSpec(shape=(2,), num_bits=0, num_classes=8, name="ring"))


@pytest.mark.slow  # compiles the CycleGAN step twice
def test_cyclegan_checkpoint_keeps_the_history_pool_and_resumes_exactly(tmp_path):
    config = load_config("cyclegan_digits", TINY + ["train.batch_size=8", "model.pool_size=6"])
    straight = Trainer(config, None)
    for _ in range(3):
        straight.step()
    first = Trainer(config, tmp_path)
    for _ in range(2):
        first.step()
    first.save(wait=True)
    first.checkpoints.close()
    resumed = Trainer(config, tmp_path)
    assert resumed.restore() and int(resumed.state.step) == 2
    pool = resumed.state.models["discriminator_x"].collections["history_pool"]
    assert int(pool["count"]) == 6
    resumed.step()
    resumed.checkpoints.close()
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
