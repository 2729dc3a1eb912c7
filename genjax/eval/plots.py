"""Matplotlib figures: training curves and 2-D toy densities and samples.

Matplotlib is imported lazily, and only its object-oriented API is used
(``matplotlib.figure.Figure`` rendered by the Agg canvas): nothing touches ``pyplot``'s
global state or the user's backend, so these functions are safe in scripts, tests and
notebooks alike. Files are written atomically; the format follows the path's suffix
(``.png``, ``.pdf``, ``.svg``).
"""

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from genjax.eval._checks import as_float, as_numeric, feature_matrix, positive_int
from genjax.eval._io import atomic_write


def _figure(figsize=(6.0, 4.0)):
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    return Figure(figsize=figsize, dpi=120)


def _save(fig, path) -> Path:
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig.tight_layout()
    return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt))


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
