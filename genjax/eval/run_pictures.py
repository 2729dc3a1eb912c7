"""Pictures of a run drawn from what it logged and what its method exposes.

* :func:`write_loss_curves` - the training losses logged so far (``<workdir>/metrics.jsonl``,
  written by :class:`genjax.train.metrics.MetricWriter`) against the step;
* :func:`write_point_samples` - 2-D model samples against the data, with the mixture's centres
  where the dataset is a toy mixture with known modes (the picture of mode coverage);
* :func:`write_latent_pictures` - a grid of image samples and strips of images decoded along
  straight lines between pairs of prior latents (a latent-variable sampler such as a GAN's).

Each writes one picture named by :func:`genjax.eval.images.picture_path` into the run's
pictures folder (``<workdir>/pictures``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from genjax.data.toy import toy_centers
from genjax.eval.images import picture_path, save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.plots import plot_logged_curves, plot_points_2d
from genjax.eval.sample_protocols import TOY_MIXTURES
from genjax.train.metrics import read_metrics


def write_loss_curves(outdir, step: int, names: Sequence[str], *, title: str, ylabel: str,
                      workdir=None) -> list[Path]:
    """Draws the logged training metrics ``names`` against the step as
    ``<outdir>/loss_curves_<step>.png``.

    Args:
      outdir: the run's pictures folder.
      step: the step the picture is written at (its file name).
      names: metric names as logged (e.g. ``"generator/loss"``); one with fewer than two
        logged points is left out.
      title, ylabel: the figure's title and y-axis label (say the unit).
      workdir: the run folder holding ``metrics.jsonl``; default: ``outdir``'s parent.

    Returns:
      ``[path]``, or ``[]`` when no metric has two logged points yet (nothing is drawn).
    """
    outdir = Path(outdir)
    rows = read_metrics(outdir.parent if workdir is None else workdir, split="train")
    path = plot_logged_curves(picture_path(outdir, "loss_curves", step), rows, names,
                              title=title, ylabel=ylabel)
    return [] if path is None else [path]


def write_point_samples(outdir, step: int, data: np.ndarray, samples: np.ndarray, *,
                        dataset: str, title: str) -> Path:
    """Scatter of 2-D ``samples`` (``"model"``) over ``data`` (``"data"``) as
    ``<outdir>/samples_<step>.png``; the centres of ``dataset``'s mixture (``ring``, ``grid``)
    drawn as crosses. The view is the data's bounding box padded by a quarter of its size."""
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 2 or np.shape(samples)[1:] != (2,):
        raise ValueError(f"data and samples must be 2-D points (N, 2); got {data.shape} and "
                         f"{np.shape(samples)}")
    centers = toy_centers(dataset)[0] if dataset in TOY_MIXTURES else None
    lo, hi = data.min(axis=0), data.max(axis=0)
    pad = 0.25 * (hi - lo)
    path = picture_path(outdir, "samples", step)
    return plot_points_2d(path, {"data": data, "model": np.asarray(samples)}, centers=centers,
                          xlim=(lo[0] - pad[0], hi[0] + pad[0]),
                          ylim=(lo[1] - pad[1], hi[1] + pad[1]), title=title)


def write_latent_pictures(outdir, step: int, *, sample: Callable, decode: Callable,
                          latent_dim: int, key, num_samples: int,
                          num_classes: int = 0) -> list[Path]:
    """A sample grid ``<outdir>/samples_<step>.png`` and latent interpolation strips
    ``<outdir>/interpolation_<step>.png`` of a sampler with a standard-normal prior.

    The grid holds ``sample(key, num_samples)``. The strips: 4 rows, row ``r`` the images
    ``decode(z, labels)`` of 10 evenly spaced latents on the straight line from ``z_{2r}`` to
    ``z_{2r+1}`` (both ends included), where ``z_0 .. z_7 ~ N(0, I)`` are drawn with
    ``fold_in(key, 1)``; with ``num_classes`` every latent of row ``r`` gets the class
    ``r % num_classes``, else ``labels`` is ``None``.

    Args:
      outdir: the run's pictures folder.
      step: the step the pictures are written at (their file names).
      sample: ``(key, num) -> images`` in ``[0, 1]``, ``(num, H, W, C)``.
      decode: ``(z, labels) -> images`` in ``[0, 1]`` for latents ``z`` ``(N, latent_dim)``
        and classes ``labels`` ``(N,)`` or ``None``.
      latent_dim: the dimension of the prior's latents.
      key: the pictures' random key.
      num_samples: images in the sample grid.
      num_classes: classes of a conditional sampler; 0: unconditional.

    Returns:
      ``[samples path, interpolation path]``.
    """
    samples = picture_path(outdir, "samples", step)
    save_image_grid(samples, sample(key, num_samples))
    z_ends = jax.random.normal(jax.random.fold_in(key, 1), (8, latent_dim))
    rows = []
    for a in range(0, 8, 2):
        labels = np.full((10,), a // 2 % num_classes) if num_classes else None
        rows.append(decode(interpolate_latents(z_ends[a], z_ends[a + 1], 10), labels))
    strips = picture_path(outdir, "interpolation", step)
    save_interpolation_grid(strips, rows)
    return [samples, strips]
