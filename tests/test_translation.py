"""CycleGAN and StarGAN methods: a few real steps on tiny digits domains, evaluation, errors."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax.methods.translation  # registers cyclegan and stargan
from genjax.data import ArrayDataset, load_dataset
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


def _resume_matches_a_straight_run(config, tmp_path) -> Trainer:
    """3 steps straight vs 2 steps, checkpoint, restore, 1 step: bitwise the same state.

    Returns the restored models (on the host) as they were before the resumed step.
    """
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
    before = jax.device_get(resumed.state.models)  # host copy: the step donates the state
    resumed.step()
    resumed.checkpoints.close()
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    return before


@pytest.mark.slow  # compiles the CycleGAN step twice
def test_cyclegan_checkpoint_keeps_the_history_pool_and_resumes_exactly(tmp_path):
    config = load_config("cyclegan_digits", TINY + ["train.batch_size=8", "model.pool_size=6"])
    restored = _resume_matches_a_straight_run(config, tmp_path)
    assert int(restored["discriminator_x"].collections["history_pool"]["count"]) == 6


# -- CycleGAN on two separate datasets (unpaired, no ground truth) ------------------------------
TWO_SPLITS = [  # two halves of the digits train split: A = train[:50%], B = train[50%:]
    "model.domain_b_dataset=digits", "model.domains=", "data.train_split=train[:50%]",
    "model.domain_b_split=train[50%:]", "model.domain_b_eval_split=test", "train.batch_size=4",
    "model.pool_size=6",
]


def _rows_of(images, pool) -> np.ndarray:
    """For each image, the index of an equal row of ``pool`` (-1 when there is none)."""
    flat = pool.reshape(len(pool), -1)
    return np.array([next((j for j, r in enumerate(flat) if np.array_equal(r, im.ravel())), -1)
                     for im in np.asarray(images)])


@pytest.fixture(scope="module")
def cyclegan_two_splits():
    """A tiny CycleGAN on two splits of the digits, the domain-B batches read before training."""
    config = load_config("cyclegan_digits", TINY + TWO_SPLITS)
    trainer = Trainer(config, None)
    before = {s: trainer.host_batch(s)["image_b"] for s in (0, 1, 2)}
    return trainer, [trainer.step() for _ in range(2)], before


def test_cyclegan_two_splits_steps(cyclegan_two_splits):
    trainer, steps, _ = cyclegan_two_splits
    method = trainer.method
    assert len(trainer.train_data) + len(method.domain_b) == len(
        load_dataset("digits", "train").images)
    for metrics in steps:
        _finite(metrics)
    metrics = steps[-1]
    np.testing.assert_allclose(
        metrics["generator/loss"],
        metrics["generator/adversarial"] + 10 * metrics["generator/cycle"]
        + 5 * metrics["generator/identity"], rtol=1e-5)
    # The whole engine batch is domain X: 4 fakes of X per step fill the pool of 6 by step 2.
    assert int(trainer.state.models["discriminator_x"].collections["history_pool"]["count"]) == 6


def test_domain_b_batches_are_a_pure_function_of_the_seed_and_step(cyclegan_two_splits):
    trainer, _, before = cyclegan_two_splits
    method, state = trainer.method, trainer.state
    assert int(state.step) == 2
    b = method.domain_b.images
    for s, batch in before.items():
        assert batch.shape == (4, 8, 8, 1) and batch.dtype == np.uint8
        # Same step -> same batch, after training and from a freshly built method (a resume).
        np.testing.assert_array_equal(trainer.host_batch(s)["image_b"], batch)
        fresh = CycleGANMethod(trainer.config, DIGITS)
        np.testing.assert_array_equal(fresh.domain_b_batch(s, 4), batch)
        assert (_rows_of(batch, b) >= 0).all()  # every image comes from the domain-B split
    assert not np.array_equal(before[0], before[1])  # another step, another batch
    other_seed = CycleGANMethod(
        load_config("cyclegan_digits", TINY + TWO_SPLITS + ["train.seed=1"]), DIGITS)
    assert not np.array_equal(other_seed.domain_b_batch(0, 4), before[0])


def test_cyclegan_two_splits_evaluation_pictures_and_samples(cyclegan_two_splits, tmp_path):
    trainer = cyclegan_two_splits[0]
    results = trainer.evaluate()
    _finite(results)
    assert results["num_examples_a"] == 16 and results["num_examples_b"] == 16
    for key in ("cycle_l1_a", "cycle_l1_b"):
        assert 0.0 <= results[key] <= 1.0, key
    for key in ("pixel_l1", "label_accuracy"):
        assert results[key].startswith("skipped: no ground truth"), key
    assert not any(k.startswith(("pixel_l1_", "label_accuracy_")) for k in results)
    paths = trainer.write_pictures(tmp_path)
    assert [p.name for p in paths] == ["translation_00000002.png"] and paths[0].stat().st_size
    samples = trainer.method.sample(trainer.state, jax.random.key(0), 3)
    assert samples.shape == (3, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


def _register(monkeypatch, name: str, images: np.ndarray) -> None:
    """Makes ``load_dataset(name, split)`` in the translation module return ``images``."""
    real = genjax.methods.translation.load_dataset

    def fake(dataset, split, **kwargs):
        if dataset != name:
            return real(dataset, split, **kwargs)
        return ArrayDataset(name=name, split=split, images=images, labels=None, num_bits=8,
                            num_classes=None)

    monkeypatch.setattr(genjax.methods.translation, "load_dataset", fake)


def test_a_second_dataset_supplies_domain_b(monkeypatch):
    images = (np.arange(12 * 64, dtype=np.int64).reshape(12, 8, 8, 1) % 251).astype(np.uint8)
    _register(monkeypatch, "tiny_b", images)
    config = load_config("cyclegan_digits", TINY + [
        "model.domain_b_dataset=tiny_b", "model.domains=", "train.batch_size=5"])
    method = CycleGANMethod(config, DIGITS)
    assert method.domain_b.name == "tiny_b" and len(method.domain_b) == 12
    batch = method.host_batch(3, {"image": np.zeros((5, 8, 8, 1), np.uint8)})["image_b"]
    assert batch.shape == (5, 8, 8, 1) and (_rows_of(batch, images) >= 0).all()
    # data.max_train_examples truncates domain B's train split too.
    method = CycleGANMethod(load_config("cyclegan_digits", TINY + [
        "model.domain_b_dataset=tiny_b", "model.domains=", "data.max_train_examples=3"]), DIGITS)
    assert len(method.domain_b) == 3


@pytest.mark.parametrize("shape", [(16, 16, 1), (8, 8, 3)])
def test_domain_b_of_another_shape_is_refused(monkeypatch, shape):
    _register(monkeypatch, "other", np.zeros((4, *shape), np.uint8))
    config = load_config("cyclegan_digits", TINY + ["model.domain_b_dataset=other",
                                                    "model.domains="])
    message = rf"has images of shape {re.escape(str(shape))}.*data.name='digits' has \(8, 8, 1\)"
    with pytest.raises(ValueError, match=message):
        CycleGANMethod(config, DIGITS)


def test_domain_b_dataset_with_views_is_refused():
    config = load_config("cyclegan_digits", TINY + ["model.domain_b_dataset=digits"])
    with pytest.raises(ValueError, match=r"set model.domains=\(\)"):
        CycleGANMethod(config, DIGITS)


@pytest.mark.slow  # compiles the two-dataset CycleGAN step twice
def test_cyclegan_two_splits_resumes_exactly(tmp_path):
    _resume_matches_a_straight_run(load_config("cyclegan_digits", TINY + TWO_SPLITS), tmp_path)
