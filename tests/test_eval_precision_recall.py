"""Tests of improved precision/recall against a brute-force scipy.spatial computation."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from genjax.eval import manifold_radii, precision_recall


def _brute_force(real, fake, k):
    """Float64 reference: Eq. (1)-(2) of Kynkaanniemi et al. with full distance matrices."""

    def radii(x):
        return np.sort(cdist(x, x), axis=1)[:, k]  # column 0 is the point itself

    def coverage(points, centers, r):
        return float(np.mean((cdist(points, centers) <= r[None, :]).any(axis=1)))

    real, fake = real.astype(np.float64), fake.astype(np.float64)
    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_brute_force(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(150, 4)).astype(np.float32)
    fake = (1.3 * rng.normal(size=(120, 4)) + 0.4).astype(np.float32)
    got = precision_recall(real, fake, k=k, batch_size=64)
    assert got == pytest.approx(_brute_force(real, fake, k), abs=1e-12)


def test_manifold_radii_match_sorted_distances():
    x = np.random.default_rng(0).normal(size=(90, 6)).astype(np.float32)
    expected = np.sort(cdist(x.astype(np.float64), x.astype(np.float64)), axis=1)[:, 3] ** 2
    np.testing.assert_allclose(manifold_radii(x, k=3, batch_size=32), expected, rtol=1e-5)


def test_identical_and_disjoint_sets():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 8)).astype(np.float32)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_mode_dropping_lowers_recall_not_precision():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(60, 2)) + [-20.0, 0.0]
    b = rng.normal(size=(40, 2)) + [20.0, 0.0]
    real = np.concatenate([a, b])
    # The generator reproduces mode a only: all its samples are realistic (precision 1),
    # and exactly the 60 real points of mode a are covered (recall 0.6).
    result = precision_recall(real, a + 0.01 * rng.normal(size=a.shape), k=3)
    assert result.precision == 1.0
    assert result.recall == pytest.approx(0.6)


def test_batch_size_does_not_change_the_result():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(70, 3)), rng.normal(size=(50, 3)) + 0.5
    reference = precision_recall(real, fake, batch_size=1000)
    for batch_size in (1, 7):
        assert precision_recall(real, fake, batch_size=batch_size) == reference


def test_precision_recall_rejects_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="f_fake must have more than k=3 rows"):
        precision_recall(x, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="f_fake must have the feature dimension"):
        precision_recall(x, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="f_real must be finite, got a NaN value at index"):
        precision_recall(np.full((10, 3), np.nan), x)
    with pytest.raises(ValueError, match="f_real must have 2 axes"):
        precision_recall(np.zeros(10), x)
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(x, x, k=0)
