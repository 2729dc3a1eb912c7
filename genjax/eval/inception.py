"""The Inception-v3 of the FID recipe (Heusel et al. 2017) in Flax, and FID / KID on its features.

The network is the TensorFlow graph of 2015-12-05 that the reference FID code (TTUR) runs,
as ported to PyTorch by pytorch-fid (``FIDInceptionA/C/E`` blocks): every convolution is
followed by batch normalisation (``eps = 0.001``) and a ReLU; the average pools inside the
A, C and first E blocks ignore the zero padding (``count_include_pad=False``), and the pool
branch of the last E block is a max pool. The 2048-d features are the global average of the
last block ("pool3").

genjax ships no weights. The user brings pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
and converts it once (PyTorch is needed for this command only)::

    python -m genjax.eval.inception convert pt_inception-2015-12-05-6726825d.pth inception.npz

then ``network = load_inception_weights("inception.npz")`` and
``inception_metrics(real, fake, network, key=0)``.

Images are floats in ``[0, 1]``, ``(N, H, W, C)`` with ``C`` 1 (repeated to RGB) or 3. As in
pytorch-fid they are resized to 299 x 299 by bilinear interpolation with half-pixel centres
and no antialiasing (``F.interpolate(mode="bilinear", align_corners=False)``), then mapped to
``[-1, 1]``. ``jax.image.resize`` differs when shrinking (it antialiases), so the resize is
implemented here.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.eval._checks import positive_int
from genjax.eval._io import atomic_write
from genjax.eval.features import check_unit_images, feature_distances
from genjax.eval.likelihood import batch_outputs
from genjax.train import parallel

INCEPTION_REFERENCE = (
    "the TensorFlow Inception-v3 graph of 2015-12-05 used by the reference FID code "
    "(TTUR, Heusel et al. 2017: inception-2015-12-05.tgz, pool3 features, 2048-d), as its "
    "PyTorch port pt_inception-2015-12-05-6726825d.pth (pytorch-fid's GitHub release "
    "'fid_weights') converted to .npz with "
    "'python -m genjax.eval.inception convert pt_inception-2015-12-05-6726825d.pth OUT.npz'"
)
IMAGE_SIZE = 299
FEATURE_DIM = 2048
# Keys of a converted file that hold provenance, not weights.
_META_SOURCE_SHA256 = "_meta.source_sha256"
_HIGHEST = jax.lax.Precision.HIGHEST


# -- resizing ----------------------------------------------------------------------------------
def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows ``i0``, ``i1`` and the weight of ``i1`` for each output row.

    PyTorch's ``align_corners=False`` rule: the output pixel ``d`` samples
    ``s = (in / out) (d + 1/2) - 1/2`` clamped at 0, between ``floor(s)`` and the next row
    (the last row repeats). Like PyTorch's compiled kernels, ``in / out`` is rounded to float32
    and ``s`` is a fused multiply-add (one rounding to float32): emulated exactly in float64,
    where the product and the difference are exact. Rounding twice would move ``s`` by an ulp
    (1.5e-5 near 200) at some rows, and outputs by up to ~1e-5.
    """
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    src = (scale * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = np.clip(src - i0.astype(np.float32), 0.0, 1.0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(images: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resize of ``(N, H, W, C)`` images, equal to PyTorch's ``F.interpolate``.

    ``F.interpolate(x, size, mode="bilinear", align_corners=False)`` (no antialiasing): each
    output pixel interpolates the 2 x 2 input pixels around its half-pixel-centred source
    position, along the width first and then the height. Shrinking therefore skips pixels
    (unlike ``jax.image.resize``, which widens its kernel to antialias); enlarging agrees with
    ``jax.image.resize(..., "bilinear")`` up to round-off.

    Args:
      images: ``(N, H, W, C)`` floats.
      size: ``(out_height, out_width)``.

    Returns:
      ``(N, out_height, out_width, C)`` in the dtype of ``images``.
    """
    out_h, out_w = size
    h0, h1, wh = _linear_taps(images.shape[1], out_h)
    c0, c1, ww = _linear_taps(images.shape[2], out_w)
    ww = jnp.asarray(ww, images.dtype)[:, None]
    wh = jnp.asarray(wh, images.dtype)[:, None, None]
    x0, x1 = images[:, :, c0], images[:, :, c1]
    rows = x0 * (1 - ww) + x1 * ww
    return rows[:, h0] * (1 - wh) + rows[:, h1] * wh


@jax.jit
def preprocess(images: jax.Array) -> jax.Array:
    """Images in [0, 1], ``(N, H, W, 1 or 3)`` -> the network input ``(N, 299, 299, 3)`` in [-1, 1].

    Resized as pytorch-fid does (:func:`resize_bilinear`; the identity at 299 x 299), grey
    repeated to RGB, then ``2 x - 1``.
    """
    x = images.astype(jnp.float32)
    if x.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        x = resize_bilinear(x, (IMAGE_SIZE, IMAGE_SIZE))
    if x.shape[3] == 1:
        x = jnp.repeat(x, 3, axis=3)
    return 2.0 * x - 1.0


# -- the network -------------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm with running statistics (eps 0.001), ReLU."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        (ph, pw) = self.padding
        x = nn.Conv(self.features, self.kernel_size, self.strides, ((ph, ph), (pw, pw)),
                    use_bias=False, precision=_HIGHEST, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _conv(name: str, features: int, kernel, strides=1, padding=0) -> BasicConv2d:
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    return BasicConv2d(features, pair(kernel), pair(strides), pair(padding), name=name)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3 x 3 stride-1 average over the pixels inside the image (TF's SAME pool)."""
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int, pad: int) -> jax.Array:
    return nn.max_pool(x, (3, 3), (stride, stride), ((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
    """35 x 35 block (Mixed_5b-d): 1x1, 5x5, double 3x3 and pooled branches."""

    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = _conv("branch1x1", 64, 1)(x)
        b5 = _conv("branch5x5_2", 64, 5, padding=2)(_conv("branch5x5_1", 48, 1)(x))
        b3 = _conv("branch3x3dbl_1", 64, 1)(x)
        b3 = _conv("branch3x3dbl_2", 96, 3, padding=1)(b3)
        b3 = _conv("branch3x3dbl_3", 96, 3, padding=1)(b3)
        bp = _conv("branch_pool", self.pool_features, 1)(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Reduction 35 -> 17 (Mixed_6a)."""

    @nn.compact
    def __call__(self, x):
        b3 = _conv("branch3x3", 384, 3, strides=2)(x)
        bd = _conv("branch3x3dbl_1", 64, 1)(x)
        bd = _conv("branch3x3dbl_2", 96, 3, padding=1)(bd)
        bd = _conv("branch3x3dbl_3", 96, 3, strides=2)(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (Mixed_6b-e)."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = _conv("branch1x1", 192, 1)(x)
        b7 = _conv("branch7x7_1", c7, 1)(x)
        b7 = _conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
        b7 = _conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
        bd = _conv("branch7x7dbl_1", c7, 1)(x)
        bd = _conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
        bd = _conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
        bd = _conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
        bd = _conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
        bp = _conv("branch_pool", 192, 1)(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Reduction 17 -> 8 (Mixed_7a)."""

    @nn.compact
    def __call__(self, x):
        b3 = _conv("branch3x3_2", 320, 3, strides=2)(_conv("branch3x3_1", 192, 1)(x))
        b7 = _conv("branch7x7x3_1", 192, 1)(x)
        b7 = _conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
        b7 = _conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
        b7 = _conv("branch7x7x3_4", 192, 3, strides=2)(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs (Mixed_7b, Mixed_7c).

    ``max_pool``: the pool branch takes a 3 x 3 max instead of the average, as the FID graph
    does in its last block (Mixed_7c; pytorch-fid's ``FIDInceptionE_2``).
    """

    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        b1 = _conv("branch1x1", 320, 1)(x)
        b3 = _conv("branch3x3_1", 384, 1)(x)
        b3 = jnp.concatenate([_conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                              _conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)], axis=-1)
        bd = _conv("branch3x3dbl_1", 448, 1)(x)
        bd = _conv("branch3x3dbl_2", 384, 3, padding=1)(bd)
        bd = jnp.concatenate([_conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                              _conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)], axis=-1)
        pooled = _max_pool_3x3(x, 1, 1) if self.max_pool else _avg_pool_3x3(x)
        bp = _conv("branch_pool", 192, 1)(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the FID recipe up to the pool3 features (no classifier head).

    Takes ``(N, 299, 299, 3)`` images in [-1, 1] (see :func:`preprocess`) and returns
    pytorch-fid's four blocks: ``block0`` (after the first max pool, ``(N, 73, 73, 64)``),
    ``block1`` (after the second, ``(N, 35, 35, 192)``), ``block2`` (after Mixed_6e,
    ``(N, 17, 17, 768)``) and ``pool3`` (``(N, 2048)``). Submodule names are the PyTorch
    attribute names, so ``Mixed_5b.branch1x1.conv.weight`` lives at
    ``params/Mixed_5b/branch1x1/conv/kernel``.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        x = _conv("Conv2d_1a_3x3", 32, 3, strides=2)(x)
        x = _conv("Conv2d_2a_3x3", 32, 3)(x)
        x = _conv("Conv2d_2b_3x3", 64, 3, padding=1)(x)
        block0 = x = _max_pool_3x3(x, 2, 0)
        x = _conv("Conv2d_3b_1x1", 80, 1)(x)
        x = _conv("Conv2d_4a_3x3", 192, 3)(x)
        block1 = x = _max_pool_3x3(x, 2, 0)
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = InceptionA(pool_features, name=name)(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                         ("Mixed_6e", 192)):
            x = InceptionC(c7, name=name)(x)
        block2 = x
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        return {"block0": block0, "block1": block1, "block2": block2,
                "pool3": jnp.mean(x, axis=(1, 2))}


_MODULE = FIDInceptionV3()


@jax.jit
def _network(variables, x: jax.Array) -> dict[str, jax.Array]:
    # One program for features and activations: the three blocks are computed on the way to
    # pool3 anyway, and returning them costs only their output buffers.
    return _MODULE.apply(variables, x)


# -- weights -----------------------------------------------------------------------------------
_BN_FIELDS = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


@functools.cache
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The pytorch-fid state_dict keys the network needs, with their PyTorch shapes.

    Convolutions are ``<layer>.conv.weight`` ``(out, in, kh, kw)``; batch norms
    ``<layer>.bn.{weight, bias, running_mean, running_var}`` ``(out,)``. (The file's ``fc.*``
    classifier and ``num_batches_tracked`` counters are not used.) Derived from the Flax module
    by shape evaluation; nothing is compiled.
    """
    x = jax.ShapeDtypeStruct((1, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.float32)
    params = jax.eval_shape(_MODULE.init, jax.random.key(0), x)["params"]
    shapes = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        *layer, module, field = (p.key for p in path)
        prefix = ".".join(layer)
        if module == "conv":
            h, w, i, o = leaf.shape
            shapes[f"{prefix}.conv.weight"] = (o, i, h, w)
        elif field == "scale":
            for torch_name in _BN_FIELDS:
                shapes[f"{prefix}.bn.{torch_name}"] = leaf.shape
    return dict(sorted(shapes.items()))


def _set(tree: dict, path: list[str], value) -> None:
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


def variables_from_state_dict(state: dict[str, np.ndarray]) -> dict[str, Any]:
    """Flax variables of :class:`FIDInceptionV3` from pytorch-fid state_dict arrays.

    Convolution kernels go from PyTorch's ``(out, in, kh, kw)`` to Flax's ``(kh, kw, in, out)``;
    batch-norm ``weight, bias`` become ``params`` ``scale, bias`` and the running statistics
    ``batch_stats`` ``mean, var``. Keys are taken from :func:`expected_shapes`; others are ignored.
    """
    variables: dict[str, Any] = {}
    for key in expected_shapes():
        *layer, module, field = key.split(".")
        value = np.asarray(state[key], np.float32)
        if module == "conv":
            _set(variables, ["params", *layer, "conv", "kernel"], value.transpose(2, 3, 1, 0))
        else:
            collection, name = _BN_FIELDS[field]
            _set(variables, [collection, *layer, "bn", name], value)
    return variables


def check_state_dict(state, source: str) -> dict[str, np.ndarray]:
    """The expected arrays of ``state`` as float32, or a ValueError naming what is wrong.

    Checks that every key of :func:`expected_shapes` is present with its shape and a floating
    dtype, that no value is NaN or infinite and that running variances are >= 0.
    """
    expected = expected_shapes()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(
            f"{source} is missing {len(missing)} of the {len(expected)} Inception weights, e.g. "
            f"{missing[:5]} (is it pytorch-fid's pt_inception-2015-12-05 state_dict, converted "
            "with 'python -m genjax.eval.inception convert'?)"
        )
    wrong = [f"{k}: expected {expected[k]}, got {tuple(np.shape(state[k]))}"
             for k in expected if tuple(np.shape(state[k])) != expected[k]]
    if wrong:
        raise ValueError(f"{source} has {len(wrong)} weights of the wrong shape: "
                         + "; ".join(wrong[:5]))
    out = {}
    for k in expected:
        value = np.asarray(state[k])
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{source}: {k} must hold floats, got dtype {value.dtype}")
        out[k] = value.astype(np.float32)
    bad = [k for k, v in out.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"{source} has NaN or infinite values in {len(bad)} weights: {bad[:5]}")
    negative = [k for k, v in out.items() if k.endswith("running_var") and (v < 0).any()]
    if negative:
        raise ValueError(f"{source} has negative running variances in {negative[:5]}")
    return out


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (:func:`genjax.data.sources.sha256_file`)."""
    from genjax.data.sources import sha256_file  # on use: genjax.data imports tfds

    return sha256_file(path)


def save_inception_weights(state: dict[str, np.ndarray], path: str | Path, *,
                           source_sha256: str | None = None) -> Path:
    """Writes the checked weights as an ``.npz`` whose bytes depend only on the arrays.

    Keys are sorted and every zip entry gets the same timestamp (``np.savez`` stamps the
    current time), so converting the same ``.pth`` twice gives the same file and SHA-256.
    ``source_sha256`` (of the ``.pth``) is stored under ``_meta.source_sha256``.
    """
    arrays = check_state_dict(state, "the weights to save")
    if source_sha256 is not None:
        arrays[_META_SOURCE_SHA256] = np.asarray(source_sha256)

    def write(handle):
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for key in sorted(arrays):
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, arrays[key], allow_pickle=False)

    return atomic_write(path, write)


class InceptionFeatures:
    """The FID Inception-v3 with loaded weights (use :func:`load_inception_weights`); a
    :class:`genjax.eval.features.FeatureNetwork`.

    Attributes:
      name: ``"inception-v3-fid"``, the network's name in reported metrics.
      path: the ``.npz`` file the weights came from.
      sha256: SHA-256 of that file's bytes.
      source_sha256: SHA-256 of the ``.pth`` it was converted from, or None if not recorded.
      variables: the Flax variables of :class:`FIDInceptionV3`.
    """

    name = "inception-v3-fid"

    def __init__(self, variables, *, path: Path, sha256: str, source_sha256: str | None):
        # On every device (of every process): each batch is split over them.
        self.variables = parallel.replicate(variables, parallel.data_mesh())
        self.path = path
        self.sha256 = sha256
        self.source_sha256 = source_sha256

    def __repr__(self) -> str:
        return f"InceptionFeatures({str(self.path)!r}, sha256={self.sha256[:12]}...)"

    @staticmethod
    def check_images(name: str, images) -> np.ndarray:
        """``images`` as float32 ``(N, H, W, 1 or 3)`` in [0, 1], or a ValueError saying why not."""
        return check_unit_images(
            name, images, shape_ok=lambda s: len(s) == 4 and s[3] in (1, 3) and min(s) >= 1,
            expected="(N, H, W, C) with N, H, W >= 1 and C 1 or 3")

    def activations(self, images, *, batch_size: int = 50) -> dict[str, np.ndarray]:
        """All four blocks of :class:`FIDInceptionV3` for images in [0, 1], as float32 NumPy.

        Runs the jitted network on batches of ``batch_size`` (the last one padded with zeros,
        so one shape is compiled per batch size), each split over the devices
        (:func:`genjax.eval.likelihood.batch_outputs`); results do not depend on
        ``batch_size`` or the device count.
        """
        return self._run(images, batch_size, _all_blocks)

    def features(self, images, *, batch_size: int = 50) -> np.ndarray:
        """``(N, 2048)`` float64 pool3 features of ``(N, H, W, 1 or 3)`` images in [0, 1]."""
        return self._run(images, batch_size, _pool3)["pool3"].astype(np.float64)

    def _run(self, images, batch_size: int, fn) -> dict[str, np.ndarray]:
        images = self.check_images("images", images)
        return batch_outputs(fn, self.variables, {"image": images},
                             batch_size=positive_int("batch_size", batch_size))


def _all_blocks(variables, batch) -> dict[str, jax.Array]:
    """The four blocks of a batch ``{"image": [0, 1] images}`` (a ``batch_outputs`` fn)."""
    result = _network(variables, preprocess(batch["image"]))
    return {b: result[b] for b in ("block0", "block1", "block2", "pool3")}


def _pool3(variables, batch) -> dict[str, jax.Array]:
    """The pool3 features of a batch ``{"image": [0, 1] images}`` (a ``batch_outputs`` fn)."""
    return {"pool3": _network(variables, preprocess(batch["image"]))["pool3"]}


def load_inception_weights(path: str | Path | None) -> InceptionFeatures:
    """Loads the FID Inception-v3 from a converted ``.npz`` (see :data:`INCEPTION_REFERENCE`).

    The file holds pytorch-fid's state_dict arrays under their PyTorch names and layouts
    (:func:`expected_shapes`); extra keys (``fc.*``, ``num_batches_tracked``) are ignored.

    Args:
      path: the ``.npz`` written by ``python -m genjax.eval.inception convert`` (or any
        ``np.savez`` of the same arrays).

    Returns:
      An :class:`InceptionFeatures` whose ``sha256`` identifies the file.

    Raises:
      FileNotFoundError: ``path`` is None or names no file; the message says which file is
        needed and where it comes from.
      ValueError: the file is not a readable ``.npz``, lacks a weight, has one of the wrong
        shape or dtype, or holds NaN or infinite values.
    """
    if path is None or str(path) == "" or not Path(path).is_file():
        raise FileNotFoundError(f"Inception weights file {str(path)!r} not found. FID needs "
                                f"{INCEPTION_REFERENCE}.")
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not named weights")
        with archive:
            state = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz of Inception weights ({err}); FID "
                         f"needs {INCEPTION_REFERENCE}") from err
    source = state.get(_META_SOURCE_SHA256)
    return InceptionFeatures(variables_from_state_dict(check_state_dict(state, str(path))),
                             path=path, sha256=file_sha256(path),
                             source_sha256=None if source is None else str(source))


def _network_arg(network) -> InceptionFeatures:
    if isinstance(network, InceptionFeatures):
        return network
    if isinstance(network, str | Path):
        return load_inception_weights(network)
    raise TypeError(f"network must be InceptionFeatures or a weights path, got "
                    f"{type(network).__name__}")


# -- metrics -----------------------------------------------------------------------------------
def inception_metrics_from_features(
    f_real, f_fake, network: InceptionFeatures | str | Path, *, key: Any = None, kid: bool = True,
    kid_num_subsets: int = 100, kid_subset_size: int = 1000,
) -> dict[str, Any]:
    """FID (and KID) from pool3 features already computed with ``network.features``.

    The same as :func:`inception_metrics` for callers that reuse the real-data features
    (e.g. across training evaluations); ``network`` only supplies the identifying hashes.
    """
    net = _network_arg(network)
    f_real, f_fake = np.asarray(f_real), np.asarray(f_fake)
    for name, f in (("f_real", f_real), ("f_fake", f_fake)):
        if f.ndim != 2 or f.shape[1] != FEATURE_DIM or f.shape[0] < 2:
            raise ValueError(f"{name} must be (N, {FEATURE_DIM}) pool3 features with N >= 2, "
                             f"got shape {f.shape}")
    if kid:
        kid_subset_size = positive_int("kid_subset_size", kid_subset_size)
    out = feature_distances(f_real, f_fake, fd="fid", kd="kid" if kid else None, key=key,
                            num_subsets=kid_num_subsets, subset_size=kid_subset_size)
    return {**out, "inception": net.name, "inception_sha256": net.sha256,
            "inception_source_sha256": net.source_sha256}


def inception_metrics(
    real, fake, network: InceptionFeatures | str | Path, *, key: Any = None, kid: bool = True,
    kid_num_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 50,
) -> dict[str, Any]:
    """FID and KID between real and generated images on the FID Inception-v3's pool3 features.

    :func:`genjax.eval.features.feature_distances` with ``fd="fid"`` and ``kd="kid"``; the
    result holds:

    * ``fid``: Frechet distance between Gaussians fitted to the two feature sets (Heusel et al.
      2017, Eq. 6; float64, covariances with ``1 / (N - 1)``; biased upwards for small N, M),
      with ``fid_num_real`` = N and ``fid_num_fake`` = M;
    * ``kid`` / ``kid_std`` (if ``kid``): mean and spread of the unbiased cubic-kernel MMD^2
      over ``kid_num_subsets`` subsets of ``kid_subset_size`` rows (as used:
      ``min(kid_subset_size, N, M)``; Binkowski et al. 2018);
    * ``inception`` (``"inception-v3-fid"``), ``inception_sha256`` (the ``.npz``) and
      ``inception_source_sha256`` (the ``.pth`` it was converted from, when recorded).

    Protocol caveats: FID depends on the sample counts (papers use 50,000 generated images
    against the training set; 10,000 or fewer give visibly larger values), on the reference set
    (train vs test split) and on the resize (bilinear to 299 x 299 without antialiasing, as
    pytorch-fid; small images such as 28 x 28 MNIST are upsampled more than 10x). With
    pytorch-fid's weights the number is comparable to pytorch-fid's (float32 round-off apart;
    its sqrtm and this eigenvalue route agree to round-off), not bit-identical to the TF
    reference code, whose resize and convolutions differ slightly. Report the sample counts
    and ``inception_sha256`` with it.

    Args:
      real: ``(N, H, W, C)`` real images, floats in [0, 1], ``C`` 1 or 3.
      fake: ``(M, H', W', C')`` generated images, floats in [0, 1].
      network: :class:`InceptionFeatures` or the path of the converted weights.
      key: ``jax.random`` key or int seed fixing the KID subsets (needed when ``kid``).
      kid: whether to compute KID as well.
      kid_num_subsets: subsets for KID (100 in Binkowski et al.).
      kid_subset_size: rows per KID subset (1000 in Binkowski et al.), capped at ``min(N, M)``.
      batch_size: images per forward pass.

    Returns:
      The dict above (floats, ints and strings).

    References:
      Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
      Equilibrium", NeurIPS 2017, Eq. 6. Binkowski et al., "Demystifying MMD GANs", ICLR 2018,
      Sec. 4. Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
      CVPR 2016 (the network).
    """
    net = _network_arg(network)
    f_real = net.features(InceptionFeatures.check_images("real", real), batch_size=batch_size)
    f_fake = net.features(InceptionFeatures.check_images("fake", fake), batch_size=batch_size)
    return inception_metrics_from_features(f_real, f_fake, net, key=key, kid=kid,
                                           kid_num_subsets=kid_num_subsets,
                                           kid_subset_size=kid_subset_size)


# -- conversion --------------------------------------------------------------------------------
def convert(pth: str | Path, npz: str | Path) -> tuple[Path, str]:
    """Converts pytorch-fid's ``.pth`` state_dict to the ``.npz`` genjax loads (needs torch).

    If the file name carries a hash prefix as pytorch-fid's does (``...-6726825d.pth``), the
    file's SHA-256 must start with it. Returns the written path and its SHA-256.
    """
    try:
        import torch
    except ImportError as err:
        raise RuntimeError("converting a .pth needs PyTorch (pip install torch, for this "
                           "command only; genjax itself does not use it)") from err
    pth = Path(pth)
    if not pth.is_file():
        raise FileNotFoundError(f"{pth} not found: the converter needs {INCEPTION_REFERENCE}")
    source_sha256 = file_sha256(pth)
    prefix = re.search(r"-([0-9a-f]{8,64})\.pth$", pth.name)
    if prefix and not source_sha256.startswith(prefix.group(1)):
        raise ValueError(f"{pth} has SHA-256 {source_sha256}, which does not start with the "
                         f"{prefix.group(1)!r} in its name: a damaged download or another file")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    arrays = {k: v.detach().float().numpy() for k, v in state.items()
              if torch.is_tensor(v) and v.is_floating_point()}
    out = save_inception_weights(check_state_dict(arrays, str(pth)), npz,
                                 source_sha256=source_sha256)
    return out, file_sha256(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genjax.eval.inception",
                                     description="FID Inception-v3 weights for genjax.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="pytorch-fid .pth -> genjax .npz (needs torch)")
    conv.add_argument("pth", help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid)")
    conv.add_argument("npz", help="the .npz to write")
    args = parser.parse_args(argv)
    try:
        out, digest = convert(args.pth, args.npz)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
