"""The sample-based evaluation (genjax.eval.sample_protocols) and the run pictures
(genjax.eval.run_pictures), called on plain arrays and functions: a sampler, an encoder and a
split loader written here, no method and no trainer."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from PIL import Image

from genjax.data import ArrayDataset
from genjax.data.toy import toy_centers
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.modes import sample_mixture
from genjax.eval.nearest_neighbor import nearest_neighbor_accuracy
from genjax.eval.run_pictures import write_latent_pictures, write_loss_curves, write_point_samples
from genjax.eval.sample_metrics import parzen_metrics
from genjax.eval.sample_protocols import (
    PARZEN_SIGMAS,
    SampleEvaluation,
    SampleMetricsConfig,
    unit_images,
)
from genjax.train.config import ConfigValueError, DataConfig

KEYS = {"sample_key": jax.random.key(0), "metric_key": jax.random.key(1)}


def _images(name: str, split: str, n: int, seed: int, *, labels: bool = True) -> ArrayDataset:
    """``n`` random 4x4 uint8 images (a stand-in split; labels 0..2 when asked)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 4, 4, 1), dtype=np.uint8)
    y = rng.integers(0, 3, size=n).astype(np.int32) if labels else None
    return ArrayDataset(name=name, split=split, images=images, labels=y, num_bits=8,
                        num_classes=3 if labels else None)


class Splits:
    """A ``load_split(split, max_examples)`` over named stand-in splits, counting its calls."""

    def __init__(self, **splits: ArrayDataset):
        self.splits, self.calls = splits, []

    def __call__(self, split: str, max_examples: int = 0) -> ArrayDataset:
        self.calls.append((split, max_examples))
        return self.splits[split]


def _evaluation(protocols: SampleMetricsConfig, splits: Splits, *, num_classes: int = 0,
                **data) -> SampleEvaluation:
    return SampleEvaluation(protocols, DataConfig(name="stand_in", **data), load_split=splits,
                            batch_size=16, num_classes=num_classes)


def test_points_of_a_toy_mixture_get_mode_coverage_and_no_parzen():
    centers, std = toy_centers("ring")
    data = ArrayDataset(name="ring", split="test", images=np.zeros((10, 2), np.float32),
                        labels=None, num_bits=0, num_classes=None)
    evaluation = _evaluation(SampleMetricsConfig(metric_samples=400), Splits())
    exact = lambda key, num, labels: np.asarray(sample_mixture(key, centers, std, num))
    out = evaluation(exact, data, **KEYS)
    assert out["modes_captured"] == out["num_modes"] == 8 and out["mode_samples"] == 400
    assert out["high_quality_fraction"] == pytest.approx(out["high_quality_ceiling"], abs=0.03)
    assert out["parzen"].startswith("skipped: the Parzen-window estimate is for images")
    collapsed = lambda key, num, labels: np.tile(centers[:1], (num, 1))  # one mode only
    assert evaluation(collapsed, data, **KEYS)["modes_captured"] == 1
    moons = ArrayDataset(name="two_moons", split="test", images=np.zeros((4, 2), np.float32),
                         labels=None, num_bits=0, num_classes=None)
    assert "not a Gaussian mixture" in evaluation(exact, moons, **KEYS)["mode_coverage"]


def test_the_sampler_is_asked_for_metric_samples_with_cycling_classes():
    asked = []

    def sample(key, num, labels):
        asked.append((num, None if labels is None else labels.tolist()))
        return np.full((num, 4, 4, 1), 0.5, np.float32)

    test = _images("stand_in", "test", 8, 0)
    _evaluation(SampleMetricsConfig(metric_samples=7), Splits(), num_classes=3)(
        sample, test, **KEYS)
    _evaluation(SampleMetricsConfig(metric_samples=5), Splits())(sample, test, **KEYS)
    assert asked == [(7, [0, 1, 2, 0, 1, 2, 0]), (5, None)]


