"""GAN evaluation: mode coverage on the ring, classifier-feature metrics, BiGAN 1-NN, the
Parzen-window protocol, configs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genjax.eval.features import load_classifier_for
from genjax.eval.sample_metrics import InceptionReference, parzen_metrics
from genjax.experiments import available_configs, load_config
from genjax.methods.gan import GANMethod
from genjax.methods.gan_config import GANConfig
from genjax.train.config import (
    Config,
    ConfigValueError,
    DataConfig,
    EvalConfig,
    OptimConfig,
    TrainConfig,
)
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
    assert after["parzen"].startswith("skipped: the Parzen-window estimate is for images")
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
    assert result["fd_digits-cnn"] >= 0 and np.isfinite(result["kd_digits-cnn"])
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    # min(test split, samples)
    assert result["fd_digits-cnn_num_fake"] == 60 and result["fd_digits-cnn_num_real"] == 60
    assert result["reference_split"] == "test"
    assert 0 <= result["label_accuracy"] <= 1 and result["label_accuracy_samples"] == 60
    # Loss curves come from <workdir>/metrics.jsonl, next to the pictures folder.
    paths = trainer.write_pictures(tmp_path / "pictures")
    assert [p.name for p in paths] == [
        "loss_curves_00000002.png", "samples_00000002.png", "interpolation_00000002.png"]


def test_classifier_of_other_image_shape_is_refused(tiny_classifier):
    config = _digits_config(GANConfig(hidden=(16,), latent_dim=4, metric_samples=8,
                                      classifier_workdir=tiny_classifier))
    with pytest.raises(ValueError, match="model.classifier_workdir"):
        load_classifier_for(tiny_classifier, config.data, (16, 16, 1))


@pytest.mark.slow  # trains a DCGAN and runs a (small) Inception: ~20 s
def test_image_gan_reports_standard_fid_with_user_weights(tmp_path):
    """model.inception_weights: FID / KID of the samples vs the eval split, checked against the
    Frechet distance of the same network's features computed here; real features cached."""
    import importlib.util
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from genjax.data import load_dataset
    from genjax.eval.frechet import frechet_distance_from_features
    from genjax.eval.inception import (
        expected_shapes,
        load_inception_weights,
        save_inception_weights,
    )

    tool = Path(__file__).resolve().parent / "fixtures" / "make_inception_reference.py"
    spec = importlib.util.spec_from_file_location("make_inception_reference", tool)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)  # NumPy only at import
    weights = tmp_path / "synthetic_inception.npz"
    save_inception_weights(reference.synthetic_state_dict(expected_shapes()), weights)

    model = GANConfig(hidden=(16,), latent_dim=4, metric_samples=6,
                      inception_weights=str(weights))
    config = dataclasses.replace(_digits_config(model), eval=EvalConfig(batch_size=6,
                                                                        max_examples=6))
    trainer = Trainer(config, None)
    fake = np.random.default_rng(0).uniform(0, 1, size=(6, 8, 8, 1)).astype(np.float32)
    with threadpool_limits(1):  # 2048-d eigenproblems: slow when BLAS threads contend
        real = load_dataset("digits", "test").images[:6].astype(np.float32) / 255.0
        # The protocol on given images: FID of the network's features of both sets.
        reference = InceptionReference(str(weights), real, batch_size=6)
        protocol = reference.metrics(fake, key=0)
        network = load_inception_weights(weights)
        expected = frechet_distance_from_features(network.features(real), network.features(fake))
        # A GAN's evaluation runs it on its own samples against the eval split.
        result = trainer.evaluate()
    np.testing.assert_allclose(protocol["fid"], expected, rtol=1e-6)
    assert np.isfinite(protocol["kid"]) and protocol["kid_subset_size"] == 6
    assert protocol["fid_num_real"] == 6 and protocol["fid_num_fake"] == 6
    assert protocol["inception_sha256"] == network.sha256
    assert np.isfinite(result["fid"]) and result["fid_num_real"] == 6
    assert result["inception_sha256"] == network.sha256
    assert result["fid_reference_split"] == "test"
    assert trainer.method.sample_evaluation.inception.num_real == 6  # kept for the next eval


def test_fid_is_skipped_with_the_reason_or_refused_for_a_missing_file(tmp_path):
    trainer = Trainer(_digits_config(GANConfig(hidden=(16,), latent_dim=4, metric_samples=8)),
                      None)
    assert "model.inception_weights" in trainer.evaluate()["fid"]
    missing = GANConfig(hidden=(16,), latent_dim=4, inception_weights=str(tmp_path / "no.npz"))
    with pytest.raises(ConfigValueError, match="pt_inception-2015-12-05"):
        Trainer(_digits_config(missing), None)


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
    assert result["parzen"].startswith("skipped: no held-out validation split")
    assert "model.parzen_validation_split" in result["parzen"]
    assert 0 <= result["nn_accuracy"] <= 1
    assert result["nn_reference_examples"] == 1497 and result["nn_test_examples"] == 300
    assert result["nn_accuracy"] > 0.3  # a random 4-d encoding of digits already beats chance 0.1


