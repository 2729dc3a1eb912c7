"""2-D toy datasets generated in-process: ``ring``, ``grid`` and ``two_moons``.

Each split is a fixed sample drawn with numpy from a seed derived from the dataset and split
names, so the points are the same in every process and on every machine (numpy's PCG64 stream
and ``Generator.standard_normal`` / ``integers`` are covered by numpy's stream stability).

* ``ring``: the uniform mixture of 8 Gaussians on a circle of radius 2, std 0.02
  (Metz et al. 2017); labels are the component index (8 classes).
* ``grid``: the uniform mixture of 25 Gaussians at ``{-4, -2, 0, 2, 4}^2``, std 0.05
  (Srivastava et al. 2017); labels are the component index (25 classes).
* ``two_moons``: two interleaved half circles (radius 1, centres (0, 0) and (1, 0.5)) with
  isotropic Gaussian noise of std 0.05; labels are the moon (2 classes).

Splits: ``train`` (50,000 points), ``validation`` (10,000), ``test`` (10,000); TFDS slicing
(``"train[:1000]"``) works as for image datasets. The points are float32 ``(N, 2)``; the
:class:`~genjax.data.ArrayDataset` holding them has ``num_bits == 0`` (continuous data) and
takes the preprocessing mode ``"none"``.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

SPLIT_SIZES = {"train": 50_000, "validation": 10_000, "test": 10_000}
MOONS_NOISE = 0.05


def _positive(name: str, value, *, integer: bool = False):
    """``value`` if it is a number > 0 (an int when ``integer``), else a TypeError/ValueError."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    what = "an int >= 1" if integer else "a finite number > 0"
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value) if integer else float(value)


def ring_of_gaussians(num_modes: int = 8, radius: float = 2.0, std: float = 0.02):
    """Centres evenly spaced on a circle, the first at angle 0.

    Args:
      num_modes: number of components.
      radius: circle radius.
      std: per-coordinate standard deviation of every component.

    Returns:
      ``(centers, std)``: float64 ``(num_modes, 2)`` array and the float ``std``.

    References:
      Metz, Poole, Pfau & Sohl-Dickstein, "Unrolled Generative Adversarial Networks",
      ICLR 2017 (mixture of 8 Gaussians on a ring).
    """
    num_modes = _positive("num_modes", num_modes, integer=True)
    radius, std = _positive("radius", radius), _positive("std", std)
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std


def grid_of_gaussians(num_per_side: int = 5, spacing: float = 2.0, std: float = 0.05):
    """Centres on a square grid centred at the origin, row-major (x varies fastest).

    Args:
      num_per_side: components per side (5 gives 25 components).
      spacing: distance between neighbouring centres (2 gives {-4, -2, 0, 2, 4}^2).
      std: per-coordinate standard deviation of every component.

    Returns:
      ``(centers, std)``: float64 ``(num_per_side**2, 2)`` array and the float ``std``.

    References:
      Srivastava et al., "VEEGAN", NeurIPS 2017 (synthetic experiments: 2-D grid of 25
      Gaussians).
    """
    n = _positive("num_per_side", num_per_side, integer=True)
    spacing, std = _positive("spacing", spacing), _positive("std", std)
    axis = spacing * (np.arange(n) - (n - 1) / 2.0)
    gx, gy = np.meshgrid(axis, axis)
    return np.stack([gx.ravel(), gy.ravel()], axis=1), std


def _mixture_spec(name: str) -> tuple[np.ndarray, float]:
    if name == "ring":
        return ring_of_gaussians(8, radius=2.0, std=0.02)
    return grid_of_gaussians(5, spacing=2.0, std=0.05)


NUM_CLASSES = {"ring": 8, "grid": 25, "two_moons": 2}


def toy_centers(name: str) -> tuple[np.ndarray, float]:
    """``(centers, std)`` of the ``ring`` or ``grid`` mixture (for mode-coverage metrics)."""
    if name not in ("ring", "grid"):
        raise ValueError(f"toy_centers takes 'ring' or 'grid'; got {name!r}")
    return _mixture_spec(name)


def _seed(name: str, split: str) -> int:
    digest = hashlib.sha256(f"genjax-toy/{name}/{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def sample_toy(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``n`` points of the toy distribution ``name`` with numpy seed ``seed``.

    Returns:
      ``(points, labels)``: float32 ``(n, 2)`` and int32 ``(n,)`` (component or moon index).
    """
    if name not in NUM_CLASSES:
        raise ValueError(f"unknown toy dataset {name!r}; expected one of {sorted(NUM_CLASSES)}")
    rng = np.random.Generator(np.random.PCG64(seed))
    labels = rng.integers(0, NUM_CLASSES[name], size=n)
    noise = rng.standard_normal((n, 2))
    if name == "two_moons":
        t = np.pi * rng.random(n)
        upper = np.stack([np.cos(t), np.sin(t)], axis=1)
        lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
        points = np.where(labels[:, None] == 0, upper, lower) + MOONS_NOISE * noise
    else:
        centers, std = _mixture_spec(name)
        points = centers[labels] + std * noise
    return points.astype(np.float32), labels.astype(np.int32)


def load_toy_split(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All splits of toy dataset ``name``: ``{split: (points, labels)}``, read-only arrays."""
    out = {}
    for split, n in SPLIT_SIZES.items():
        points, labels = sample_toy(name, n, _seed(name, split))
        points.flags.writeable = False
        labels.flags.writeable = False
        out[split] = (points, labels)
    return out
