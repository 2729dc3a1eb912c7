"""Synthetic image domains with a known ground-truth translation, made from digits / MNIST.

Every image ``x`` of a base dataset has one *view* per domain, ``T_d(x)``:

* ``original`` - ``x`` itself;
* ``inverted`` - colour inversion ``max_value - x``;
* ``rot90`` - rotated by 90 degrees counter-clockwise;
* ``thick`` - strokes thickened by one grey dilation with the 3x3 cross (each pixel becomes
  the maximum of itself and its 4 neighbours; outside the image does not count).

The translation ``T_a(x) -> T_b(x)`` is therefore known for every pair of domains, so a
translation model trained on *unpaired* views can be scored against ground truth (pixel
error), while its training never sees a pair: :mod:`genjax.methods.translation` gives each
domain an independent random subset of the base images at each step (disjoint parts of the
shuffled batch), and keeps the pairing only for evaluation.

Registered dataset names (through :func:`genjax.data.load_dataset`), for every base in
``digits``, ``mnist``, ``fashion_mnist``:

* ``<base>_domains`` - all views of all base images, labels = digit (class) labels: the
  training set of an independent classifier that measures label preservation on every
  domain (``genjax train classifier_digits_domains``);
* ``<base>_domains_by_domain`` - the same images, labels = domain index into
  :data:`DOMAINS`: the training set of the independent domain classifier (StarGAN's
  domain-classification accuracy; ``genjax train classifier_digits_domains_by_domain``).

Layout: example-major, example ``j`` is view ``j % 4`` (``DOMAINS[j % 4]``) of base example
``j // 4``, so every prefix of a split (``max_train_examples``, ``train[:1000]``) keeps all
domains of the base images it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data.arrays import ArrayDataset

DOMAINS = ("original", "inverted", "rot90", "thick")
BASES = ("digits", "mnist", "fashion_mnist")
DATASETS: dict[str, tuple[str, str]] = {
    **{f"{b}_domains": (b, "digit") for b in BASES},
    **{f"{b}_domains_by_domain": (b, "domain") for b in BASES},
}
"""Registered name -> (base dataset, which label: ``"digit"`` or ``"domain"``)."""


def check_domains(domains: Sequence[str], *, name: str = "domains", minimum: int = 1) -> tuple:
    """Returns ``domains`` as a tuple if it lists distinct names of :data:`DOMAINS`."""
    if isinstance(domains, str) or not isinstance(domains, Sequence):
        raise ValueError(f"{name} must be a sequence of domain names from {DOMAINS}, got "
                         f"{domains!r}")
    domains = tuple(domains)
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise ValueError(f"{name} holds unknown domains {unknown}; expected names from {DOMAINS}")
    if len(set(domains)) != len(domains) or len(domains) < minimum:
        raise ValueError(f"{name} must list at least {minimum} distinct domains, got {domains}")
    return domains


def to_domain(images, domain: str, *, max_value: float = 255):
    """The view ``T_domain(images)`` of original images (NumPy or JAX; jit-able for JAX).

    Args:
      images: original images ``(..., H, W, C)`` (uint8 pixels or floats), NumPy or JAX.
      domain: one of :data:`DOMAINS`.
      max_value: the white level for ``inverted`` (255 for 8-bit pixels, 1.0 for [0, 1]).

    Returns:
      The view, same shape (``rot90`` needs ``H == W`` for that), dtype and array library.
    """
    xp = jnp if isinstance(images, jax.Array) else np
    if domain == "original":
        return images
    if domain == "inverted":
        return (max_value - images).astype(images.dtype)
    if domain == "rot90":
        return xp.rot90(images, k=1, axes=(-3, -2))
    if domain == "thick":
        pad = [(0, 0)] * (images.ndim - 3) + [(1, 1), (1, 1), (0, 0)]
        p = xp.pad(images, pad, mode="edge")  # edge padding: outside pixels never win the max
        h, w = images.shape[-3], images.shape[-2]
        centre = p[..., 1 : h + 1, 1 : w + 1, :]
        shifted = (p[..., : h, 1 : w + 1, :], p[..., 2:, 1 : w + 1, :],
                   p[..., 1 : h + 1, : w, :], p[..., 1 : h + 1, 2:, :])
        out = centre
        for s in shifted:
            out = xp.maximum(out, s)
        return out
    raise ValueError(f"domain={domain!r}; expected one of {DOMAINS}")


class DomainViews(NamedTuple):
    """Paired views of base images: ``images[i, k] = T_{domains[k]}(base[i])``.

    Attributes:
      images: ``(N, K, H, W, C)`` views, the base's dtype.
      labels: ``(N,)`` int32 digit (class) labels of the base images, or ``None``.
      domains: the ``K`` domain names, in order.
    """

    images: np.ndarray
    labels: np.ndarray | None
    domains: tuple[str, ...]


def make_domain_views(
    images: np.ndarray, labels: np.ndarray | None, domains: Sequence[str] = DOMAINS, *,
    max_value: float = 255,
) -> DomainViews:
    """All views of ``images`` (original, ``(N, H, W, C)``, square) in ``domains``, paired."""
    domains = check_domains(domains)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square images (N, H, H, C), got shape {images.shape}")
    views = np.stack([to_domain(images, d, max_value=max_value) for d in domains], axis=1)
    return DomainViews(views, None if labels is None else np.asarray(labels, np.int32), domains)


def flatten_views(views: DomainViews) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Example-major ``(images (N*K, H, W, C), digit labels, domain labels)``: one row per view.

    Row ``j`` is view ``j % K`` of base image ``j // K``; domain labels index ``views.domains``.
    """
    n, k = views.images.shape[:2]
    images = views.images.reshape(n * k, *views.images.shape[2:])
    digits = None if views.labels is None else np.repeat(views.labels, k).astype(np.int32)
    return images, digits, np.tile(np.arange(k, dtype=np.int32), n)


def domain_dataset(name: str, base: ArrayDataset) -> ArrayDataset:
    """The registered ``<base>_domains[_by_domain]`` dataset ``name`` built from a loaded split
    ``base`` of its base dataset (see the module docstring; :func:`genjax.data.load_dataset`
    loads the base and calls this)."""
    if name not in DATASETS:
        raise ValueError(f"unknown domain dataset {name!r}; expected one of {sorted(DATASETS)}")
    _, label = DATASETS[name]
    views = make_domain_views(base.images, base.labels, DOMAINS,
                              max_value=2**base.num_bits - 1)
    images, digits, domain_labels = flatten_views(views)
    labels = digits if label == "digit" else domain_labels
    images.flags.writeable = False
    labels.flags.writeable = False
    return ArrayDataset(
        name=name, split=base.split, images=images, labels=labels, num_bits=base.num_bits,
        num_classes=base.num_classes if label == "digit" else len(DOMAINS),
    )