def test_protocols_that_are_off_say_why_and_name_the_setting():
    test = _images("stand_in", "test", 8, 0)
    flat = lambda key, num, labels: np.full((num, 4, 4, 1), 0.5, np.float32)
    out = _evaluation(SampleMetricsConfig(metric_samples=4), Splits(), num_classes=3)(
        flat, test, **KEYS)
    assert out["feature_metrics"].startswith("skipped: no classifier configured")
    assert "model.classifier_workdir" in out["feature_metrics"]
    assert "classifier_stand_in" in out["feature_metrics"]
    assert out["feature_metrics"].endswith("and label accuracy")  # a conditional sampler
    assert "model.inception_weights" in out["fid"]
    assert "model.parzen_validation_split" in out["parzen"]
    assert not any(k.startswith(("fd_", "nn_", "parzen_")) for k in out)


def test_parzen_protocol_chooses_the_bandwidth_on_the_loaded_validation_split():
    test, validation = _images("stand_in", "test", 20, 1), _images("stand_in", "val", 30, 2)
    splits = Splits(val=validation, train=_images("stand_in", "train", 40, 3))
    protocols = SampleMetricsConfig(metric_samples=30, parzen_validation_split="val",
                                    parzen_sigmas=(0.05, 0.2, 0.8))
    evaluation = _evaluation(protocols, splits, train_split="train", max_train_examples=40)
    copy = lambda key, num, labels: unit_images(validation)  # samples = the validation images
    out = evaluation(copy, test, **KEYS)
    expected = parzen_metrics(unit_images(validation), unit_images(test),
                              unit_images(validation), sigmas=(0.05, 0.2, 0.8), batch_size=16)
    assert {k: out[k] for k in expected} == expected
    assert out["parzen_sigma"] == 0.05  # every validation image sits on a kernel centre
    assert out["parzen_validation_split"] == "val" and out["parzen_test_split"] == "test"
    assert out["parzen_validation_in_train"] == 0
    evaluation(copy, test, **KEYS)  # the validation split and the held-out check: once
    assert splits.calls == [("val", 0), ("train", 40)]


def test_parzen_refuses_a_validation_split_that_is_not_held_out_or_empty_or_of_other_images():
    test, train = _images("stand_in", "test", 10, 1), _images("stand_in", "train", 40, 3)
    flat = lambda key, num, labels: np.full((num, 4, 4, 1), 0.5, np.float32)
    shared = ArrayDataset(name="stand_in", split="val", images=train.images[:10].copy(),
                          labels=None, num_bits=8, num_classes=None)
    protocols = SampleMetricsConfig(metric_samples=4, parzen_validation_split="val")
    with pytest.raises(ValueError, match=r"'val' is not held out: 10 of its 10 images"):
        _evaluation(protocols, Splits(val=shared, train=train))(flat, test, **KEYS)
    empty = ArrayDataset(name="stand_in", split="val", images=train.images[:0].copy(),
                         labels=None, num_bits=8, num_classes=None)
    with pytest.raises(ValueError, match="is empty for dataset 'stand_in'"):
        _evaluation(protocols, Splits(val=empty, train=train))(flat, test, **KEYS)
    other = ArrayDataset(name="stand_in", split="val",
                         images=np.zeros((5, 8, 8, 1), np.uint8), labels=None, num_bits=8,
                         num_classes=None)
    with pytest.raises(ValueError, match="name a split of the same dataset"):
        _evaluation(protocols, Splits(val=other, train=train))(flat, test, **KEYS)


def test_encoder_nn_accuracy_uses_the_training_split_as_the_labelled_reference():
    test, train = _images("stand_in", "test", 30, 1), _images("stand_in", "train", 50, 3)
    splits = Splits(train=train)
    flat = lambda key, num, labels: np.full((num, 4, 4, 1), 0.5, np.float32)
    pixels = lambda images: np.asarray(images, np.float32).reshape(len(images), -1)
    evaluation = _evaluation(SampleMetricsConfig(metric_samples=4), splits, train_split="train")
    out = evaluation(flat, test, encode=pixels, **KEYS)
    expected = nearest_neighbor_accuracy(pixels(train.images), train.labels,
                                         pixels(test.images), test.labels, k=1)
    assert out["nn_accuracy"] == expected
    assert out["nn_reference_examples"] == 50 and out["nn_test_examples"] == 30
    evaluation(flat, test, encode=pixels, **KEYS)
    assert splits.calls == [("train", 0)]  # the reference is loaded once
    unlabelled = _images("stand_in", "test", 5, 4, labels=False)
    assert evaluation(flat, unlabelled, encode=pixels, **KEYS)["nn_accuracy"].startswith(
        "skipped: dataset 'stand_in' has no labels")


