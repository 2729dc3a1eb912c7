"""GAN evaluation: mode coverage on the ring, classifier-feature metrics, BiGAN 1-NN, configs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genjax.experiments import available_configs, load_config
from genjax.methods.gan import GANConfig, GANMethod
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig
from genjax.train.loop import Trainer, train_and_evaluate
from genjax.train.method import DataSpec
from genjax.train.metrics import MetricWriter

# By name (the family's files), so that another family's config cannot break collection here.
GAN_CONFIGS = sorted(
    n for n in available_configs() if n.startswith(("gan_", "dcgan_", "wgan", "cgan_", "bigan_"))
)


def _ring_config(num_steps: int) -> Config:
    return Config(
        method="gan",
        model=GANConfig(variant="gan", hidden=(128, 128), latent_dim=8, metric_samples=2000),
        data=DataConfig(name="ring", preprocess="none"),
        optim=OptimConfig(name="adam", learning_rate=1e-3, b1=0.5),
        train=TrainConfig(batch_size=256, num_steps=num_steps, progress=False),
        eval=EvalConfig(batch_size=2000),
    )


def test_mode_coverage_improves_with_training_on_ring(tmp_path):
    """An untrained G puts its mass near the origin, 2 away from every mode of the ring; after
    1000 steps (measured: 5 of 8 modes, 3 % high-quality samples at 1200 steps of a 2000-sample
    evaluation; 0 and 0 before training) coverage must have grown."""
    trainer = Trainer(_ring_config(1000), None)
    before = trainer.evaluate()
    for _ in range(1000):
        trainer.step()
    after = trainer.evaluate()
    assert before["num_modes"] == after["num_modes"] == 8
    assert after["mode_samples"] == 2000 and after["mode_threshold_stds"] == 3.0
    assert after["modes_captured"] >= 3 and after["modes_captured"] > before["modes_captured"]
    assert after["high_quality_fraction"] > max(0.005, before["high_quality_fraction"])
    assert after["high_quality_fraction"] <= after["high_quality_ceiling"] < 1
    points = trainer.method.sample(trainer.state, trainer.eval_key(), 5)
    assert points.shape == (5, 2)  # raw points, not clipped to [0, 1]
    paths = trainer.write_pictures(tmp_path)
    assert [p.name for p in paths] == ["samples_00001000.png"] and paths[0].stat().st_size > 0


def _digits_config(model: GANConfig, **train) -> Config:
    return Config(
        method="gan",
        model=model,
        data=DataConfig(name="digits", preprocess="symmetric"),
        train=TrainConfig(batch_size=20, num_steps=4, progress=False, **train),
        eval=EvalConfig(batch_size=100, num_samples=16),
    )


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A deliberately tiny digits classifier (its weights only define a feature space)."""
    workdir = tmp_path_factory.mktemp("classifier_digits")
    config = load_config("classifier_digits", [
        "model.conv_features=4", "model.dense=16", "train.num_steps=30", "train.batch_size=50",
        "train.progress=false", "train.eval_every=1000", "train.checkpoint_every=30",
    ])
    train_and_evaluate(config, workdir)
    return str(workdir)


def test_conditional_gan_reports_classifier_metrics_and_label_accuracy(tiny_classifier, tmp_path):
    model = GANConfig(conditional=True, hidden=(16,), latent_dim=4, metric_samples=60,
                      classifier_workdir=tiny_classifier)
    trainer = Trainer(_digits_config(model), None)
    writer = MetricWriter(tmp_path)
    for _ in range(2):
        writer.write(int(trainer.state.step) + 1, trainer.step())
    writer.close()
    result = trainer.evaluate()
    assert result["classifier"] == "digits-cnn" and len(result["classifier_sha256"]) == 64
    assert result["fd_digits-cnn"] >= 0 and np.isfinite(result["kd_digits-cnn_mean"])
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert result["num_fake"] == 60 and result["num_real"] == 60  # min(test split, samples)
    assert result["reference_split"] == "test"
    assert 0 <= result["label_accuracy"] <= 1 and result["label_accuracy_samples"] == 60
    # Loss curves come from <workdir>/metrics.jsonl, next to the pictures folder.
    paths = trainer.write_pictures(tmp_path / "pictures")
    assert [p.name for p in paths] == [
        "loss_curves_00000002.png", "samples_00000002.png", "interpolation_00000002.png"]


