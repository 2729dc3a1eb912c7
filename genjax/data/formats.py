"""Parsers of the original dataset files: IDX (MNIST, Fashion-MNIST) and AMAT (binarized MNIST).

Both are strict: a file that does not have exactly the documented layout raises ``ValueError``
naming the file and what was wrong, rather than yielding a silently wrong array.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

# IDX type codes (LeCun et al., "THE IDX FILE FORMAT" on the MNIST page): only unsigned bytes
# occur in MNIST and Fashion-MNIST.
_IDX_UBYTE = 0x08
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n,)

AMAT_IMAGE_SIZE = 28 * 28


def _read_bytes(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":  # gzip magic
            with gzip.GzipFile(fileobj=f) as g:
                return g.read()
        return f.read()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (gzip-compressed or not).

    Layout: two zero bytes, the type code ``0x08`` (unsigned byte), the number of dimensions
    ``d``, then ``d`` big-endian int32 sizes and the data in row-major order.

    Args:
      path: the ``.gz`` or uncompressed IDX file.

    Returns:
      uint8 array of the stored shape, e.g. ``(60000, 28, 28)`` for ``train-images-idx3-ubyte``.

    Raises:
      ValueError: bad magic, a type other than unsigned bytes, or a size that does not match.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (expected 2 zero bytes, got {raw[:4]!r})")
    if raw[2] != _IDX_UBYTE:
        raise ValueError(f"{path}: IDX type code must be 0x08 (unsigned byte); got {raw[2]:#04x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions, {len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: IDX shape {shape} needs {expected} bytes; the file holds {len(raw)} "
            "(truncated or corrupt download?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Reads matching IDX image and label files.

    Returns:
      ``(images, labels)``: uint8 ``(n, rows, cols, 1)`` and int32 ``(n,)``.

    Raises:
      ValueError: wrong magic numbers, or different example counts.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected an IDX image file (magic {IDX_IMAGES_MAGIC}, 3 dimensions); "
            f"got {images.ndim} dimensions"
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected an IDX label file (magic {IDX_LABELS_MAGIC}, 1 dimension); "
            f"got {labels.ndim} dimensions"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images[..., None], labels.astype(np.int32)


def read_amat(path: str | os.PathLike, image_size: int = AMAT_IMAGE_SIZE) -> np.ndarray:
    """Reads a binarized MNIST ``.amat`` text file (Larochelle & Murray 2011).

    Layout: one image per line, ``image_size`` values each ``0`` or ``1`` separated by
    whitespace, in row-major order. Blank lines are ignored.

    Args:
      path: the ``.amat`` file.
      image_size: values per line (784 for 28 x 28 images).

    Returns:
      uint8 array ``(n, 28, 28, 1)`` with values in ``{0, 1}`` (for ``image_size=784``), else
      ``(n, image_size)``.

    Raises:
      ValueError: a character other than ``0``, ``1`` or whitespace, two values not separated,
        or a line with a number of values other than ``image_size`` (the line is named).

    References:
      H. Larochelle, I. Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.
    """
    a = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    digit = (a == ord("0")) | (a == ord("1"))
    newline = a == ord("\n")
    space = (a == ord(" ")) | (a == ord("\t")) | (a == ord("\r"))
    bad = ~(digit | newline | space)
    if bad.any():
        pos = int(np.argmax(bad))
        line = int(np.count_nonzero(newline[:pos])) + 1
        raise ValueError(
            f"{path}: line {line}: only 0/1 values separated by whitespace are allowed; "
            f"found byte {bytes(a[pos : pos + 1])!r}"
        )
    if (digit[1:] & digit[:-1]).any():
        pos = int(np.argmax(digit[1:] & digit[:-1]))
        line = int(np.count_nonzero(newline[:pos])) + 1
        raise ValueError(f"{path}: line {line}: values must be single 0/1 separated by spaces")
    # Values per line: cumulative digit counts at each line end.
    ends = np.flatnonzero(newline)
    if len(a) and not newline[-1]:
        ends = np.append(ends, len(a) - 1)
    cum = np.concatenate([[0], np.cumsum(digit, dtype=np.int64)])
    per_line = np.diff(np.concatenate([[0], cum[ends + 1]]))
    wrong = np.flatnonzero((per_line != 0) & (per_line != image_size))
    if len(wrong):
        i = int(wrong[0])
        raise ValueError(
            f"{path}: line {i + 1} holds {per_line[i]} values; expected {image_size} per line"
        )
    values = (a[digit] - ord("0")).astype(np.uint8)
    if image_size == AMAT_IMAGE_SIZE:
        return values.reshape(-1, 28, 28, 1)
    return values.reshape(-1, image_size)
