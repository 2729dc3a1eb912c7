"""genjax.data: datasets by name (TFDS, no TensorFlow), deterministic batches, preprocessing.

Everything runs offline on scikit-learn's 8x8 digits and on small synthetic files written
here; the real MNIST files are never needed (their checksums are replaced by the test's own).
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds

from genjax.data import (
    PREPROCESS_MODES,
    ArrayDataset,
    BatchIterator,
    ChecksumError,
    DataUnavailableError,
    available_datasets,
    clear_cache,
    epoch_permutation,
    formats,
    load_dataset,
    preprocess,
    sources,
)

HAS_TF = importlib.util.find_spec("tensorflow") is not None


# ----------------------------------------------------------------------------- helpers
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """IDX layout written independently of genjax: 0, 0, 0x08, ndim, big-endian dims, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_amat(path: Path, images: np.ndarray) -> None:
    lines = [" ".join(str(int(v)) for v in img.reshape(-1)) for img in images]
    path.write_text("\n".join(lines) + "\n")


def synthetic_mnist(folder: Path, seed: int, n_train: int = 12, n_test: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train": (rng.integers(0, 256, (n_train, 28, 28), np.uint8), rng.integers(0, 10, n_train)),
        "test": (rng.integers(0, 256, (n_test, 28, 28), np.uint8), rng.integers(0, 10, n_test)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, split in (("train", "train"), ("t10k", "test")):
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", arrays[split][0])
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", arrays[split][1])
    return arrays


def folder_checksums(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.iterdir())}


def no_network(monkeypatch) -> list:
    """Makes every TFDS download fail (and records the URLs asked for)."""
    calls = []

    def fail(self, url_or_urls):
        calls.append(url_or_urls)
        raise ConnectionError("network disabled in tests")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", fail)
    return calls


def synthetic_dataset(n=103, labels=True, shape=(4, 4, 1)) -> ArrayDataset:
    images = np.arange(n * int(np.prod(shape)), dtype=np.int64).reshape(n, *shape) % 256
    return ArrayDataset(
        name="synthetic",
        split="train",
        images=images.astype(np.uint8),
        labels=np.arange(n, dtype=np.int32) if labels else None,
        num_bits=8,
        num_classes=None,
    )


@pytest.fixture(scope="module")
def digits(data_dir):
    return load_dataset("digits", "train"), load_dataset("digits", "test")


def sklearn_digits_uint8():
    """The documented scaling, in integer arithmetic: floor(v * 255 / 16 + 1/2)."""
    bunch = sklearn.datasets.load_digits()
    v = bunch.images.astype(np.int64)
    return ((v * 255 * 2 + 16) // 32).astype(np.uint8)[..., None], bunch.target


# ----------------------------------------------------------------------------- digits
def test_digits_round_trip(digits):
    train, test = digits
    ref_images, ref_labels = sklearn_digits_uint8()
    assert (len(train), len(test)) == (1497, 300)
    assert train.shape == test.shape == (8, 8, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    assert (train.num_bits, train.num_classes) == (8, 10)
    # Stratified: 30 test examples per class; train holds the rest of each class.
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [30] * 10)
    np.testing.assert_array_equal(
        np.bincount(train.labels, minlength=10), np.bincount(ref_labels) - 30
    )
    # Same (image, label) multiset as sklearn after scaling; 0 -> 0, 8 -> 128, 16 -> 255.
    key = lambda img, lab: (img.tobytes(), int(lab))
    loaded = collections.Counter(
        key(img, lab) for ds in (train, test) for img, lab in zip(ds.images, ds.labels, strict=True)
    )
    assert loaded == collections.Counter(map(key, ref_images, ref_labels))
    assert set(np.unique(train.images)) <= {(v * 255 * 2 + 16) // 32 for v in range(17)}
    assert {0, 128, 255} <= set(np.unique(train.images).tolist())
    # Original order kept: the test examples appear in sklearn's order.
    where = {
        key(img, lab): k for k, (img, lab) in enumerate(zip(ref_images, ref_labels, strict=True))
    }
    positions = [where[key(img, lab)] for img, lab in zip(test.images, test.labels, strict=True)]
    assert positions == sorted(positions)


def test_digits_slicing_cache_and_read_only(digits, data_dir):
    train, test = digits
    head = load_dataset("digits", "train[:90%]")
    assert len(head) == round(0.9 * 1497)
    np.testing.assert_array_equal(head.images, train.images[: len(head)])
    both = load_dataset("digits", "train[1000:]+test[:10]")
    np.testing.assert_array_equal(
        both.images, np.concatenate([train.images[1000:], test.images[:10]])
    )
    np.testing.assert_array_equal(
        both.labels, np.concatenate([train.labels[1000:], test.labels[:10]])
    )
    assert load_dataset("digits", "train").images is train.images  # cached in the process
    with pytest.raises(ValueError, match="read-only"):
        train.images[0, 0, 0, 0] = 1
    if not HAS_TF:
        assert "tensorflow" not in sys.modules


def test_load_dataset_errors(data_dir):
    with pytest.raises(ValueError, match="unknown dataset name 'mnits'.*digits"):
        load_dataset("mnits", "train")
    with pytest.raises(ValueError, match="split 'valid' is not valid.*'train', 'test'"):
        load_dataset("digits", "valid")
    with pytest.raises(ValueError, match="split must be"):
        load_dataset("digits", "")
    assert {"digits", "mnist", "fashion_mnist", "binarized_mnist", "cifar10"} <= set(
        available_datasets()
    )


@pytest.mark.parametrize("damage", ["garbage_records", "wrong_content_hash", "missing_info"])
def test_corrupt_prepared_data_is_rebuilt(digits, data_dir, tmp_path, damage, capsys):
    train = digits[0]
    src = Path(data_dir) / "genjax_digits"
    shutil.copytree(src, tmp_path / "genjax_digits")
    version_dir = tmp_path / "genjax_digits" / "1.0.0"
    if damage == "garbage_records":
        record = next(version_dir.glob("genjax_digits-train.array_record*"))
        record.write_bytes(b"\x00" * record.stat().st_size)
    elif damage == "missing_info":  # as left by a copy interrupted before dataset_info.json
        (version_dir / "dataset_info.json").unlink()
    else:  # intact files, but content that differs from what was prepared
        meta = json.loads((version_dir / "metadata.json").read_text())
        meta["content_sha256"]["train"] = "0" * 64
        (version_dir / "metadata.json").write_text(json.dumps(meta))
    rebuilt = load_dataset("digits", "train", data_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert ("preparing" if damage == "missing_info" else "rebuilding") in err
    np.testing.assert_array_equal(rebuilt.images, train.images)
    np.testing.assert_array_equal(rebuilt.labels, train.labels)


# ----------------------------------------------------------------------------- mnist / sources
def test_mnist_from_manual_dir_with_injected_checksums(tmp_path, monkeypatch):
    manual = tmp_path / "manual"
    arrays = synthetic_mnist(manual, seed=1)
    monkeypatch.setitem(sources.EXPECTED_SHA256, "mnist", folder_checksums(manual))
    calls = no_network(monkeypatch)
    for split in ("train", "test"):
        ds = load_dataset("mnist", split, data_dir=str(tmp_path / "dd"), manual_dir=str(manual))
        np.testing.assert_array_equal(ds.images[..., 0], arrays[split][0])
        np.testing.assert_array_equal(ds.labels, arrays[split][1].astype(np.int32))
        assert (ds.shape, ds.num_bits, ds.num_classes) == ((28, 28, 1), 8, 10)
    assert calls == []


def test_mnist_checksum_mismatch(tmp_path, monkeypatch):
    manual = tmp_path / "manual"
    synthetic_mnist(manual, seed=2)  # real checksums stay expected: these files differ
    no_network(monkeypatch)
    expected = sources.EXPECTED_SHA256["mnist"]["train-images-idx3-ubyte.gz"]
    got = sha256(manual / "train-images-idx3-ubyte.gz")
    with pytest.raises(ChecksumError, match=f"train-images-idx3-ubyte.gz.*{got}.*{expected}"):
        load_dataset("mnist", "train", data_dir=str(tmp_path / "dd"), manual_dir=str(manual))


def test_default_manual_folder_is_used(tmp_path, monkeypatch):
    data_dir = tmp_path / "dd"
    arrays = synthetic_mnist(data_dir / "downloads" / "manual", seed=3)
    monkeypatch.setitem(
        sources.EXPECTED_SHA256,
        "fashion_mnist",
        folder_checksums(data_dir / "downloads" / "manual"),
    )
    calls = no_network(monkeypatch)
    ds = load_dataset("fashion_mnist", "test", data_dir=str(data_dir))
    np.testing.assert_array_equal(ds.images[..., 0], arrays["test"][0])
    assert calls == []


def test_offline_error_names_files_checksums_and_folder(tmp_path, monkeypatch):
    calls = no_network(monkeypatch)
    monkeypatch.setattr(sources, "unreachable", lambda url, **kw: None)  # reach the download
    data_dir = tmp_path / "dd"
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("fashion_mnist", "train", data_dir=str(data_dir))
    msg = str(info.value)
    for name, sha in sources.EXPECTED_SHA256["fashion_mnist"].items():
        assert name in msg and sha in msg
    assert str(data_dir / "downloads" / "manual") in msg
    assert "--set data.manual_dir=DIR" in msg and "ConnectionError" in msg
    assert len(calls) == 4  # one try per file (one mirror)
    # An unreachable host is reported without trying the download manager at all.
    calls.clear()
    monkeypatch.setattr(sources, "unreachable", lambda url, **kw: "cannot connect (test)")
    with pytest.raises(DataUnavailableError, match="cannot connect"):
        load_dataset("fashion_mnist", "train", data_dir=str(tmp_path / "dd2"))
    assert calls == []
    # An explicit manual_dir is the only source: no download is attempted.
    calls.clear()
    with pytest.raises(DataUnavailableError, match="manual_dir=.*lacks train-images-idx3"):
        load_dataset("mnist", "train", data_dir=str(data_dir), manual_dir=str(tmp_path / "none"))
    with pytest.raises(DataUnavailableError, match="download=False"):
        load_dataset("mnist", "train", data_dir=str(data_dir), download=False)
    assert calls == []


def test_idx_reader_rejects_bad_files(tmp_path):
    good = tmp_path / "x.gz"
    write_idx_gz(good, np.zeros((3, 28, 28), np.uint8))
    assert formats.read_idx(good).shape == (3, 28, 28)
    truncated = tmp_path / "t.gz"
    with gzip.open(good) as f:
        raw = f.read()
    with gzip.open(truncated, "wb") as f:
        f.write(raw[:-5])
    with pytest.raises(ValueError, match="needs 2368 bytes; the file holds 2363"):
        formats.read_idx(truncated)
    labels = tmp_path / "l.gz"
    write_idx_gz(labels, np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="3 images but .* 4 labels"):
        formats.read_idx_pair(good, labels)


# ----------------------------------------------------------------------------- binarized mnist
def test_amat_parsing(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 2, (5, 28, 28, 1), np.uint8)
    path = tmp_path / "a.amat"
    write_amat(path, images)
    np.testing.assert_array_equal(formats.read_amat(path), images)
    text = path.read_text().splitlines()
    (tmp_path / "short.amat").write_text("\n".join([text[0], text[1][:-2]]) + "\n")
    with pytest.raises(ValueError, match="line 2 holds 783 values; expected 784"):
        formats.read_amat(tmp_path / "short.amat")
    (tmp_path / "two.amat").write_text(text[0].replace("0", "2", 1) + "\n")
    with pytest.raises(ValueError, match="line 1: only 0/1"):
        formats.read_amat(tmp_path / "two.amat")
    (tmp_path / "joined.amat").write_text("01 " + text[0][4:] + "\n")
    with pytest.raises(ValueError, match="separated"):
        formats.read_amat(tmp_path / "joined.amat")


def test_binarized_mnist_builder(tmp_path, monkeypatch):
    manual = tmp_path / "manual"
    manual.mkdir()
    rng = np.random.default_rng(4)
    arrays = {}
    for split, fname, n in (("train", "train", 6), ("validation", "valid", 3), ("test", "test", 2)):
        arrays[split] = rng.integers(0, 2, (n, 28, 28, 1), np.uint8)
        write_amat(manual / f"binarized_mnist_{fname}.amat", arrays[split])
    monkeypatch.setitem(sources.EXPECTED_SHA256, "binarized_mnist", folder_checksums(manual))
    no_network(monkeypatch)
    ds = load_dataset(
        "binarized_mnist", "validation", data_dir=str(tmp_path), manual_dir=str(manual)
    )
    np.testing.assert_array_equal(ds.images, arrays["validation"])
    assert ds.labels is None and ds.num_bits == 1 and ds.num_classes is None
    batch = BatchIterator(ds, 2, seed=0).batch_at(0)
    assert set(batch) == {"image"}


# ----------------------------------------------------------------------------- TFDS built-ins
class GenjaxTestTinyImages(tfds.core.GeneratorBasedBuilder):
    """A TFDS builder with TFDS's Image and ClassLabel features, as built-in datasets have."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(6, 5, 3)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        import PIL.Image  # PIL encodes PNG without TensorFlow

        for i, img in enumerate(tiny_images()):
            yield i, {"image": PIL.Image.fromarray(img), "label": i % 3}


def tiny_images():
    return np.random.default_rng(5).integers(0, 256, (7, 6, 5, 3), np.uint8)


def test_tfds_builtin_prepared_array_record(tmp_path):
    GenjaxTestTinyImages(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    ds = load_dataset("tfds:genjax_test_tiny_images", "train", data_dir=str(tmp_path))
    # TFDS stores built-in datasets in its own (hashed-key) order: compare as multisets.
    key = lambda img, lab: (img.tobytes(), int(lab))
    expected = collections.Counter(map(key, tiny_images(), np.arange(7) % 3))
    assert collections.Counter(map(key, ds.images, ds.labels)) == expected
    assert ds.labels.dtype == np.int32
    assert (ds.num_bits, ds.num_classes, ds.shape) == (8, 3, (6, 5, 3))
    head = load_dataset("tfds:genjax_test_tiny_images", "train[:6]", data_dir=str(tmp_path))
    np.testing.assert_array_equal(head.images, ds.images[:6])
    # The same folder described as tfrecord-only: explain the conversion.
    info_path = tmp_path / "genjax_test_tiny_images" / "1.0.0" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = "tfrecord"
    info_path.write_text(json.dumps(info))
    clear_cache()
    with pytest.raises(DataUnavailableError, match="convert_format.*out_file_format=array_record"):
        load_dataset("tfds:genjax_test_tiny_images", "train", data_dir=str(tmp_path))


@pytest.mark.skipif(HAS_TF, reason="checks the message shown when TensorFlow is missing")
def test_tfds_builtin_unprepared_without_tensorflow(tmp_path):
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("cifar10", "train", data_dir=str(tmp_path))
    msg = str(info.value)
    assert "pip install genjax[tensorflow]" in msg and "cifar-10-binary.tar.gz" in msg
    with pytest.raises(ValueError, match="TFDS knows no dataset"):
        load_dataset("tfds:no_such_dataset_xyz", "train", data_dir=str(tmp_path))


# ----------------------------------------------------------------------------- BatchIterator
def test_batches_are_pure_functions_of_seed_and_step():
    ds = synthetic_dataset()
    a, b = BatchIterator(ds, 10, seed=3), BatchIterator(ds, 10, seed=3)
    assert a.steps_per_epoch == 10
    for step in (0, 7, 10, 25, 1000):
        for key in ("image", "label"):
            np.testing.assert_array_equal(a.batch_at(step)[key], b.batch_at(step)[key])
    # b asked out of order, then again: no hidden state.
    np.testing.assert_array_equal(b.batch_at(5)["label"], a.batch_at(5)["label"])
    other_seed = BatchIterator(ds, 10, seed=4)
    assert not np.array_equal(a.batch_at(0)["label"], other_seed.batch_at(0)["label"])
    assert not np.array_equal(a.batch_at(0)["label"], a.batch_at(10)["label"])  # next epoch
    # Resuming the prefetching stream at step 13 gives batches 13, 14, ...
    for k, batch in enumerate(a.iterate(13, 12, prefetch=3)):
        np.testing.assert_array_equal(batch["label"], a.batch_at(13 + k)["label"])
    # The images follow the labels (labels are example indices here).
    batch = a.batch_at(3)
    np.testing.assert_array_equal(batch["image"], ds.images[batch["label"]])
    assert batch["image"].dtype == np.uint8 and batch["label"].dtype == np.int32


def test_every_example_once_per_epoch():
    ds = synthetic_dataset(n=103)
    it = BatchIterator(ds, 10, seed=0)
    for epoch in (0, 1, 2):
        seen = np.concatenate([b["label"] for b in it.epoch_batches(epoch)])
        assert len(seen) == 100 and len(np.unique(seen)) == 100  # 3 left out (drop_remainder)
        np.testing.assert_array_equal(seen, epoch_permutation(0, epoch, 103)[:100])
    full = BatchIterator(ds, 10, seed=0, drop_remainder=False)
    assert full.steps_per_epoch == 11
    seen = np.concatenate([b["label"] for b in full.epoch_batches(1)])
    np.testing.assert_array_equal(np.sort(seen), np.arange(103))
    ordered = BatchIterator(ds, 10, seed=0, shuffle=False, drop_remainder=False)
    batches = list(ordered)
    assert [len(b["label"]) for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches]), ds.images)


def test_epoch_permutation_is_stable():
    # Regression values: the order must not change with the numpy version (PCG64 raw stream).
    assert epoch_permutation(0, 0, 10).tolist() == [3, 2, 1, 8, 6, 0, 7, 4, 5, 9]
    assert epoch_permutation(7, 3, 12).tolist() == [11, 2, 10, 4, 7, 3, 5, 1, 8, 9, 0, 6]
    p = epoch_permutation(1, 2, 1000)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_process_slices_concatenate_to_global_batch(drop_remainder):
    ds = synthetic_dataset(n=50)
    one = BatchIterator(ds, 12, seed=1, drop_remainder=drop_remainder)
    two = [
        BatchIterator(
            ds, 12, seed=1, drop_remainder=drop_remainder, process_index=p, process_count=2
        )
        for p in (0, 1)
    ]
    for step in range(2 * one.steps_per_epoch):
        whole = one.batch_at(step)
        parts = [it.batch_at(step) for it in two]
        if len(whole["label"]) == 12:
            assert [len(p["label"]) for p in parts] == [6, 6]
        for key in ("image", "label"):
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


def test_batch_iterator_errors():
    ds = synthetic_dataset(n=20)
    with pytest.raises(ValueError, match="batch_size must be a multiple of process_count=4"):
        BatchIterator(ds, 10, seed=0, process_count=4)
    with pytest.raises(ValueError, match="process_index must be in"):
        BatchIterator(ds, 10, seed=0, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="20 examples, fewer than batch_size=32"):
        BatchIterator(ds, 32, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        BatchIterator(ds, 4, seed=-1)
    with pytest.raises(TypeError, match="ArrayDataset"):
        BatchIterator(ds.images, 4, seed=0)
    with pytest.raises(ValueError, match="step must be"):
        BatchIterator(ds, 4, seed=0).batch_at(-1)
    with pytest.raises(ValueError, match="labels must have shape"):
        ArrayDataset("x", "train", ds.images, np.zeros(3, np.int32), 8, None)
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset("x", "train", ds.images.astype(np.float32), None, 8, None)


# ----------------------------------------------------------------------------- preprocess
LEVELS = np.arange(256, dtype=np.uint8)


def test_preprocess_deterministic_modes():
    x = LEVELS.reshape(1, 16, 16, 1)
    unit = preprocess(None, x, mode="unit", num_bits=8)
    np.testing.assert_allclose(unit, x / 255.0, rtol=1e-6)
    assert unit.dtype == jnp.float32 and float(unit.min()) == 0.0 and float(unit.max()) == 1.0
    sym = preprocess(None, x, mode="symmetric", num_bits=8)
    np.testing.assert_allclose(sym, x / 127.5 - 1.0, atol=1e-6)
    assert float(sym.min()) == -1.0 and float(sym.max()) == 1.0
    integer = preprocess(None, x, mode="integer", num_bits=8)
    assert integer.dtype == jnp.int32
    np.testing.assert_array_equal(integer, x)
    bits5 = preprocess(None, np.arange(32, dtype=np.uint8), mode="unit", num_bits=5)
    np.testing.assert_allclose(bits5, np.arange(32) / 31.0, rtol=1e-6)
    binary = preprocess(None, np.array([0, 1, 1], np.uint8), mode="binary", num_bits=1)
    np.testing.assert_array_equal(binary, [0.0, 1.0, 1.0])


def test_preprocess_binarize_dynamic_is_bernoulli():
    # 4000 draws per grey level: |mean - x/255| <= 0.05 is > 6 standard deviations (<= 0.0079).
    x = np.tile(LEVELS, (4000, 1))
    key = jax.random.key(0)
    b = np.asarray(preprocess(key, x, mode="binarize_dynamic", num_bits=8))
    assert set(np.unique(b).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(b.mean(axis=0), LEVELS / 255.0, atol=0.05)
    assert b[:, 0].max() == 0.0 and b[:, 255].min() == 1.0  # p = 0 and p = 1 are exact
    again = preprocess(key, x, mode="binarize_dynamic", num_bits=8)
    np.testing.assert_array_equal(again, b)  # same key, same draw
    other = preprocess(jax.random.key(1), x, mode="binarize_dynamic", num_bits=8)
    assert not np.array_equal(other, b)


def test_preprocess_dequantize_stays_in_bins():
    x = np.tile(LEVELS, (2000, 1))
    y = np.asarray(preprocess(jax.random.key(2), x, mode="dequantize", num_bits=8))
    assert y.dtype == np.float32 and y.min() >= 0.0 and y.max() < 1.0
    np.testing.assert_array_equal(np.floor(y.astype(np.float64) * 256), x)
    # Offsets u = 256 y - x are U[0, 1): mean 1/2, variance 1/12 (512000 draws).
    u = y.astype(np.float64) * 256 - x
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    jitted = jax.jit(functools.partial(preprocess, mode="dequantize", num_bits=8))
    np.testing.assert_array_equal(jitted(jax.random.key(2), x), y)


def test_preprocess_errors():
    x = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="mode must be one of .*'unit'.*'integer'.*got 'scale'"):
        preprocess(None, x, mode="scale", num_bits=8)
    with pytest.raises(ValueError, match="mode='binary' is for data already in"):
        preprocess(None, x, mode="binary", num_bits=8)
    with pytest.raises(ValueError, match="already binary.*use mode='binary'"):
        preprocess(jax.random.key(0), x, mode="binarize_dynamic", num_bits=1)
    with pytest.raises(ValueError, match="needs a key"):
        preprocess(None, x, mode="dequantize", num_bits=8)
    with pytest.raises(ValueError, match="integer pixel values.*float32"):
        preprocess(None, x.astype(np.float32), mode="unit", num_bits=8)
    with pytest.raises(ValueError, match="continuous data"):
        preprocess(None, x, mode="unit", num_bits=0)
    with pytest.raises(ValueError, match="num_bits must be in"):
        preprocess(None, x, mode="unit", num_bits=17)
    assert set(PREPROCESS_MODES) == {
        "unit",
        "symmetric",
        "binarize_dynamic",
        "binary",
        "dequantize",
        "integer",
        "none",
    }


class _FakeSource:
    """A TFDS data source stand-in: ``len`` and batched ``__getitems__`` over records."""

    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitems__(self, indices):
        return [self.records[i] for i in indices]


class _FakeBuilder:
    name = "fake_variable_size"

    def __init__(self, images):
        self.images = images

    def as_data_source(self, split):
        return _FakeSource([{"image": im, "label": k % 3} for k, im in enumerate(self.images)])


def test_variable_size_feature_reads_when_every_image_has_one_size():
    """TFDS features declared (None, None, C), such as cycle_gan/*, whose images share a size."""
    from genjax.data.dataset import VariableImageSizeError, _read_split

    rng = np.random.default_rng(0)
    same = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(4)]
    images, labels = _read_split(_FakeBuilder(same), "trainA", "label", (None, None, 3))
    assert images.shape == (4, 5, 7, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.stack(same))
    np.testing.assert_array_equal(labels, [0, 1, 2, 0])
    mixed = [*same[:2], rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)]
    with pytest.raises(VariableImageSizeError, match=r"example 2 has an image of shape \(6, 7, 3\)"):
        _read_split(_FakeBuilder(mixed), "trainA", "label", (None, None, 3))
