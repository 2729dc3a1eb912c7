"""Tests of the Frechet distance and the kernel (KID) distance.

Frechet: closed forms for commuting covariances (1-D, scaled identity, diagonal) and
scipy.linalg.sqrtm in float64 for general ones (rtol 1e-8: both are float64 linear
algebra on well-conditioned matrices).
KID: an independent float64 NumPy MMD^2_u on the full sets (float32 JAX vs float64:
rtol 1e-4), and Monte Carlo checks of unbiasedness with a stated 4-standard-error bound.
"""

import jax
import numpy as np
import pytest
from scipy import linalg

from genjax.eval import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
    kernel_inception_distance,
)


def _random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _sqrtm_reference(mu1, s1, mu2, s2):
    root = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


# -- Frechet distance ------------------------------------------------------------------------


def test_frechet_1d_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
    got = frechet_distance(np.array([0.5]), np.array([[4.0]]), np.array([-1.0]), np.array([[0.25]]))
    assert got == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_frechet_identity_vs_scaled_identity():
    d, s = 7, 3.0
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    got = frechet_distance(mu1, np.eye(d), mu2, s**2 * np.eye(d))
    assert got == pytest.approx(d * 0.25 + d * (1.0 - s) ** 2, rel=1e-12)


def test_frechet_diagonal_and_singular_covariances():
    a = np.array([4.0, 1.0, 0.0, 9.0])
    b = np.array([1.0, 0.0, 0.0, 4.0])  # singular (rank 2): no eps offset needed
    got = frechet_distance(np.zeros(4), np.diag(a), np.ones(4), np.diag(b))
    assert got == pytest.approx(4 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-12)


def test_frechet_matches_scipy_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(0)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d, scale=3.0)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(_sqrtm_reference(mu1, s1, mu2, s2), rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-10)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-10)


def test_feature_statistics_matches_numpy():
    f = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    mu, sigma = feature_statistics(f)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10)


def test_frechet_from_features():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 5))
    fake = 1.5 * rng.normal(size=(300, 5)) + 0.3
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    expected = _sqrtm_reference(mu1, s1, mu2, s2)
    assert frechet_distance_from_features(real, fake) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_from_features(real, real) == pytest.approx(0.0, abs=1e-9)
    # Fewer samples than dimensions: singular covariances, still finite and >= 0.
    small = frechet_distance_from_features(rng.normal(size=(5, 20)), rng.normal(size=(6, 20)))
    assert np.isfinite(small) and small >= 0


def test_frechet_rejects_bad_input():
    eye = np.eye(3)
    with pytest.raises(ValueError, match="sigma1 must have shape"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), eye)
    with pytest.raises(ValueError, match="sigma2 must be symmetric"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="sigma1 must be positive semi-definite"):
        frechet_distance(np.zeros(3), -eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="mu2 must have the shape"):
        frechet_distance(np.zeros(3), eye, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="mu1 must be finite, got a NaN"):
        frechet_distance(np.array([np.nan, 0, 0]), eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="f_fake must have the feature dimension"):
        frechet_distance_from_features(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="f_real must have at least 2 rows"):
        frechet_distance_from_features(np.zeros((1, 3)), np.zeros((4, 3)))


# -- kernel (KID) distance -------------------------------------------------------------------


def _mmd2_unbiased_numpy(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * k(x, y).mean()
    )


def test_kid_matches_numpy_on_full_sets():
    # subset_size = N draws a permutation of each set; MMD^2_u is permutation invariant.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 10)).astype(np.float32)
    y = (1.2 * rng.normal(size=(120, 10)) + 0.2).astype(np.float32)
    expected = _mmd2_unbiased_numpy(x.astype(np.float64), y.astype(np.float64))
    got = kernel_inception_distance(x, y, key=0, num_subsets=3, subset_size=120)
    assert got.mean == pytest.approx(expected, rel=1e-4)
    assert got.std == pytest.approx(0.0, abs=1e-4 * abs(expected))


def test_kid_is_unbiased_for_same_distribution():
    # 300 independent pairs of sets from one distribution, one subset each (the whole set).
    rng = np.random.default_rng(4)
    estimates = np.array(
        [
            kernel_inception_distance(
                rng.normal(size=(30, 4)),
                rng.normal(size=(30, 4)),
                key=i,
                num_subsets=1,
                subset_size=30,
            ).mean
            for i in range(300)
        ]
    )
    stderr = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean()) < 4 * stderr
    # The biased (V-statistic) estimate on the same kind of data is clearly positive,
    # so the bound above does detect an O(1/m) bias.
    biased = []
    for _ in range(300):
        x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
        k = lambda a, b: (a @ b.T / 4 + 1.0) ** 3
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    assert np.mean(biased) > 4 * np.std(biased, ddof=1) / np.sqrt(300) + 4 * stderr


def test_kid_positive_for_shifted_features():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 0.5
    result = kernel_inception_distance(x, y, key=jax.random.key(1), num_subsets=20, subset_size=100)
    assert result.mean > 5 * result.std / np.sqrt(20)
    same = kernel_inception_distance(
        x, rng.normal(size=(400, 8)), key=1, num_subsets=20, subset_size=100
    )
    assert result.mean > 10 * abs(same.mean)


def test_kid_key_handling():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(60, 3)) + 0.1
    a = kernel_inception_distance(x, y, key=7, num_subsets=5, subset_size=20)
    assert a == kernel_inception_distance(
        x, y, key=jax.random.key(7), num_subsets=5, subset_size=20
    )
    assert a == kernel_inception_distance(
        x, y, key=jax.random.PRNGKey(7), num_subsets=5, subset_size=20
    )
    assert a != kernel_inception_distance(x, y, key=8, num_subsets=5, subset_size=20)


def test_kid_rejects_bad_input():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match=r"subset_size must be in \[2, min"):
        kernel_inception_distance(x, x, key=0, subset_size=11)
    with pytest.raises(TypeError, match="key must be"):
        kernel_inception_distance(x, x, key="seed", subset_size=5)
    with pytest.raises(ValueError, match="f_fake must have the feature dimension"):
        kernel_inception_distance(x, np.zeros((10, 2)), key=0, subset_size=5)
    with pytest.raises(ValueError, match="num_subsets"):
        kernel_inception_distance(x, x, key=0, num_subsets=0, subset_size=5)
