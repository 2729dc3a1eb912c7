"""Tests of the toy mixtures and the mode-coverage metric.

Counts are checked exactly on hand-placed samples; sampler statistics by Monte Carlo
with 4-standard-error bounds; the chi-square probability against scipy.stats.
"""

import jax
import numpy as np
import pytest
from scipy import stats

from genjax.eval import (
    grid_of_gaussians,
    high_quality_probability,
    mode_coverage,
    ring_of_gaussians,
    sample_mixture,
)


def test_ring_and_grid_centres():
    centers, std = ring_of_gaussians()
    assert centers.shape == (8, 2) and std == 0.02
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-12)
    angles = np.sort(np.mod(np.arctan2(centers[:, 1], centers[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-12)
    grid, std = grid_of_gaussians()
    assert grid.shape == (25, 2) and std == 0.05
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(map(float, c)) for c in grid} == expected


def test_mode_coverage_on_constructed_samples():
    centers, std = ring_of_gaussians(num_modes=8, radius=2.0, std=0.1)
    direction = np.array([0.6, 0.8])
    samples = np.concatenate(
        [
            np.repeat(centers[:1], 3, axis=0),  # 3 exactly on mode 0
            centers[1:2] + 2.9 * std * direction,  # inside 3 std of mode 1
            centers[2:3] + 3.1 * std * direction,  # just outside 3 std of mode 2
            np.zeros((1, 2)),  # in the middle of the ring
        ]
    )
    result = mode_coverage(samples, centers, std=std)
    np.testing.assert_array_equal(result.counts, [3, 1, 0, 0, 0, 0, 0, 0])
    assert result.modes_captured == 2
    assert result.high_quality_fraction == pytest.approx(4 / 6)
    assert mode_coverage(samples, centers, std=std, min_samples_per_mode=2).modes_captured == 1
    wide = mode_coverage(samples, centers, std=std, threshold_stds=3.2)
    np.testing.assert_array_equal(wide.counts, [3, 1, 1, 0, 0, 0, 0, 0])


def test_perfect_sampler_statistics():
    centers, std = grid_of_gaussians()
    n = 20_000
    samples = np.asarray(sample_mixture(jax.random.key(0), centers, std, n))
    assert samples.shape == (n, 2) and samples.dtype == np.float32
    result = mode_coverage(samples, centers, std=std)
    assert result.modes_captured == 25
    p = high_quality_probability(2)  # the modes are 40 std apart: no overlap
    assert abs(result.high_quality_fraction - p) < 4 * np.sqrt(p * (1 - p) / n)
    # Uniform weights: each count is Binomial(n, p / 25).
    q = p / 25
    assert np.all(np.abs(result.counts - n * q) < 4 * np.sqrt(n * q * (1 - q)))
    # Within each component the spread is std per coordinate.
    nearest = np.argmin(((samples[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    residual = samples - centers[nearest]
    np.testing.assert_allclose(residual.std(axis=0), std, rtol=0.03)


def test_collapsed_sampler_captures_one_mode():
    centers, std = ring_of_gaussians()
    samples = centers[3] + std * np.random.default_rng(0).normal(size=(500, 2))
    result = mode_coverage(samples, centers, std=std)
    assert result.modes_captured == 1 and result.counts[3] == result.counts.sum()


def test_high_quality_probability_is_chi_square_cdf():
    assert high_quality_probability(2, 3.0) == pytest.approx(1 - np.exp(-4.5), rel=1e-6)
    assert high_quality_probability(5, 2.5) == pytest.approx(stats.chi2.cdf(6.25, df=5), rel=1e-6)


def test_mode_coverage_rejects_bad_input():
    centers, std = ring_of_gaussians()
    with pytest.raises(ValueError, match="samples must have the feature dimension"):
        mode_coverage(np.zeros((4, 3)), centers, std=std)
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        mode_coverage(np.zeros((4, 2)), centers, std=0.0)
    with pytest.raises(ValueError, match="samples must be finite"):
        mode_coverage(np.full((4, 2), np.inf), centers, std=std)
    with pytest.raises(ValueError, match="min_samples_per_mode"):
        mode_coverage(np.zeros((4, 2)), centers, std=std, min_samples_per_mode=0)
