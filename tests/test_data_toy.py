"""The 2-D toy datasets: deterministic, the stated mixtures, usable by the batch iterator."""

import numpy as np
import pytest

from genjax.data import BatchIterator, load_dataset, preprocess
from genjax.data.toy import SPLIT_SIZES, toy_centers


@pytest.mark.parametrize("name", ["ring", "grid", "two_moons"])
def test_splits_are_deterministic_disjoint_and_sized(name):
    train = load_dataset(name, "train")
    again = load_dataset(name, "train")
    test = load_dataset(name, "test")
    assert train.images.dtype == np.float32 and train.images.shape == (SPLIT_SIZES["train"], 2)
    assert len(test) == SPLIT_SIZES["test"] and train.num_bits == 0 and train.is_continuous
    np.testing.assert_array_equal(train.images, again.images)
    # Different seeds per split: no test point coincides with a training point.
    train_rows = set(map(tuple, train.images.tolist()))
    assert not any(row in train_rows for row in map(tuple, test.images.tolist()))
    assert load_dataset(name, "train[:100]").images.shape == (100, 2)


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_points_sit_at_their_component(name):
    ds = load_dataset(name, "test")
    centers, std = toy_centers(name)
    offsets = ds.images - centers[ds.labels]
    # Per-coordinate std of the offsets is the component std (10k points: ~1% error).
    np.testing.assert_allclose(offsets.std(axis=0), [std, std], rtol=0.05)
    counts = np.bincount(ds.labels, minlength=len(centers))
    assert counts.min() > 0.7 * len(ds) / len(centers)


def test_two_moons_lie_on_their_half_circles():
    ds = load_dataset("two_moons", "test")
    x, y = ds.images[:, 0], ds.images[:, 1]
    upper = ds.labels == 0
    r_upper = np.hypot(x[upper], y[upper])
    r_lower = np.hypot(x[~upper] - 1.0, y[~upper] - 0.5)
    assert abs(np.median(r_upper) - 1.0) < 0.02 and abs(np.median(r_lower) - 1.0) < 0.02
    assert np.mean(y[upper] > -0.15) > 0.97 and np.mean(y[~upper] < 0.65) > 0.97


def test_batches_and_preprocess_of_points():
    ds = load_dataset("ring", "train[:1000]")
    batch = BatchIterator(ds, 100, seed=3).batch_at(12)
    assert batch["image"].shape == (100, 2) and batch["label"].shape == (100,)
    x = preprocess(None, batch["image"], mode="none", num_bits=0)
    np.testing.assert_array_equal(np.asarray(x), batch["image"])
    with pytest.raises(ValueError, match="mode='none'"):
        preprocess(None, batch["image"], mode="unit", num_bits=0)
    with pytest.raises(ValueError, match="mode='none'"):
        preprocess(None, np.zeros((2, 8, 8, 1), np.uint8), mode="none", num_bits=8)


def test_unknown_toy_split_and_bad_points_are_reported():
    from genjax.data import ArrayDataset

    with pytest.raises(ValueError, match="splits"):
        load_dataset("grid", "training")
    with pytest.raises(ValueError, match="NaN"):
        ArrayDataset("p", "train", np.array([[0.0, np.nan]], np.float32), None, 0, None)
