"""Image grids written as PNG with Pillow (no matplotlib).

Every method writes its samples, reconstructions and interpolations through these
functions. Images are ``(B, H, W, C)`` with ``C`` in {1, 3} (``(B, H, W)`` is read as
single-channel), either floats in ``[0, 1]`` or ``uint8`` in ``[0, 255]``. Models that work
in ``[-1, 1]`` map back with ``(x + 1) / 2`` before calling; values outside ``[0, 1]`` are
refused rather than silently clipped, so a wrong preprocessing convention cannot hide.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from genjax.eval._checks import as_numeric, positive_int
from genjax.eval._io import atomic_write

MIN_PNG_WIDTH = 256
"""``save_image_grid`` upscales small grids (e.g. 8x8 digits) to at least this many pixels."""


def picture_path(outdir, kind: str, step: int, *, suffix: str = ".png") -> Path:
    """``<outdir>/<kind>_<step as 8 digits><suffix>``, the name of every picture a run writes:
    a kind's pictures sort by step, and TensorBoard gets them as one image tag per kind."""
    if not kind or "/" in kind:
        raise ValueError(f"kind must be a non-empty file-name part, got {kind!r}")
    return Path(outdir) / f"{kind}_{int(step):08d}{suffix}"


def _as_uint8_images(name: str, images) -> np.ndarray:
    """Validates an image batch and returns it as ``uint8`` ``(B, H, W, C)``."""
    arr = as_numeric(name, images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape (B, H, W, C) with C in {{1, 3}} or (B, H, W), "
            f"got shape {arr.shape}"
        )
    if 0 in arr.shape:
        raise ValueError(f"{name} must hold at least one non-empty image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"{name} must be floats in [0, 1] or uint8 in [0, 255], got dtype {arr.dtype}"
        )
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN values ({int(np.isnan(arr).sum())} of {arr.size})")
    low, high = float(arr.min()), float(arr.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must be floats in [0, 1], got values in [{low:.4g}, {high:.4g}] "
            "(map [-1, 1] images with (x + 1) / 2 first)"
        )
    return np.floor(arr.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)


def _pad_value_uint8(pad_value) -> int:
    if isinstance(pad_value, bool) or not isinstance(pad_value, int | float | np.number):
        raise TypeError(f"pad_value must be a number in [0, 1], got {pad_value!r}")
    if not 0.0 <= float(pad_value) <= 1.0:
        raise ValueError(f"pad_value must be in [0, 1], got {pad_value!r}")
    return int(math.floor(float(pad_value) * 255.0 + 0.5))


def image_grid(images, *, nrow: int | None = None, padding: int = 1, pad_value: float = 1.0):
    """Tiles a batch of images into one ``uint8`` picture.

    Image ``i`` goes to row ``i // nrow`` and column ``i % nrow``; every image is
    surrounded by ``padding`` pixels of ``pad_value`` (also along the outer border), so
    image ``(r, c)`` starts at pixel ``(padding + r * (H + padding),
    padding + c * (W + padding))``. Unused cells of the last row keep the pad colour.

    Args:
      images: ``(B, H, W, C)`` with ``C`` in {1, 3}, or ``(B, H, W)``; floats in ``[0, 1]``
        (mapped to ``uint8`` by ``floor(255 x + 0.5)``) or ``uint8``.
      nrow: images per row (the torchvision convention); default ``ceil(sqrt(B))``.
      padding: pixels between images and around the grid, ``>= 0``.
      pad_value: grey level of the padding in ``[0, 1]`` (1 is white).

    Returns:
      ``uint8`` array ``(rows * (H + padding) + padding, nrow * (W + padding) + padding, C)``.

    Raises:
      ValueError: wrong shape, dtype, NaN values or values outside ``[0, 1]``.
    """
    x = _as_uint8_images("images", images)
    b, h, w, c = x.shape
    ncol = math.ceil(math.sqrt(b)) if nrow is None else positive_int("nrow", nrow)
    ncol = min(ncol, b)
    if isinstance(padding, bool) or not isinstance(padding, int | np.integer) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    p = int(padding)
    rows = math.ceil(b / ncol)
    grid = np.full(
        (rows * (h + p) + p, ncol * (w + p) + p, c), _pad_value_uint8(pad_value), dtype=np.uint8
    )
    for i in range(b):
        r, col = divmod(i, ncol)
        top, left = p + r * (h + p), p + col * (w + p)
        grid[top : top + h, left : left + w] = x[i]
    return grid