def test_classifier_of_other_image_shape_is_refused(tiny_classifier):
    config = _digits_config(GANConfig(hidden=(16,), latent_dim=4, metric_samples=8,
                                      classifier_workdir=tiny_classifier))
    method = GANMethod(config, DataSpec((16, 16, 1), 8, 10, "digits16"))
    with pytest.raises(ValueError, match="model.classifier_workdir"):
        method.classifier()


def test_bigan_reports_nearest_neighbor_accuracy_in_encoder_space():
    model = GANConfig(variant="bigan", hidden=(16,), latent_dim=4, metric_samples=8)
    config = _digits_config(model)
    trainer = Trainer(config, None)
    trainer.step()
    result = trainer.evaluate()
    # No classifier configured: the feature metrics are skipped, with the reason.
    assert result["feature_metrics"].startswith("skipped: no classifier configured")
    assert "model.classifier_workdir" in result["feature_metrics"]
    assert not any(k.startswith("fd_") for k in result)
    assert 0 <= result["nn_accuracy"] <= 1
    assert result["nn_reference_examples"] == 1497 and result["nn_test_examples"] == 300
    assert result["nn_accuracy"] > 0.3  # a random 4-d encoding of digits already beats chance 0.1


@pytest.mark.parametrize(
    "model, data, match",
    [
        (GANConfig(), DataConfig(name="digits", preprocess="unit"), "data.preprocess='symmetric'"),
        (GANConfig(), DataConfig(name="ring", preprocess="symmetric"), "data.preprocess"),
        (GANConfig(architecture="dcgan"), DataConfig(name="ring", preprocess="none"), "mlp"),
        (GANConfig(metric_samples=0), DataConfig(name="digits", preprocess="symmetric"),
         "metric_samples"),
        (GANConfig(n_critic=0), DataConfig(name="digits", preprocess="symmetric"), "n_critic"),
    ],
)
def test_bad_config_is_a_clear_error(model, data, match):
    config = Config(method="gan", model=model, data=data, train=TrainConfig(batch_size=20))
    shape, bits = ((2,), 0) if data.name == "ring" else ((8, 8, 1), 8)
    with pytest.raises(ValueError, match=match):
        GANMethod(config, DataSpec(shape, bits, 10, data.name))


@pytest.mark.parametrize("name", GAN_CONFIGS)
def test_every_gan_config_builds_its_method(name):
    """Each config's own validation and networks (no training) on its dataset's shape."""
    config = load_config(name)
    shapes = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3), "digits": (8, 8, 1)}
    if config.data.preprocess == "none":
        spec = DataSpec((2,), 0, 8, config.data.name)
    else:
        spec = DataSpec(shapes[config.data.name], 8, 10, config.data.name)
    method = GANMethod(config, spec)
    assert method.config.model.metric_samples >= 1000  # protocol: enough samples to report


def _narrowed(config: Config) -> Config:
    model = dataclasses.replace(
        config.model, hidden=(16,), base_features=4, latent_dim=4, metric_samples=50,
        classifier_workdir="",
    )
    data = config.data
    if data.preprocess != "none":
        data = dataclasses.replace(data, name="digits", manual_dir="")
        if model.architecture == "dcgan":
            model = dataclasses.replace(model, num_stages=min(model.num_stages, 2))
    train = dataclasses.replace(config.train, batch_size=10 * model.n_critic, progress=False)
    return dataclasses.replace(config, model=model, data=data, train=train,
                               eval=dataclasses.replace(config.eval, batch_size=100))


@pytest.mark.slow
@pytest.mark.parametrize("name", GAN_CONFIGS)
def test_every_gan_config_runs_a_few_steps(name):
    """Each config's objective and architecture (narrowed), on digits or its toy data."""
    trainer = Trainer(_narrowed(load_config(name)), None)
    for _ in range(2):
        metrics = trainer.step()
    assert np.isfinite(metrics["generator/loss"]) and trainer.num_traces == 1
    assert np.isfinite(trainer.evaluate()["eval_real_score"])