@pytest.mark.parametrize(
    "model, data, match",
    [
        (GANConfig(), DataConfig(name="digits", preprocess="unit"), "expected 'symmetric'"),
        (GANConfig(), DataConfig(name="ring", preprocess="symmetric"), "data.preprocess"),
        (GANConfig(architecture="dcgan"), DataConfig(name="ring", preprocess="none"), "mlp"),
        (GANConfig(metric_samples=0), DataConfig(name="digits", preprocess="symmetric"),
         "metric_samples"),
        (GANConfig(n_critic=0), DataConfig(name="digits", preprocess="symmetric"), "n_critic"),
        (GANConfig(parzen_sigmas=()), DataConfig(name="digits", preprocess="symmetric"),
         "model.parzen_sigmas"),
        (GANConfig(parzen_sigmas=(0.1, -1.0)), DataConfig(name="digits", preprocess="symmetric"),
         "model.parzen_sigmas"),
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
        if model.parzen_validation_split:  # digits' train split has 1497 images
            data = dataclasses.replace(data, train_split="train[:1000]")
            model = dataclasses.replace(model, parzen_validation_split="train[1000:1100]")
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
    result = trainer.evaluate()
    assert np.isfinite(result["eval_real_score"])
    if trainer.config.model.parzen_validation_split:
        assert np.isfinite(result["parzen_log_likelihood"])


# -- Parzen-window protocol (Goodfellow et al. 2014) --------------------------------------------
PARZEN_GRID = (0.05, 0.1, 0.2, 0.4, 0.8)


def _parzen_trainer(validation_split="train[1000:1200]") -> Trainer:
    """Digits: G trained on train[:1000], bandwidth chosen on train[1000:1200], 100 test images."""
    model = GANConfig(hidden=(16,), latent_dim=4, metric_samples=200,
                      parzen_validation_split=validation_split, parzen_sigmas=PARZEN_GRID)
    config = dataclasses.replace(
        _digits_config(model),
        data=DataConfig(name="digits", train_split="train[:1000]", preprocess="symmetric"),
        eval=EvalConfig(batch_size=64, max_examples=100),
    )
    return Trainer(config, None)


def _unit(split, start, stop):
    from genjax.data import load_dataset

    return load_dataset("digits", split).images[start:stop].astype(np.float32) / 255.0


def _parzen(samples):
    """The protocol on the digits: bandwidth chosen on train[1000:1200], 100 test images."""
    return parzen_metrics(samples, _unit("test", 0, 100), _unit("train", 1000, 1200),
                          sigmas=PARZEN_GRID, batch_size=64)


def test_parzen_bandwidth_is_chosen_on_the_validation_split():
    # A "generator" that copies the validation images: the best validation bandwidth is the
    # smallest of the grid (every validation image sits on a kernel centre).
    copied = _parzen(_unit("train", 1000, 1200))
    assert copied["parzen_sigma"] == min(PARZEN_GRID)
    table = copied["parzen_validation_log_likelihoods"]
    assert copied["parzen_sigmas"] == list(PARZEN_GRID) and table[0] == max(table)
    assert copied["parzen_validation_examples"] == 200
    assert copied["parzen_samples"] == 200 and copied["parzen_test_examples"] == 100
    # A generator that copies the test images instead: chosen on validation data (which it
    # does not copy), the bandwidth is no longer the smallest, although the smallest would
    # maximise the test likelihood (the selection does not look at the test split).
    assert _parzen(_unit("test", 0, 100))["parzen_sigma"] > min(PARZEN_GRID)


def test_a_gan_evaluation_reports_the_parzen_protocol():
    """The GAN's evaluation runs the protocol on its own samples and names its splits."""
    result = _parzen_trainer().evaluate()
    assert np.isfinite(result["parzen_log_likelihood"]) and result["parzen_sigma"] in PARZEN_GRID
    assert result["parzen_validation_split"] == "train[1000:1200]"
    assert result["parzen_validation_examples"] == 200 and result["parzen_validation_in_train"] == 0
    assert result["parzen_samples"] == 200 and result["parzen_test_examples"] == 100
    assert result["parzen_test_split"] == "test"


def test_parzen_metrics_match_an_independent_numpy_computation():
    rng = np.random.default_rng(0)
    samples = np.clip(_unit("train", 0, 200) + rng.normal(0, 0.1, (200, 8, 8, 1)), 0, 1)
    result = _parzen(samples.astype(np.float32))

    # float64, direct differences: log p(x) = logsumexp_i(-|x - s_i|^2 / 2 s^2) - log N
    # - (D/2) log(2 pi s^2); sigma by the validation mean; SEM = std (ddof 0) / sqrt(M).
    from scipy import special

    s = samples.astype(np.float32).reshape(200, -1).astype(np.float64)

    def log_p(x, sigma):
        d2 = ((x[:, None, :] - s[None]) ** 2).sum(-1)
        return (special.logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(len(s))
                - 0.5 * s.shape[1] * np.log(2 * np.pi * sigma**2))

    val = _unit("train", 1000, 1200).reshape(200, -1).astype(np.float64)
    test = _unit("test", 0, 100).reshape(100, -1).astype(np.float64)
    means = [log_p(val, sigma).mean() for sigma in PARZEN_GRID]
    sigma = PARZEN_GRID[int(np.argmax(means))]
    ll = log_p(test, sigma)
    assert result["parzen_sigma"] == sigma
    # The float32 path (expanded-square distances) against this float64 one: measured 1.3e-5
    # nats at sigma=0.05, under 1e-6 elsewhere; atol 1e-4 nats as in test_eval_parzen.py.
    np.testing.assert_allclose(result["parzen_validation_log_likelihoods"], means, rtol=0,
                               atol=1e-4)
    assert result["parzen_log_likelihood"] == pytest.approx(ll.mean(), abs=1e-4)
    assert result["parzen_log_likelihood_sem"] == pytest.approx(
        ll.std() / np.sqrt(len(ll)), abs=1e-4)


def test_parzen_validation_split_must_be_held_out():
    trainer = _parzen_trainer(validation_split="train[900:1100]")  # 100 images also in train
    with pytest.raises(ValueError, match=r"model.parzen_validation_split='train\[900:1100\]' is "
                                         r"not held out: 100 of its 200 images"):
        trainer.evaluate()
