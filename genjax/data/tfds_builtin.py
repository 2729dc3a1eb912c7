"""TFDS's own builders (``cifar10``, ``tfds:<name>[:<version>]``), read without TensorFlow.

Reading needs data prepared in the ``array_record`` format: ``builder.as_data_source`` then
deserializes the records in Python and decodes ``tfds.features.Image`` (PNG/JPEG bytes) with
PIL, with no TensorFlow import. *Preparing* TFDS's built-in builders runs their TensorFlow
code (image encoding, and often the source parsing), so it needs TensorFlow
(``pip install genjax[tensorflow]``) once; afterwards the data reads anywhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from genjax.data.sources import DataUnavailableError

TFDS_PREFIX = "tfds:"


def tensorflow_available() -> bool:
    """Whether ``import tensorflow`` would succeed (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def _manual_files_text(builder) -> str:
    infos = getattr(builder, "url_infos", None) or {}
    lines = []
    for url, info in sorted(infos.items()):
        name = info.filename or url.rsplit("/", 1)[-1]
        lines.append(f"  {name}  sha256 {info.checksum}  (from {url})")
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        lines.append(
            "TFDS's instructions: " + " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
        )
    if not lines:
        return "TFDS lists no source files for it (see its catalog page)."
    return "For offline preparation TFDS takes these files from manual_dir:\n" + "\n".join(lines)


def image_spec(builder) -> tuple[tuple[int, int, int], str | None, int | None]:
    """Checks that ``builder`` holds uint8 images; returns (shape, label key, classes).

    Height and width may be declared variable (``None``, e.g. ``cycle_gan/*``, whose images
    are all 256x256): the shape is then ``(None, None, C)`` and reading the split checks that
    every image has the first image's size.

    Raises:
      ValueError: no ``"image"`` feature, an unknown channel count, a dtype other than uint8 or
        a channel count other than 1 or 3.
    """
    features = builder.info.features
    name = builder.name
    if "image" not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has no 'image' feature (features: {list(features.keys())}); "
            "genjax reads image datasets with keys 'image' and optionally 'label'"
        )
    feature = features["image"]
    shape = tuple(feature.shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(
            f"TFDS dataset {name!r}: images must have shape (H, W, 1 or 3); "
            f"got {tuple(feature.shape)}"
        )
    if np.dtype(feature.np_dtype) != np.uint8:
        raise ValueError(f"TFDS dataset {name!r}: images must be uint8; got {feature.np_dtype}")
    label_key = "label" if "label" in features else None
    num_classes = None
    if label_key is not None:
        num_classes = getattr(features["label"], "num_classes", None)
    return shape, label_key, num_classes


def builtin_builder(
    spec: str, *, data_dir: str, manual_dir: str | None, download: bool
) -> tfds.core.DatasetBuilder:
    """A prepared (array_record) TFDS builder for ``spec`` (``"cifar10"``, ``"mnist:3.0.1"``).

    Prepares it when needed and possible (TensorFlow installed).

    Raises:
      ValueError: TFDS knows no such dataset, or it is not an image dataset genjax can read.
      DataUnavailableError: it is not prepared and cannot be (no TensorFlow, or
        ``download=False`` without the files in ``manual_dir``), or it is prepared only as
        tfrecord; the message says what to do.
    """
    try:
        builder = tfds.builder(spec, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(f"TFDS knows no dataset {spec!r}: {str(err).splitlines()[0]}") from err
    where = builder.data_dir
    if builder.is_prepared():
        formats = {f.value for f in builder.info.available_file_formats()}
        if "array_record" not in formats:
            raise DataUnavailableError(
                f"TFDS dataset {spec!r} is prepared in {where} only as {sorted(formats)}, which "
                "needs TensorFlow to read. Convert it once (TensorFlow needed for that step: "
                "pip install genjax[tensorflow]):\n"
                f"  tfds convert_format --dataset_version_dir={where} --out_file_format=array_record\n"
                "or delete that folder and let genjax prepare it as array_record."
            )
        image_spec(builder)
        return builder
    image_spec(builder)
    files = _manual_files_text(builder)
    if not tensorflow_available():
        raise DataUnavailableError(
            f"TFDS dataset {spec!r} is not prepared in {where}, and preparing TFDS's own "
            "builders needs TensorFlow, which is not installed: pip install genjax[tensorflow] "
            "(or prepare it on a machine with TensorFlow with file_format='array_record' and "
            f"copy the folder here; reading it then needs no TensorFlow).\n{files}"
        )
    infos = getattr(builder, "url_infos", None) or {}
    if not download:
        names = [info.filename for info in infos.values() if info.filename]
        present = manual_dir is not None and all(
            (Path(manual_dir).expanduser() / n).exists() for n in names
        )
        if not present:
            raise DataUnavailableError(
                f"TFDS dataset {spec!r} is not prepared in {where} and download=False.\n{files}"
            )
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder = tfds.builder(spec, data_dir=data_dir, file_format="array_record")
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress to standard output
        builder.download_and_prepare(download_config=config)
    return builder
