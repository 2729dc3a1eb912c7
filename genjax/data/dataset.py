"""Datasets by name: ``load_dataset(name, split)`` -> an in-memory :class:`ArrayDataset`.

Names (:func:`available_datasets`):

* ``digits``: scikit-learn's 8x8 digits, prepared offline on first use (the default; no network).
* ``mnist``, ``fashion_mnist``: from the original IDX ``.gz`` files (SHA-256 verified).
* ``binarized_mnist``: Larochelle & Murray's static binarization, splits train 50000 /
  validation 10000 / test 10000, values in {0, 1}, no labels.
* ``cifar10`` and ``tfds:<name>[:<version>]``: TFDS's own builders (image key ``"image"``,
  label key ``"label"`` when present).
* ``ring``, ``grid``, ``two_moons``: 2-D toy points generated in-process (:mod:`genjax.data.toy`),
  float32 ``(N, 2)`` with ``num_bits == 0``.
* ``<base>_domains``, ``<base>_domains_by_domain`` (base ``digits``, ``mnist``,
  ``fashion_mnist``): the synthetic translation domains of :mod:`genjax.data.domains`.

Every split is read once per process from TFDS ``array_record`` files through
``builder.as_data_source`` (no TensorFlow), held as numpy arrays and cached. Splits accept the
TFDS slicing syntax (``"train[:90%]"``, ``"train[:1000]+test"``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import threading
import types
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from genjax.data import builders, domains, tfds_builtin, toy
from genjax.data.arrays import ArrayDataset
from genjax.data.sources import ChecksumError, DataUnavailableError

_OWN_BUILDERS: dict[str, type[builders.GenjaxBuilder]] = {
    "digits": builders.GenjaxDigits,
    "mnist": builders.GenjaxMnist,
    "fashion_mnist": builders.GenjaxFashionMnist,
    "binarized_mnist": builders.GenjaxBinarizedMnist,
}
_OWN_SPLITS = {
    "digits": ("train", "test"),
    "mnist": ("train", "test"),
    "fashion_mnist": ("train", "test"),
    "binarized_mnist": ("train", "validation", "test"),
}
_BUILTIN_ALIASES = {"cifar10": "cifar10"}
_READ_CHUNK = 4096
_PROGRESS_MIN_EXAMPLES = 20000

_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}
_CACHE_LOCK = threading.Lock()


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, besides ``"tfds:<name>[:<version>]"``."""
    return sorted([*_OWN_BUILDERS, *_BUILTIN_ALIASES, *toy.NUM_CLASSES, *domains.DATASETS])


_BUILTIN_SHAPES = {"cifar10": ((32, 32, 3), 8, 10)}  # (shape, num_bits, num_classes)


def describe_dataset(name: str) -> tuple[tuple[int, ...], int, int | None] | None:
    """``(shape, num_bits, num_classes)`` of a named dataset, known without reading it.

    ``shape`` is ``(H, W, C)`` of one image or ``(D,)`` of one point (``num_bits == 0``).
    Returns ``None`` for a name this table does not know (``tfds:<name>`` datasets are
    described by their files, when they are read) and for unknown names.
    """
    if name in domains.DATASETS:
        base, label = domains.DATASETS[name]
        shape, num_bits, num_classes = describe_dataset(base)
        return shape, num_bits, num_classes if label == "digit" else len(domains.DOMAINS)
    if name in toy.NUM_CLASSES:
        return (2,), 0, toy.NUM_CLASSES[name]
    if name in _OWN_BUILDERS:
        cls = _OWN_BUILDERS[name]
        return tuple(cls.IMAGE_SHAPE), cls.NUM_BITS, cls.NUM_CLASSES
    return _BUILTIN_SHAPES.get(name)


