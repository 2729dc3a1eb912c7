"""Tests of the Gaussian Parzen-window estimate.

References are computed in float64: scipy.special.logsumexp over direct differences, and
scipy.stats.multivariate_normal for a tiny case. The float32 JAX path uses the expanded
squared distance; with unit-scale data in 5-D its error is about 1e-5 nats (measured
1.1e-5 at sigma=0.3), so the comparisons use atol=1e-4 nats.
"""

import numpy as np
import pytest
from scipy import special, stats

from genjax.eval import parzen_log_densities, parzen_log_likelihood, select_parzen_bandwidth
from genjax.eval._pairwise import map_row_blocks


def _reference_log_densities(samples, points, sigma):
    s, x = samples.astype(np.float64), points.astype(np.float64)
    d2 = ((x[:, None, :] - s[None, :, :]) ** 2).sum(-1)
    n, d = s.shape
    return (
        special.logsumexp(-d2 / (2 * sigma**2), axis=1)
        - np.log(n)
        - 0.5 * d * np.log(2 * np.pi * sigma**2)
    )


def _data(seed=0, n=300, m=40, d=5):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n, d)).astype(np.float32),
        (rng.normal(size=(m, d)) * 1.1).astype(np.float32),
    )


def test_parzen_matches_logsumexp_reference():
    samples, points = _data()
    for sigma in (0.3, 0.7, 2.0):
        got = parzen_log_densities(samples, points, sigma, batch_size=16)
        np.testing.assert_allclose(
            got, _reference_log_densities(samples, points, sigma), rtol=0, atol=1e-4
        )


def test_parzen_matches_scipy_mixture_density():
    samples = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]], np.float32)
    points = np.array([[0.2, -0.1], [3.0, 3.0]], np.float32)
    sigma = 0.8
    mixture = np.mean(
        [
            stats.multivariate_normal(mean=s, cov=sigma**2 * np.eye(2)).pdf(points)
            for s in samples.astype(np.float64)
        ],
        axis=0,
    )
    np.testing.assert_allclose(
        parzen_log_densities(samples, points, sigma), np.log(mixture), rtol=0, atol=1e-5
    )
    assert parzen_log_likelihood(samples, points, sigma) == pytest.approx(
        np.log(mixture).mean(), abs=1e-5
    )


def test_parzen_batching_invariance():
    samples, points = _data(seed=1)
    reference = parzen_log_densities(samples, points, 0.5, batch_size=1000)
    for batch_size in (1, 7):
        np.testing.assert_allclose(
            parzen_log_densities(samples, points, 0.5, batch_size=batch_size), reference, rtol=1e-6
        )


def test_blocks_never_exceed_batch_size():
    # The heavy arrays are (block, num_samples): check the blocking itself.
    shapes = []

    def record(block, factor):
        shapes.append(block.shape)
        return block * factor

    x = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    out = map_row_blocks(record, x, 5, 2.0)
    np.testing.assert_array_equal(out, 2 * x)
    assert shapes == [(5, 2)] * 5


def test_select_parzen_bandwidth_table_and_argmax():
    samples, validation = _data(seed=2)
    sigmas = [0.1, 0.3, 0.6, 1.0, 3.0]
    best, table = select_parzen_bandwidth(samples, validation, sigmas, batch_size=16)
    assert list(table) == sigmas
    for sigma, value in table.items():
        expected = _reference_log_densities(samples, validation, sigma).mean()
        assert value == pytest.approx(expected, abs=1e-4)
    assert best == max(table, key=table.get)
    assert best not in (0.1, 3.0)  # the grid brackets the optimum for unit-scale data


def test_parzen_rejects_bad_input():
    samples, points = _data()
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        parzen_log_likelihood(samples, points, 0.0)
    with pytest.raises(ValueError, match="test_points must have the feature dimension"):
        parzen_log_likelihood(samples, points[:, :3], 1.0)
    with pytest.raises(ValueError, match="samples must be finite, got a NaN"):
        parzen_log_likelihood(np.full((3, 5), np.nan), points, 1.0)
    with pytest.raises(ValueError, match="sigmas must be a non-empty"):
        select_parzen_bandwidth(samples, points, [0.5, -1.0])
    with pytest.raises(ValueError, match="batch_size"):
        parzen_log_likelihood(samples, points, 1.0, batch_size=0)
