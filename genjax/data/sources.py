"""Where the original files of genjax's own datasets come from, and how they are verified.

Sources, in order: the ``manual_dir`` the user names (and nothing else if one is named), else
TFDS's default manual folder ``<data_dir>/downloads/manual``, else a download through the TFDS
download manager from the canonical URLs (mirrors tried in order). Every file is checked
against its SHA-256 in :data:`EXPECTED_SHA256` before use; a test may replace the entries.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.parse
from pathlib import Path

# SHA-256 of the original archives, as published by TensorFlow Datasets, torchvision and
# others (see the dataset cards); keyed by dataset, then by the original file name.
EXPECTED_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "binarized_mnist": {
        "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
        "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
        "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    },
}

# Base URLs, tried in order. MNIST: the CVDF mirror TFDS uses, then the one torchvision uses
# (LeCun's own page often refuses downloads). Fashion-MNIST and binarized MNIST: the originals.
BASE_URLS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "binarized_mnist": ("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",),
}


class DataUnavailableError(FileNotFoundError):
    """The files a dataset is built from are neither on disk nor downloadable."""


class ChecksumError(ValueError):
    """A source file's SHA-256 differs from the expected one."""


def unreachable(url: str, *, timeout: float = 5.0) -> str | None:
    """``None`` if a TCP connection to ``url``'s host opens within ``timeout`` s, else why not.

    Without network, connections are often silently dropped and a download would hang for
    minutes; this probe turns that into an immediate, explained error.
    """
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as err:
        return f"cannot connect to {parsed.hostname}:{port} within {timeout:g} s ({err})"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str, *, origin: str) -> Path:
    """Returns ``path`` if its SHA-256 is ``expected``; else raises :class:`ChecksumError`."""
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(
            f"{path.name} from {origin} has sha256 {got}, expected {expected}: a different or "
            f"corrupt file (re-download it; the original files are byte-identical everywhere)."
        )
    return path


def missing_files_message(
    dataset: str, files: dict[str, str], folder: Path, *, reason: str, causes: list[str] = ()
) -> str:
    """Explains which files to fetch by hand, with their SHA-256 and where to put them."""
    width = max(len(f) for f in files)
    lines = [f"Dataset {dataset!r} cannot be prepared: {reason}."]
    lines += ["It is built from these original files (name, sha256):"]
    lines += [f"  {name:<{width}}  {sha}" for name, sha in files.items()]
    lines += [
        f"Download them (e.g. from {BASE_URLS[dataset][0]}) and put them in {folder}",
        "(found there automatically), or in any folder DIR passed as "
        "load_dataset(..., manual_dir=DIR) or on the command line as --set data.manual_dir=DIR.",
    ]
    if causes:
        lines += ["Download errors:"] + [f"  {c}" for c in causes]
    return "\n".join(lines)


def locate_sources(
    dataset: str, dl_manager, *, manual_dir: str | os.PathLike | None, allow_download: bool
) -> dict[str, Path]:
    """Finds (or downloads) and verifies every original file of ``dataset``.

    Args:
      dataset: a key of :data:`EXPECTED_SHA256`.
      dl_manager: the ``tfds.download.DownloadManager`` of the prepare call (downloads).
      manual_dir: the user's folder of original files: if given, the only source (no
        download). ``None``: TFDS's default ``<download_dir>/manual``, then a download.
      allow_download: downloading is allowed (``load_dataset(..., download=True)``).

    Returns:
      ``{file name: verified local path}``.

    Raises:
      DataUnavailableError: a file is missing and cannot be downloaded; the message lists each
        file with its SHA-256 and the folder to put it in.
      ChecksumError: a file is present (or downloaded) but its bytes differ.
    """
    expected = EXPECTED_SHA256[dataset]
    if manual_dir is not None:
        folder = Path(manual_dir).expanduser()
    else:
        folder = Path(dl_manager.download_dir) / "manual"
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name, sha in expected.items():
        path = folder / name
        if path.is_file():
            found[name] = verify(path, sha, origin=f"manual_dir {folder}")
        else:
            missing.append(name)
    if not missing:
        return found
    if manual_dir is not None or not allow_download:
        reason = (
            f"manual_dir={folder} lacks {', '.join(missing)}"
            if manual_dir is not None
            else "download=False and the files are not in the manual folder"
        )
        raise DataUnavailableError(missing_files_message(dataset, expected, folder, reason=reason))
    causes: list[str] = []
    for name in missing:
        for base in BASE_URLS[dataset]:
            url = base + name
            problem = unreachable(url)
            if problem:  # fail fast offline instead of waiting on the download manager's retries
                causes.append(f"{url}: {problem}")
                continue
            try:
                path = Path(dl_manager.download(url))
            except Exception as err:  # network errors come in many types
                causes.append(f"{url}: {type(err).__name__}: {err}")
                continue
            found[name] = verify(path, expected[name], origin=url)
            break
    if len(found) < len(expected):
        raise DataUnavailableError(
            missing_files_message(
                dataset, expected, folder, reason="the download failed (offline?)", causes=causes
            )
        )
    return found