def test_sample_metric_fields_are_checked():
    assert SampleMetricsConfig().parzen_sigmas == PARZEN_SIGMAS
    assert PARZEN_SIGMAS[0] == pytest.approx(0.1) and PARZEN_SIGMAS[-1] == pytest.approx(1.0)
    with pytest.raises(ConfigValueError, match="pt_inception-2015-12-05"):
        SampleMetricsConfig(inception_weights="/no/such/file.npz").check_protocols()
    SampleMetricsConfig().check_protocols()
    with pytest.raises(ConfigValueError, match="FID is for images; dataset 'ring' holds points"):
        SampleMetricsConfig(inception_weights="w.npz").check_protocol_data("ring", points=True)


def test_unit_images_divide_by_the_largest_stored_value():
    binary = ArrayDataset(name="b", split="test", images=np.ones((2, 2, 2, 1), np.uint8),
                          labels=None, num_bits=1, num_classes=None)
    assert unit_images(binary).max() == 1.0
    eight = _images("stand_in", "test", 6, 0)
    np.testing.assert_array_equal(unit_images(eight, 4), eight.images[:4] / np.float32(255))
    assert unit_images(eight, 4).dtype == np.float32


def test_loss_curves_are_drawn_from_the_logged_training_metrics(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    names = ("discriminator/loss", "generator/loss")
    assert write_loss_curves(pictures, 1, names, title="t", ylabel="nats") == []  # no log yet
    rows = [{"step": s, "split": "train", "generator/loss": 1.0 / s} for s in (1, 2, 3)]
    rows.append({"step": 3, "split": "eval", "discriminator/loss": 0.5})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    [path] = write_loss_curves(pictures, 3, names, title="t", ylabel="nats")
    assert path == pictures / "loss_curves_00000003.png" and path.stat().st_size > 0
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert write_loss_curves(elsewhere, 3, names, title="t", ylabel="nats",
                             workdir=tmp_path)[0].parent == elsewhere


def test_point_samples_are_drawn_over_the_data(tmp_path):
    data = np.asarray(sample_mixture(jax.random.key(0), toy_centers("grid")[0], 0.05, 200))
    path = write_point_samples(tmp_path, 7, data, data[:50], dataset="grid", title="samples")
    assert path == tmp_path / "samples_00000007.png" and path.stat().st_size > 0
    with pytest.raises(ValueError, match=r"2-D points \(N, 2\)"):
        write_point_samples(tmp_path, 7, data, np.zeros((5, 3)), dataset="grid", title="")


def test_latent_pictures_draw_samples_and_strips_between_prior_pairs(tmp_path):
    calls = {"sample": [], "decode": []}

    def sample(key, num):
        calls["sample"].append(num)
        return np.full((num, 4, 4, 1), 0.5, np.float32)

    def decode(z, labels):
        calls["decode"].append((np.asarray(z), labels))
        return np.clip(np.asarray(z)[:, :1, None, None] * np.ones((1, 4, 4, 1)), 0.0, 1.0)

    key = jax.random.key(3)
    paths = write_latent_pictures(tmp_path, 5, sample=sample, decode=decode, latent_dim=2,
                                  key=key, num_samples=6, num_classes=3)
    assert [p.name for p in paths] == ["samples_00000005.png", "interpolation_00000005.png"]
    assert calls["sample"] == [6] and len(calls["decode"]) == 4
    ends = jax.random.normal(jax.random.fold_in(key, 1), (8, 2))
    for r, (z, labels) in enumerate(calls["decode"]):  # row r: z_2r -> z_2r+1, class r % 3
        np.testing.assert_array_equal(z, interpolate_latents(ends[2 * r], ends[2 * r + 1], 10))
        np.testing.assert_array_equal(labels, np.full((10,), r % 3))
    assert all(Image.open(p).size[0] > 0 for p in paths)
    calls["decode"].clear()
    write_latent_pictures(tmp_path, 6, sample=sample, decode=decode, latent_dim=2, key=key,
                          num_samples=2)
    assert all(labels is None for _, labels in calls["decode"])
