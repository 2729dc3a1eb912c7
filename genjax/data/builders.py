"""genjax's own TFDS builders: digits, MNIST, Fashion-MNIST and binarized MNIST.

Their features are ``tfds.features.Tensor`` (raw uint8 pixels, int64 labels), so preparing them
(``file_format="array_record"``) and reading them (``builder.as_data_source``) needs no
TensorFlow. Each builder keeps the original example order (``disable_shuffling``) and records in
its metadata the SHA-256 of every split's content (:func:`content_sha256`) and of its source
files, so that a reader can tell intact prepared data from corrupt data.

The TFDS names are prefixed (``genjax_mnist``, ...) so they never clash with TFDS's own
``mnist``; the data lives in ``<data_dir>/genjax_<name>/<version>/``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from genjax.data import formats, sources

DIGITS_TEST_PER_CLASS = 30
DIGITS_SPLIT_SEED = 0


def content_sha256(images: np.ndarray, labels: np.ndarray | None) -> str:
    """SHA-256 of a split's content: uint8 image bytes, then little-endian int32 label bytes."""
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype="<i4").tobytes())
    return h.hexdigest()


def digits_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's 8x8 digits as 8-bit images, with genjax's fixed stratified split.

    The 1797 images (UCI optdigits test set) hold counts ``0..16`` of set pixels per 4x4 block;
    they are stored as ``floor(v * 255 / 16 + 0.5)``, i.e. ``v * 255 / 16`` rounded to the
    nearest integer (only ``v = 8`` falls on a half: 127.5 -> 128), so 0 -> 0 and 16 -> 255.
    Split: for each class ``c`` the test set takes the first 30 of that class's examples in the
    order ``argsort`` of ``PCG64(SeedSequence((0, c))).random_raw(n_c)`` (stable across numpy
    versions): 300 test examples (30 per class), 1497 train examples; both keep the original
    order of ``sklearn.datasets.load_digits``.

    Returns:
      ``{"train": (images, labels), "test": (images, labels)}``: uint8 ``(n, 8, 8, 1)``, int32.
    """
    import sklearn.datasets  # local: only needed to prepare

    bunch = sklearn.datasets.load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)
    images = np.floor(values * 255.0 / 16.0 + 0.5).astype(np.uint8)[..., None]
    labels = np.asarray(bunch.target, dtype=np.int32)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        bits = np.random.PCG64(np.random.SeedSequence((DIGITS_SPLIT_SEED, c))).random_raw(
            len(members)
        )
        chosen = members[np.argsort(bits, kind="stable")[:DIGITS_TEST_PER_CLASS]]
        is_test[chosen] = True
    return {
        "train": (images[~is_test], labels[~is_test]),
        "test": (images[is_test], labels[is_test]),
    }


class GenjaxBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of genjax's builders: arrays in memory -> array_record files, order kept.

    Args (keyword, besides TFDS's ``data_dir`` and ``file_format``):
      manual_dir: folder holding the original files (the only source when given).
      allow_download: whether missing original files may be downloaded.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First genjax release."}
    IMAGE_SHAPE: tuple[int, int, int] = (28, 28, 1)
    HAS_LABELS = True
    NUM_BITS = 8
    NUM_CLASSES: int | None = 10
    SOURCE_NAME: str | None = None  # key of sources.EXPECTED_SHA256
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    def __init__(self, *, manual_dir=None, allow_download: bool = True, **kwargs):
        self._manual_dir_arg = None if manual_dir is None else Path(manual_dir).expanduser()
        self._allow_download = bool(allow_download)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8)}
        if self.HAS_LABELS:
            features["label"] = tfds.features.Tensor(shape=(), dtype=np.int64)
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def split_arrays(
        self, paths: dict[str, Path]
    ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{split: (uint8 images, int32 labels or None)}`` from the verified source files."""
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        paths: dict[str, Path] = {}
        if self.SOURCE_NAME is not None:
            paths = sources.locate_sources(
                self.SOURCE_NAME,
                dl_manager,
                manual_dir=self._manual_dir_arg,
                allow_download=self._allow_download,
            )
            self.info.metadata["source_sha256"] = {
                name: sources.EXPECTED_SHA256[self.SOURCE_NAME][name] for name in paths
            }
        arrays = self.split_arrays(paths)
        self.info.metadata["content_sha256"] = {
            split: content_sha256(images, labels) for split, (images, labels) in arrays.items()
        }
        return {split: self._generate_examples(*pair) for split, pair in arrays.items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray | None):
        for i in range(len(images)):
            example = {"image": images[i]}
            if labels is not None:
                example["label"] = int(labels[i])
            yield i, example


class GenjaxDigits(GenjaxBuilder):
    """scikit-learn's 8x8 handwritten digits, 8-bit (see :func:`digits_arrays`)."""

    IMAGE_SHAPE = (8, 8, 1)
    DESCRIPTION = (
        "scikit-learn's 8x8 digits (UCI optdigits), values 0..16 scaled to 0..255 by "
        "round(v * 255 / 16); stratified split: 30 test examples per class."
    )
    HOMEPAGE = "https://archive.ics.uci.edu/dataset/80"
    CITATION = "E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI, 1998."

    def split_arrays(self, paths):
        return digits_arrays()


class _IdxBuilder(GenjaxBuilder, skip_registration=True):
    """Builders from the four original IDX ``.gz`` files (train and t10k)."""

    def split_arrays(self, paths):
        return {
            "train": formats.read_idx_pair(
                paths["train-images-idx3-ubyte.gz"], paths["train-labels-idx1-ubyte.gz"]
            ),
            "test": formats.read_idx_pair(
                paths["t10k-images-idx3-ubyte.gz"], paths["t10k-labels-idx1-ubyte.gz"]
            ),
        }


class GenjaxMnist(_IdxBuilder):
    """MNIST from the original IDX files: 60000 train / 10000 test, 28x28x1, 8-bit."""

    SOURCE_NAME = "mnist"
    DESCRIPTION = "MNIST handwritten digits, from the original IDX files."
    HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"
    CITATION = (
        "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to "
        "document recognition. Proc. IEEE 86(11), 1998."
    )


class GenjaxFashionMnist(_IdxBuilder):
    """Fashion-MNIST from the original IDX files: 60000 train / 10000 test, 28x28x1, 8-bit."""

    SOURCE_NAME = "fashion_mnist"
    DESCRIPTION = "Fashion-MNIST (Zalando article images), from the original IDX files."
    HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"
    CITATION = (
        "H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
        "Machine Learning Algorithms. arXiv:1708.07747, 2017."
    )


class GenjaxBinarizedMnist(GenjaxBuilder):
    """Statically binarized MNIST (Larochelle & Murray 2011): 50000 / 10000 / 10000, no labels."""

    HAS_LABELS = False
    NUM_BITS = 1
    NUM_CLASSES = None
    SOURCE_NAME = "binarized_mnist"
    DESCRIPTION = (
        "MNIST binarized once by sampling (Salakhutdinov & Murray 2008), as distributed by "
        "Larochelle & Murray (2011): pixel values in {0, 1}, no labels."
    )
    HOMEPAGE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
    CITATION = (
        "H. Larochelle, I. Murray. The Neural Autoregressive Distribution Estimator. AISTATS 2011."
    )

    def split_arrays(self, paths):
        return {
            "train": (formats.read_amat(paths["binarized_mnist_train.amat"]), None),
            "validation": (formats.read_amat(paths["binarized_mnist_valid.amat"]), None),
            "test": (formats.read_amat(paths["binarized_mnist_test.amat"]), None),
        }