def _write_png(path, grid: np.ndarray, scale: int | None) -> Path:
    if scale is None:
        scale = max(1, math.ceil(MIN_PNG_WIDTH / grid.shape[1]))
    scale = positive_int("scale", scale)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    # A 2-D uint8 array becomes mode "L", an (H, W, 3) uint8 array mode "RGB".
    picture = Image.fromarray(np.ascontiguousarray(grid[..., 0] if grid.shape[-1] == 1 else grid))
    return atomic_write(path, lambda handle: picture.save(handle, format="PNG"))


def save_image_grid(
    path,
    images,
    *,
    nrow: int | None = None,
    scale: int | None = None,
    padding: int = 1,
    pad_value: float = 1.0,
) -> Path:
    """Writes ``image_grid(images, ...)`` as a PNG file, atomically.

    Args:
      path: destination ``.png``; parent folders are created.
      images: as for ``image_grid``.
      nrow: images per row; default ``ceil(sqrt(B))``.
      scale: integer nearest-neighbour upscaling factor; default the smallest factor
        that makes the PNG at least ``MIN_PNG_WIDTH`` (256) pixels wide, so 8x8 digits
        stay legible. Pass 1 to keep the native size.
      padding: pixels between images (before scaling).
      pad_value: grey level of the padding in ``[0, 1]``.

    Returns:
      The written path. Grey images are saved in mode ``L``, colour images in ``RGB``.
    """
    grid = image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    return _write_png(path, grid, scale)


def save_interpolation_grid(
    path,
    rows_of_images,
    *,
    scale: int | None = None,
    padding: int = 1,
    pad_value: float = 1.0,
) -> Path:
    """Writes latent interpolations as a PNG, one row per interpolation path.

    Args:
      path: destination ``.png``.
      rows_of_images: a sequence of ``(S, H, W, C)`` (or ``(S, H, W)``) arrays, all of the
        same shape, each the decoded images along one path from ``z1`` (left) to ``z2``
        (right), e.g. decoded ``interpolate_latents(z1, z2, S)``; or one ``(R, S, H, W, C)``
        array.
      scale: as for ``save_image_grid``.
      padding: pixels between images.
      pad_value: grey level of the padding in ``[0, 1]``.

    Returns:
      The written path.
    """
    if isinstance(rows_of_images, Sequence) and not isinstance(rows_of_images, str | bytes):
        if len(rows_of_images) == 0:
            raise ValueError("rows_of_images must hold at least one row, got an empty sequence")
        rows = [as_numeric(f"rows_of_images[{i}]", r) for i, r in enumerate(rows_of_images)]
        for i, r in enumerate(rows):
            if r.shape != rows[0].shape:
                raise ValueError(
                    f"rows_of_images[{i}] must have the shape of rows_of_images[0] "
                    f"{rows[0].shape}, got {r.shape}"
                )
        stacked = np.stack(rows)
    else:
        stacked = as_numeric("rows_of_images", rows_of_images)
    if stacked.ndim not in (4, 5):
        raise ValueError(
            "rows_of_images must be rows of (S, H, W[, C]) images, i.e. shape "
            f"(R, S, H, W[, C]), got shape {stacked.shape}"
        )
    num_steps = stacked.shape[1]
    flat = stacked.reshape((-1,) + stacked.shape[2:])
    return save_image_grid(
        path, flat, nrow=num_steps, scale=scale, padding=padding, pad_value=pad_value
    )
