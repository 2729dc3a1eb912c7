"""Matplotlib figures: training curves, 2-D toy densities and samples, Gaussian ellipses and
captioned image panels.

Matplotlib is imported lazily, and only its object-oriented API is used
(``matplotlib.figure.Figure`` rendered by the Agg canvas): nothing imports matplotlib's
state-machine interface, touches its global figures or changes the user's backend, so these
functions are safe in scripts, tests and notebooks alike (genjax's only plotting stack). Files are written atomically; the format follows the path's suffix
(``.png``, ``.pdf``, ``.svg``).
"""

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from genjax.eval._checks import as_float, as_numeric, feature_matrix, positive_int
from genjax.eval._io import atomic_write


def _figure(figsize=(6.0, 4.0), dpi: int = 120):
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    return Figure(figsize=figsize, dpi=dpi)


def _save(fig, path, *, tight_layout: bool = True, **savefig_options) -> Path:
    """Writes ``fig`` atomically in the format of ``path``'s suffix; ``savefig_options`` go to
    ``Figure.savefig`` (e.g. ``dpi``, ``bbox_inches="tight"``)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if tight_layout:
        fig.tight_layout()
    return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, **savefig_options))


def _limits(name: str, value) -> tuple[float, float] | None:
    if value is None:
        return None
    lim = as_float(name, value, ndim=1, what="(low, high)")
    if lim.shape != (2,) or not lim[0] < lim[1]:
        raise ValueError(f"{name} must be (low, high) with low < high, got {value!r}")
    return float(lim[0]), float(lim[1])


def plot_curves(
    path,
    series: Mapping[str, tuple],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    logy: bool = False,
) -> Path:
    """Line plot of named curves (losses, metrics) against training steps.

    Args:
      path: destination file (``.png``, ``.pdf`` or ``.svg``).
      series: ``{label: (steps, values)}`` with 1-D arrays of equal length. NaN or
        infinite values are drawn as gaps, so a diverged run stays visible.
      title: figure title.
      xlabel: x-axis label.
      ylabel: y-axis label; state the unit (e.g. "nats per example", "bits/dim").
      logy: logarithmic y axis; every finite value must then be > 0.

    Returns:
      The written path.
    """
    if not isinstance(series, Mapping) or not series:
        raise ValueError(
            f"series must be a non-empty mapping label -> (steps, values), got {series!r}"
        )
    curves = []
    for label, pair in series.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(
                f"series[{label!r}] must be a pair (steps, values), got {type(pair).__name__}"
            )
        steps = as_float(f"series[{label!r}] steps", pair[0], ndim=1)
        values = as_numeric(f"series[{label!r}] values", pair[1]).astype(np.float64)
        if values.ndim != 1 or values.shape != steps.shape:
            raise ValueError(
                f"series[{label!r}] values must be 1-D with the length of its steps "
                f"({steps.shape[0]}), got shape {values.shape}"
            )
        if logy and (values[np.isfinite(values)] <= 0).any():
            raise ValueError(f"series[{label!r}] has values <= 0, which logy=True cannot show")
        curves.append((str(label), steps, values))
    fig = _figure()
    ax = fig.add_subplot()
    for label, steps, values in curves:
        ax.plot(steps, np.where(np.isfinite(values), values, np.nan), label=label, lw=1.2)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_logged_curves(path, rows, names, *, title: str = "", ylabel: str = "") -> Path | None:
    """:func:`plot_curves` of the metrics ``names`` from logged rows (``metrics.jsonl``'s dicts
    with a ``"step"``); a metric with fewer than two points is left out, and with none left
    nothing is drawn (``None``)."""
    series = {}
    for name in names:
        pts = [(r["step"], r[name]) for r in rows if name in r]
        if len(pts) >= 2:
            series[name] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    if not series:
        return None
    return plot_curves(path, series, title=title, ylabel=ylabel)


def plot_density_2d(
    path,
    log_density_fn: Callable,
    *,
    xlim,
    ylim,
    samples=None,
    resolution: int = 200,
    title: str = "",
) -> Path:
    """Heat map of a 2-D density ``exp(log_density_fn(x))`` on a regular grid.

    Args:
      path: destination file.
      log_density_fn: maps an ``(n, 2)`` float32 array to ``(n,)`` log-densities in nats
        (``-inf`` allowed, NaN not); called once on all ``resolution**2`` grid points.
      xlim: ``(low, high)`` of the first coordinate.
      ylim: ``(low, high)`` of the second coordinate.
      samples: optional ``(m, 2)`` points drawn on top (e.g. model samples).
      resolution: grid points per axis.
      title: figure title.

    Returns:
      The written path.
    """
    if not callable(log_density_fn):
        raise TypeError(f"log_density_fn must be callable, got {type(log_density_fn).__name__}")
    (x0, x1), (y0, y1) = _limits("xlim", xlim), _limits("ylim", ylim)
    resolution = positive_int("resolution", resolution)
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    logp = np.asarray(log_density_fn(points), dtype=np.float64)
    if logp.shape != (points.shape[0],):
        raise ValueError(
            f"log_density_fn must return shape ({points.shape[0]},) for ({points.shape[0]}, 2) "
            f"points, got shape {logp.shape}"
        )
    if np.isnan(logp).any() or (logp == np.inf).any():
        raise ValueError("log_density_fn returned NaN or +inf log-densities")
    fig = _figure((5.0, 5.0))
    ax = fig.add_subplot()
    image = ax.imshow(
        np.exp(logp).reshape(resolution, resolution),
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap="viridis",
        aspect="auto",
    )
    fig.colorbar(image, ax=ax, label="density")
    if samples is not None:
        pts = feature_matrix("samples", samples)
        if pts.shape[1] != 2:
            raise ValueError(f"samples must have shape (m, 2), got {pts.shape}")
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="white", alpha=0.5, linewidths=0)
    ax.set(title=title, xlim=(x0, x1), ylim=(y0, y1))
    return _save(fig, path)


def plot_points_2d(
    path,
    points,
    *,
    centers=None,
    xlim=None,
    ylim=None,
    title: str = "",
    marker_size: float = 2.0,
) -> Path:
    """Scatter plot of 2-D points, e.g. GAN samples on the ring or grid toy mixtures.

    Args:
      path: destination file.
      points: ``(n, 2)`` array, or ``{label: (n_i, 2) array}`` to overlay several sets
        (e.g. ``{"data": real, "model": fake}``).
      centers: optional ``(k, 2)`` mixture centres, drawn as red crosses.
      xlim: optional ``(low, high)``; default fits the data.
      ylim: optional ``(low, high)``.
      title: figure title.
      marker_size: scatter marker area in points^2.

    Returns:
      The written path.
    """
    sets = dict(points) if isinstance(points, Mapping) else {"": points}
    if not sets:
        raise ValueError("points must hold at least one set of points, got an empty mapping")
    checked = {}
    for label, pts in sets.items():
        name = f"points[{label!r}]" if label else "points"
        arr = feature_matrix(name, pts)
        if arr.shape[1] != 2:
            raise ValueError(f"{name} must have shape (n, 2), got {arr.shape}")
        checked[label] = arr
    fig = _figure((5.0, 5.0))
    ax = fig.add_subplot()
    for label, arr in checked.items():
        ax.scatter(
            arr[:, 0], arr[:, 1], s=marker_size, alpha=0.6, linewidths=0, label=label or None
        )
    if centers is not None:
        c = feature_matrix("centers", centers)
        if c.shape[1] != 2:
            raise ValueError(f"centers must have shape (k, 2), got {c.shape}")
        ax.scatter(c[:, 0], c[:, 1], marker="x", c="red", s=30, label="centres")
    if len(checked) > 1 or centers is not None:
        ax.legend(markerscale=3)
    ax.set_aspect("equal")
    ax.set(title=title)
    if (lim := _limits("xlim", xlim)) is not None:
        ax.set_xlim(lim)
    if (lim := _limits("ylim", ylim)) is not None:
        ax.set_ylim(lim)
    return _save(fig, path)


def plot_gaussian_ellipses(
    path,
    points,
    *,
    means,
    covariances,
    weights,
    num_std: tuple[float, ...] = (1.0, 2.0),
    labels=None,
    title: str = "",
) -> Path:
    """Scatter of 2-D data with each Gaussian drawn as its ellipses at ``num_std`` deviations.

    The ellipse of component k at ``s`` standard deviations has its axes along the eigenvectors
    of Sigma_k with half-lengths ``s sqrt(eigenvalue)``; its line width grows with the weight
    pi_k, printed beside the mean (a black cross). Used for Gaussian mixtures fitted by EM.

    Args:
      path: destination file.
      points: ``(n, 2)`` data.
      means: ``(k, 2)`` component means.
      covariances: ``(k, 2, 2)`` symmetric positive-definite covariance matrices.
      weights: ``(k,)`` mixing weights.
      num_std: radii of the ellipses drawn per component, in standard deviations (the first
        drawn opaque, the others half transparent).
      labels: optional ``(n,)`` integer labels colouring the points.
      title: figure title.

    Returns:
      The written path.
    """
    x = feature_matrix("points", points)
    if x.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {x.shape}")
    mu = feature_matrix("means", means)
    k = mu.shape[0]
    if mu.shape[1] != 2:
        raise ValueError(f"means must have shape (k, 2), got {mu.shape}")
    cov = as_float("covariances", covariances, ndim=3, what="(k, 2, 2)").astype(np.float64)
    if cov.shape != (k, 2, 2):
        raise ValueError(f"covariances must have shape ({k}, 2, 2) for {k} means, got {cov.shape}")
    w = as_float("weights", weights, ndim=1)
    if w.shape != (k,):
        raise ValueError(f"weights must have shape ({k},) for {k} means, got {w.shape}")
    radii = tuple(float(s) for s in num_std)
    if not radii or min(radii) <= 0:
        raise ValueError(f"num_std must hold at least one radius > 0, got {num_std!r}")
    if labels is not None:
        labels = as_numeric("labels", labels)
        if labels.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    from matplotlib.patches import Ellipse

    fig = _figure((6.0, 6.0))
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, color="C0")
    else:
        ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, c=labels, cmap="tab10")
    for weight, mean, sigma in zip(w, mu, cov, strict=True):
        vals, vecs = np.linalg.eigh(sigma)
        if vals[0] <= 0:
            raise ValueError(f"covariances must be positive definite, got eigenvalues {vals}")
        angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
        for s in radii:
            ax.add_patch(Ellipse(mean, 2 * s * math.sqrt(vals[1]), 2 * s * math.sqrt(vals[0]),
                                 angle=angle, fill=False, color="C3", lw=0.8 + 4.0 * weight,
                                 alpha=1.0 if s == radii[0] else 0.5))
        ax.plot(*mean, "k+", ms=10)
        ax.annotate(f"{weight:.2f}", mean, textcoords="offset points", xytext=(4, 4))
    ax.set_aspect("equal")
    ax.set_title(title)
    return _save(fig, path, tight_layout=False, dpi=120, bbox_inches="tight")


def plot_image_panels(
    path,
    images,
    *,
    image_shape: tuple[int, ...],
    ncols: int = 10,
    signed: bool = False,
    titles=None,
    title: str = "",
) -> Path:
    """Flat images as a figure of captioned panels.

    For plain pixel-exact sample grids use :func:`genjax.eval.images.save_image_grid`; this
    figure is for images that need a caption each or a signed colour map (principal directions,
    mixture means, decoder columns).

    Args:
      path: destination file.
      images: ``(n, prod(image_shape))`` array; values in [0, 1] (clipped) unless ``signed``.
      image_shape: ``(H, W)`` or ``(H, W, C)`` of each image, ``C`` in {1, 3}.
      ncols: panels per row (fewer when there are fewer images).
      signed: draw each image with a symmetric blue-white-red colour map around 0 (for
        directions such as principal components) instead of grey levels.
      titles: optional caption per image.
      title: figure title.

    Returns:
      The written path.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1 or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) with C in {{1, 3}}, "
                         f"got {image_shape!r}")
    size = int(np.prod(shape))
    flat = as_float("images", images, ndim=2, what=f"(n, {size})").astype(np.float64)
    if flat.shape[1] != size or flat.shape[0] < 1:
        raise ValueError(
            f"images must have shape (n, {size}) for image_shape {shape}, got {flat.shape}"
        )
    n = flat.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have {n} entries, got {len(titles)}")
    ncols = max(1, min(positive_int("ncols", ncols), n))
    nrows = math.ceil(n / ncols)
    fig = _figure((1.2 * ncols, 1.2 * nrows + 0.4), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = flat[i].reshape(shape)
        if signed:
            lim = max(np.abs(img).max(), 1e-12)
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        elif img.ndim == 3 and img.shape[-1] == 3:
            ax.imshow(np.clip(img, 0.0, 1.0))
        else:
            ax.imshow(np.clip(img.reshape(shape[:2]), 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path, tight_layout=False, dpi=100, bbox_inches="tight")
