"""Tests of k-NN accuracy against sklearn.neighbors.KNeighborsClassifier (brute force)."""

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from genjax.eval import nearest_neighbor_accuracy


def _overlapping_clusters(seed, n, labels=(3, 7, 9), d=6):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(labels), d)) * 1.5
    y = rng.choice(labels, size=n)
    x = means[np.searchsorted(labels, y)] + rng.normal(size=(n, d))
    return x.astype(np.float32), y


def test_separable_clusters_are_classified_perfectly():
    rng = np.random.default_rng(0)
    centers = np.array([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0]])
    y_train, y_test = rng.integers(0, 3, 90), rng.integers(0, 3, 30)
    x_train = centers[y_train] + rng.normal(size=(90, 2))
    x_test = centers[y_test] + rng.normal(size=(30, 2))
    assert nearest_neighbor_accuracy(x_train, y_train, x_test, y_test) == 1.0
    assert nearest_neighbor_accuracy(x_train, y_train, x_test, (y_test + 1) % 3) == 0.0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_matches_sklearn(metric, k):
    x_train, y_train = _overlapping_clusters(1, 300)
    x_test, y_test = _overlapping_clusters(2, 120)
    reference = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    expected = float(np.mean(reference.fit(x_train, y_train).predict(x_test) == y_test))
    got = nearest_neighbor_accuracy(
        x_train, y_train, x_test, y_test, k=k, metric=metric, batch_size=50
    )
    assert 0.3 < expected < 1.0  # a non-trivial case
    assert got == pytest.approx(expected, abs=1e-12)


def test_batch_size_does_not_change_the_result():
    x_train, y_train = _overlapping_clusters(3, 200)
    x_test, y_test = _overlapping_clusters(4, 64)
    reference = nearest_neighbor_accuracy(x_train, y_train, x_test, y_test, k=3)
    for batch_size in (1, 9):
        assert (
            nearest_neighbor_accuracy(x_train, y_train, x_test, y_test, k=3, batch_size=batch_size)
            == reference
        )


def test_cosine_ignores_scale():
    x_train, y_train = _overlapping_clusters(5, 100)
    x_test, y_test = _overlapping_clusters(6, 40)
    scales = np.random.default_rng(7).uniform(0.1, 10.0, size=(40, 1)).astype(np.float32)
    assert nearest_neighbor_accuracy(
        x_train, y_train, x_test * scales, y_test, metric="cosine"
    ) == nearest_neighbor_accuracy(x_train, y_train, x_test, y_test, metric="cosine")


def test_rejects_bad_input():
    x, y = np.zeros((10, 3)), np.zeros(10, int)
    with pytest.raises(ValueError, match=r"train_labels must have shape \(10,\)"):
        nearest_neighbor_accuracy(x, y[:5], x, y)
    with pytest.raises(ValueError, match="test_labels must be an integer array"):
        nearest_neighbor_accuracy(x, y, x, y.astype(float))
    with pytest.raises(ValueError, match="k must be <= len"):
        nearest_neighbor_accuracy(x, y, x, y, k=11)
    with pytest.raises(ValueError, match="metric must be one of"):
        nearest_neighbor_accuracy(x, y, x, y, metric="manhattan")
    with pytest.raises(ValueError, match="test_features must have the feature dimension"):
        nearest_neighbor_accuracy(x, y, np.zeros((10, 2)), y)