def default_data_dir() -> str:
    """``$GENJAX_DATA_DIR``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    for var in ("GENJAX_DATA_DIR", "TFDS_DATA_DIR"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    return os.path.expanduser("~/tensorflow_datasets")


def clear_cache() -> None:
    """Forgets the splits held in memory (the next load reads them from disk again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _log(msg: str) -> None:
    print(f"genjax.data: {msg}", file=sys.stderr, flush=True)


def _absolute(spec: str, split_infos, name: str) -> list:
    """TFDS split spec -> absolute instructions (``splitname``, ``from_``, ``to``)."""
    try:
        return tfds.core.ReadInstruction.from_spec(spec).to_absolute(split_infos)
    except Exception as err:
        raise ValueError(
            f"split {spec!r} is not valid for dataset {name!r} (splits: {list(split_infos)}; "
            f"slicing as in 'train[:90%]', 'train[1000:]', 'train+test'): {err}"
        ) from None


def _toy_split_infos(name: str):
    return {
        split: tfds.core.SplitInfo(name=split, shard_lengths=[n], num_bytes=0)
        for split, n in toy.SPLIT_SIZES.items()
    }


class VariableImageSizeError(ValueError):
    """A split declared with variable image size holds images of different sizes."""


def _read_split(builder, split: str, label_key: str | None, shape) -> tuple:
    """Reads a whole split from array_record into numpy (batched ``__getitems__``).

    ``shape`` may have ``None`` height and width (a variable-size feature): the first image
    fixes them and every other image must match, else :class:`VariableImageSizeError`.
    """
    source = builder.as_data_source(split=split)
    n = len(source)
    if None in shape:
        first = np.asarray(source.__getitems__([0])[0]["image"]) if n else np.empty((0, 0))
        shape = (*first.shape[:2], shape[-1])
    images = np.empty((n, *shape), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32) if label_key else None
    with tqdm.tqdm(
        total=n,
        desc=f"reading {builder.name} {split}",
        unit=" examples",
        file=sys.stderr,
        disable=n < _PROGRESS_MIN_EXAMPLES,
    ) as progress:
        for start in range(0, n, _READ_CHUNK):
            records = source.__getitems__(list(range(start, min(start + _READ_CHUNK, n))))
            for j, rec in enumerate(records):
                image = np.asarray(rec["image"])
                if image.shape[:2] != tuple(shape[:2]):
                    raise VariableImageSizeError(
                        f"TFDS dataset {builder.name!r} split {split!r}: example {start + j} has "
                        f"an image of shape {image.shape}, the split's images are {shape}; genjax "
                        "needs one image size per dataset: resize the images when preparing it"
                    )
                images[start + j] = np.reshape(image, shape)
                if labels is not None:
                    labels[start + j] = rec[label_key]
            progress.update(len(records))
    images.flags.writeable = False
    if labels is not None:
        labels.flags.writeable = False
    return images, labels


def _cached_read(key: tuple, read) -> tuple:
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    arrays = read()
    with _CACHE_LOCK:
        _CACHE[key] = arrays
    return arrays


@contextlib.contextmanager
def preparation_lock(data_dir, name: str):
    """Holds ``<data_dir>/.<name>.genjax-lock`` (an OS file lock) while a dataset is prepared
    or checked, so that processes sharing a data folder prepare it once: the first prepares,
    the others wait and then find it prepared. The OS frees the lock of a process that dies."""
    import fcntl

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    path = Path(data_dir) / f".{name.replace('/', '_').replace(':', '_')}.genjax-lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another process preparing {name} in {data_dir}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _own_builder(cls, data_dir, manual_dir, download, *, fresh: bool):
    kwargs = dict(
        data_dir=data_dir,
        file_format="array_record",
        manual_dir=manual_dir,
        allow_download=download,
    )
    version_dir = Path(data_dir) / cls.name / str(cls.VERSION)
    if fresh and version_dir.exists():
        shutil.rmtree(version_dir)
    try:
        builder = cls(**kwargs)
    except Exception as err:  # e.g. an unreadable dataset_info.json
        _log(f"prepared {cls.name} in {version_dir} is unreadable ({err!r}); rebuilding it")
        shutil.rmtree(version_dir, ignore_errors=True)
        builder = cls(**kwargs)
    if not builder.is_prepared():
        _log(f"preparing {cls.name} in {version_dir}")
        # TFDS prints its progress to standard output; keep it for results (JSON summaries).
        with contextlib.redirect_stdout(sys.stderr):
            builder.download_and_prepare()
        builder = cls(**kwargs)
    return builder


def _read_verified(builder, split: str, recorded_sha256: str) -> tuple:
    """Reads a split of a genjax builder and checks it against its recorded content hash."""
    label_key = "label" if builder.HAS_LABELS else None
    arrays = _read_split(builder, split, label_key, builder.IMAGE_SHAPE)
    got = builders.content_sha256(*arrays)
    if got != recorded_sha256:
        raise ChecksumError(
            f"content sha256 {got} of split {split!r} != {recorded_sha256} recorded at preparation"
        )
    return arrays


def _load_own(name: str, split: str, data_dir, manual_dir, download) -> tuple:
    """Prepares (once) and reads the base splits of a genjax builder, verified by content hash.

    Prepared data that cannot be read or whose content hash differs from the one recorded at
    preparation (an interrupted copy, a truncated or altered file) is deleted and rebuilt once.
    """
    cls = _OWN_BUILDERS[name]
    fake = {
        s: types.SimpleNamespace(num_examples=10**12, shard_lengths=[10**12])
        for s in _OWN_SPLITS[name]
    }
    bases = sorted({i.splitname for i in _absolute(split, fake, name)})
    for attempt in range(2):
        with preparation_lock(data_dir, name):
            builder = _own_builder(cls, data_dir, manual_dir, download, fresh=attempt > 0)
        try:
            recorded = dict(builder.info.metadata["content_sha256"])
            out = {}
            for base in bases:
                key = ("own", cls.name, str(cls.VERSION), str(Path(data_dir).resolve()), base)

                read = functools.partial(_read_verified, builder, base, recorded[base])
                out[base] = _cached_read(key, read)
            return out, builder.info.splits
        except DataUnavailableError:
            raise
        except Exception as err:
            where = builder.data_dir
            if attempt:
                raise RuntimeError(
                    f"{name}: data rebuilt in {where} still fails its check ({err!r}); "
                    "delete that folder and report the problem"
                ) from err
            _log(f"prepared {name} in {where} is corrupt or incomplete ({err!r}); rebuilding it")
    raise AssertionError("unreachable")


def _load_builtin(spec: str, split: str, data_dir, manual_dir, download):
    with preparation_lock(data_dir, spec):
        builder = tfds_builtin.builtin_builder(
            spec, data_dir=data_dir, manual_dir=manual_dir, download=download
        )
    shape, label_key, num_classes = tfds_builtin.image_spec(builder)
    bases = sorted({i.splitname for i in _absolute(split, builder.info.splits, spec)})
    out = {}
    for base in bases:
        key = ("tfds", builder.name, str(builder.version), str(Path(data_dir).resolve()), base)
        expected = builder.info.splits[base].num_examples
        try:
            arrays = _cached_read(key, lambda b=base: _read_split(builder, b, label_key, shape))
        except ModuleNotFoundError as err:
            if err.name != "tensorflow":
                raise
            raise DataUnavailableError(
                f"decoding a feature of TFDS dataset {spec!r} needs TensorFlow, which is not "
                "installed: pip install genjax[tensorflow]. (genjax decodes uint8 Image, "
                "ClassLabel and Tensor features without it.)"
            ) from err
        except VariableImageSizeError:
            raise
        except Exception as err:
            raise RuntimeError(
                f"cannot read split {base!r} of TFDS dataset {spec!r} in {builder.data_dir} "
                f"({err!r}); if the folder is incomplete or corrupt, delete it and prepare again"
            ) from err
        if len(arrays[0]) != expected:
            raise RuntimeError(
                f"TFDS dataset {spec!r} split {base!r} in {builder.data_dir} holds "
                f"{len(arrays[0])} examples, its dataset_info.json says {expected}: delete the "
                "folder and prepare again"
            )
        out[base] = arrays
    return out, builder.info.splits, num_classes


def load_dataset(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = True,
) -> ArrayDataset:
    """Loads one split of a dataset by name into memory (preparing it on first use).

    Args:
      name: one of :func:`available_datasets`, or ``"tfds:<name>[:<version>]"`` for any TFDS
        image dataset with fixed-size uint8 images.
      split: split name with optional TFDS slicing, e.g. ``"train"``, ``"train[:90%]"``,
        ``"train[90%:]"``, ``"validation+test"``.
      data_dir: where prepared data lives (default :func:`default_data_dir`).
      manual_dir: folder holding the original source files (offline preparation). For genjax's
        builders it is then the only source; without it they look in
        ``<data_dir>/downloads/manual`` and then download.
      download: allow network downloads when preparing.

    Returns:
      The split as an :class:`ArrayDataset` (read-only arrays, cached within the process).

    Raises:
      ValueError: unknown name or split, or a TFDS dataset genjax cannot hold as images.
      DataUnavailableError: source files missing and not downloadable (the message lists
        them with SHA-256 and the folder to put them in), or TensorFlow needed to prepare.
      ChecksumError: a source file's SHA-256 differs from the published one.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a dataset name (str); got {name!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty str such as 'train'; got {split!r}")
    if name in domains.DATASETS:  # views of a base dataset (genjax/data/domains.py)
        base_name = domains.DATASETS[name][0]
        base = load_dataset(base_name, split, data_dir=data_dir, manual_dir=manual_dir,
                            download=download)
        return domains.domain_dataset(name, base)
    data_dir = os.path.expanduser(str(data_dir)) if data_dir else default_data_dir()
    manual_dir = os.path.expanduser(str(manual_dir)) if manual_dir else None
    if name in toy.NUM_CLASSES:
        bases = toy.load_toy_split(name)
        split_infos = _toy_split_infos(name)
        num_bits, num_classes = 0, toy.NUM_CLASSES[name]
    elif name in _OWN_BUILDERS:
        bases, split_infos = _load_own(name, split, data_dir, manual_dir, download)
        cls = _OWN_BUILDERS[name]
        num_bits, num_classes = cls.NUM_BITS, cls.NUM_CLASSES
    elif name in _BUILTIN_ALIASES or name.startswith(tfds_builtin.TFDS_PREFIX):
        spec = _BUILTIN_ALIASES.get(name) or name[len(tfds_builtin.TFDS_PREFIX) :]
        if not spec:
            raise ValueError("name 'tfds:' needs a TFDS dataset name, e.g. 'tfds:mnist:3.0.1'")
        bases, split_infos, num_classes = _load_builtin(spec, split, data_dir, manual_dir, download)
        num_bits = 8
    else:
        raise ValueError(
            f"unknown dataset name {name!r}; expected one of {available_datasets()} or "
            "'tfds:<name>[:<version>]'"
        )
    parts = [
        tuple(
            a if a is None or (i.from_ is None and i.to is None) else a[i.from_ : i.to]
            for a in bases[i.splitname]
        )
        for i in _absolute(split, split_infos, name)
    ]
    if len(parts) == 1:
        images, labels = parts[0]
    else:
        images = np.concatenate([p[0] for p in parts])
        labels = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        images.flags.writeable = False
        if labels is not None:
            labels.flags.writeable = False
    return ArrayDataset(
        name=name,
        split=split,
        images=images,
        labels=labels,
        num_bits=num_bits,
        num_classes=num_classes,
    )
