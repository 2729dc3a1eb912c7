"""Pictures for the classical models: mixture ellipses on 2-D data, image grids.

matplotlib is imported lazily with the Agg backend, so importing genjax needs no display.
Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from genjax.classical.gmm import GaussianMixture


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _covariance_2d(params: GaussianMixture) -> np.ndarray:
    cov = np.asarray(params.covariances, np.float64)
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(2)


def plot_gmm_ellipses(
    x: Any,
    params: GaussianMixture,
    path: str | Path,
    *,
    num_std: tuple[float, ...] = (1.0, 2.0),
    labels: Any = None,
    title: str | None = None,
) -> Path:
    """Scatter of 2-D data with each component drawn as its 1- and 2-sigma ellipses.

    An ellipse at ``s`` standard deviations has its axes along the eigenvectors of Sigma_k,
    with half-lengths ``s sqrt(eigenvalue)``; its line width grows with the weight pi_k.

    Args:
      x: ``(N, 2)`` data.
      params: a mixture on 2-D data.
      path: PNG file to write.
      num_std: radii, in standard deviations, of the ellipses drawn per component.
      labels: optional ``(N,)`` integer labels to colour the points.
      title: optional figure title.

    Returns:
      The written path.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2), got {x.shape}")
    if params.means.shape[-1] != 2:
        raise ValueError(f"params must be a mixture on 2-D data, got means {params.means.shape}")
    plt = _pyplot()
    from matplotlib.patches import Ellipse

    fig, ax = plt.subplots(figsize=(6, 6))
    if labels is None:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, color="C0")
    else:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, c=np.asarray(labels), cmap="tab10")
    weights = np.asarray(params.weights)
    for k, (mean, cov) in enumerate(
        zip(np.asarray(params.means), _covariance_2d(params), strict=True)
    ):
        vals, vecs = np.linalg.eigh(cov)
        angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
        for s in num_std:
            ax.add_patch(
                Ellipse(
                    mean,
                    2 * s * math.sqrt(vals[1]),
                    2 * s * math.sqrt(vals[0]),
                    angle=angle,
                    fill=False,
                    color="C3",
                    lw=0.8 + 4.0 * weights[k],
                    alpha=1.0 if s == num_std[0] else 0.5,
                )
            )
        ax.plot(*mean, "k+", ms=10)
        ax.annotate(f"{weights[k]:.2f}", mean, textcoords="offset points", xytext=(4, 4))
    ax.set_aspect("equal")
    ax.set_title(title or f"GMM, K={len(weights)}, {params.covariance_type} covariances")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def save_image_panels(
    images: Any,
    path: str | Path,
    *,
    image_shape: tuple[int, ...],
    ncols: int = 10,
    signed: bool = False,
    titles: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """Writes flat images as a matplotlib figure of captioned panels (PNG).

    For plain pixel-exact sample grids use :func:`genjax.eval.save_image_grid`; this figure is
    for images that need a caption each or a signed colour map (principal directions, means).

    Args:
      images: ``(N, prod(image_shape))`` array; values in [0, 1] unless ``signed``.
      path: PNG file to write.
      image_shape: ``(H, W)`` or ``(H, W, C)`` of each image.
      ncols: images per row.
      signed: draw each image with a symmetric blue-white-red colour map around 0 (for
        directions such as principal components) instead of grey levels clipped to [0, 1].
      titles: optional caption per image.
      title: optional figure title.

    Returns:
      The written path.
    """
    images = np.asarray(images, np.float64)
    size = int(np.prod(image_shape))
    if images.ndim != 2 or images.shape[1] != size:
        raise ValueError(
            f"images must have shape (N, {size}) for image_shape {image_shape}, got {images.shape}"
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have {len(images)} entries, got {len(titles)}")
    plt = _pyplot()
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.2 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].reshape(image_shape)
        if signed:
            lim = max(np.abs(img).max(), 1e-12)
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        elif img.ndim == 3 and img.shape[-1] == 3:
            ax.imshow(np.clip(img, 0.0, 1.0))
        else:
            ax.imshow(
                np.clip(img.reshape(image_shape[:2]), 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0
            )
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
