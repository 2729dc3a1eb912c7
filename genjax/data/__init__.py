"""Datasets by name through tensorflow-datasets, read without TensorFlow; batches by step.

* :func:`load_dataset` - one split of a named dataset as an in-memory :class:`ArrayDataset`
  (``digits``, ``mnist``, ``fashion_mnist``, ``binarized_mnist``, ``cifar10``,
  ``tfds:<name>[:<version>]``; TFDS slicing such as ``"train[:90%]"``).
* :class:`BatchIterator` - the batch of a global step as a pure function of ``(seed, step)``:
  resumable at an exact step, sliced per process.
* :func:`preprocess` - integer pixels to model inputs under a named protocol (``unit``,
  ``symmetric``, ``binarize_dynamic``, ``binary``, ``dequantize``, ``integer``).
"""

from genjax.data.dataset import (
    ArrayDataset,
    available_datasets,
    clear_cache,
    default_data_dir,
    load_dataset,
)
from genjax.data.iterator import BatchIterator, epoch_permutation
from genjax.data.preprocess import PREPROCESS_MODES, preprocess
from genjax.data.sources import ChecksumError, DataUnavailableError

__all__ = [
    "PREPROCESS_MODES",
    "ArrayDataset",
    "BatchIterator",
    "ChecksumError",
    "DataUnavailableError",
    "available_datasets",
    "clear_cache",
    "default_data_dir",
    "epoch_permutation",
    "load_dataset",
    "preprocess",
]
