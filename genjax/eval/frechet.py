"""Frechet distance between Gaussians fitted to features (the "FID" recipe, any network).

genjax reports this as "FD-<network>" (e.g. FD-LeNet on MNIST features): the number is
only comparable with a paper's FID when the features come from the same Inception-v3
pool3 layer, the same image resizing and the same sample counts (Heusel et al. use
50,000 generated images against the training set). The statistics here are in float64
NumPy; the covariance uses the unbiased ``1 / (N - 1)`` normalization (as ``np.cov``
and the TTUR reference code).
"""

import numpy as np

from genjax.eval._checks import as_float, feature_matrix, same_dim

# Relative tolerances on user-supplied covariances (float32 round-off is ~1e-7).
_SYMMETRY_RTOL = 1e-5
_PSD_RTOL = 1e-5


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of feature vectors.

    Args:
      features: ``(N, D)`` finite array, ``N >= 2``.

    Returns:
      ``(mu, sigma)``: float64 ``(D,)`` mean and ``(D, D)`` covariance with ``N - 1``
      normalization.
    """
    f = feature_matrix("features", features, min_rows=2).astype(np.float64)
    mu = f.mean(axis=0)
    centered = f - mu
    sigma = centered.T @ centered / (f.shape[0] - 1)
    return mu, (sigma + sigma.T) / 2.0


def _check_gaussian(name_mu: str, mu, name_sigma: str, sigma) -> tuple[np.ndarray, np.ndarray]:
    m = as_float(name_mu, mu, ndim=1, what="(D,)").astype(np.float64)
    s = as_float(name_sigma, sigma, ndim=2, what="(D, D)").astype(np.float64)
    if s.shape != (m.shape[0], m.shape[0]):
        raise ValueError(
            f"{name_sigma} must have shape {(m.shape[0],) * 2} to match {name_mu}, got {s.shape}"
        )
    scale = max(float(np.abs(s).max()), np.finfo(np.float64).tiny)
    asym = float(np.abs(s - s.T).max())
    if asym > _SYMMETRY_RTOL * scale:
        raise ValueError(f"{name_sigma} must be symmetric, got max |S - S^T| = {asym:.3g}")
    s = (s + s.T) / 2.0
    lowest = float(np.linalg.eigvalsh(s)[0])
    if lowest < -_PSD_RTOL * scale:
        raise ValueError(
            f"{name_sigma} must be positive semi-definite, got smallest eigenvalue {lowest:.3g}"
        )
    return m, s


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr((sigma1 sigma2)^{1/2})`` for symmetric PSD matrices, through symmetric eigenproblems.

    ``sigma1 sigma2`` is not symmetric, but with ``A = sigma1^{1/2}`` it has the eigenvalues
    of the symmetric PSD matrix ``A sigma2 A`` (``AB`` and ``BA`` share their spectrum with
    ``B = A sigma2``). So the trace of the principal square root is the sum of the square
    roots of those eigenvalues, all real and >= 0 up to round-off (clipped at 0). Unlike
    ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` this needs no ``eps * I`` offset for singular
    covariances (fewer samples than dimensions) and returns no imaginary parts.
    """
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2})``, computed in
    float64 with the matrix square root taken by the eigen route of
    ``trace_sqrt_product``. The result is symmetric in its two Gaussians, 0 for equal
    ones, and clamped at 0 against round-off. It is the squared distance (what papers call
    FID), in squared feature units.

    Args:
      mu1: ``(D,)`` mean of the first Gaussian (e.g. real-data features).
      sigma1: ``(D, D)`` symmetric positive semi-definite covariance.
      mu2: ``(D,)`` mean of the second Gaussian (e.g. generated-sample features).
      sigma2: ``(D, D)`` covariance.

    Returns:
      ``d^2`` as a Python float.

    References:
      Dowson & Landau, "The Frechet distance between multivariate normal distributions",
      J. Multivariate Analysis 12, 1982 (the closed form).
      Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
      Nash Equilibrium", NeurIPS 2017, Eq. (6) of arXiv:1706.08500 (its use on Inception
      features, FID).
    """
    m1, s1 = _check_gaussian("mu1", mu1, "sigma1", sigma1)
    m2, s2 = _check_gaussian("mu2", mu2, "sigma2", sigma2)
    if m1.shape != m2.shape:
        raise ValueError(f"mu2 must have the shape of mu1 {m1.shape}, got {m2.shape}")
    diff = m1 - m2
    d2 = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    return max(float(d2), 0.0)


def frechet_distance_from_features(f_real, f_fake) -> float:
    """``frechet_distance`` between Gaussians fitted to two feature sets.

    Args:
      f_real: ``(N, D)`` features of real data, ``N >= 2``.
      f_fake: ``(M, D)`` features of model samples, ``M >= 2``.

    Returns:
      ``d^2`` as a Python float (biased upwards for small sample counts; compare only
      numbers computed with the same N and M).
    """
    a = feature_matrix("f_real", f_real, min_rows=2)
    b = feature_matrix("f_fake", f_fake, min_rows=2)
    same_dim("f_real", a, "f_fake", b)
    mu1, sigma1 = feature_statistics(a)
    mu2, sigma2 = feature_statistics(b)
    return frechet_distance(mu1, sigma1, mu2, sigma2)
