"""The in-memory split every loader returns (:class:`ArrayDataset`), checked on construction."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ArrayDataset:
    """One split of an image dataset (or of a continuous point dataset), held in memory.

    Attributes:
      name: the dataset name given to :func:`load_dataset`.
      split: the split spec given to :func:`load_dataset` (may contain TFDS slicing).
      images: uint8 ``(N, H, W, C)`` with ``C`` in ``{1, 3}``; or, for continuous data such as
        the 2-D toy datasets, float32 points ``(N, D)``.
      labels: int32 ``(N,)``, or ``None`` for unlabelled data.
      num_bits: bits per pixel value: 8 (values 0..255) or 1 (binary data, values 0/1); 0 for
        continuous float32 points.
      num_classes: number of label classes, or ``None``.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray | None
    num_bits: int
    num_classes: int | None

    def __post_init__(self):
        images = self.images
        if self.is_continuous:
            if images.ndim != 2:
                raise ValueError(
                    "images must be uint8 images (N, H, W, C) or float32 points (N, D); got "
                    f"float32 {images.shape}"
                )
            if self.num_bits != 0:
                raise ValueError(f"continuous points take num_bits=0; got {self.num_bits}")
            if not np.all(np.isfinite(images)):
                raise ValueError("points contain NaN or infinite values")
        else:
            if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    "images must be a uint8 numpy array (N, H, W, C) or float32 points (N, D); "
                    f"got {type(images).__name__} {getattr(images, 'dtype', '')} "
                    f"{getattr(images, 'shape', '')}"
                )
            if images.shape[-1] not in (1, 3):
                raise ValueError(f"images must have 1 or 3 channels; got shape {images.shape}")
            if self.num_bits not in range(1, 9):
                raise ValueError(f"num_bits must be in 1..8 for uint8 images; got {self.num_bits}")
        if self.labels is not None:
            labels = self.labels
            if not isinstance(labels, np.ndarray) or labels.dtype != np.int32:
                raise ValueError(
                    f"labels must be an int32 numpy array or None; got "
                    f"{type(labels).__name__} {getattr(labels, 'dtype', '')}"
                )
            if labels.shape != (len(images),):
                raise ValueError(f"labels must have shape ({len(images)},); got {labels.shape}")

    @property
    def is_continuous(self) -> bool:
        """True for float32 points ``(N, D)`` (``num_bits == 0``), False for uint8 images."""
        return isinstance(self.images, np.ndarray) and self.images.dtype == np.float32

    def __repr__(self) -> str:
        labels = "None" if self.labels is None else f"int32{tuple(self.labels.shape)}"
        return (
            f"ArrayDataset(name={self.name!r}, split={self.split!r}, "
            f"images={self.images.dtype}{tuple(self.images.shape)}, labels={labels}, "
            f"num_bits={self.num_bits}, num_classes={self.num_classes})"
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """``(H, W, C)`` of one image, or ``(D,)`` of one point."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)
