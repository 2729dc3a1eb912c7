"""Generators, discriminators/critics and encoders for the adversarial family.

Architectures only (the objectives live in :mod:`genjax.losses.adversarial`):

* :class:`MLPGenerator` / :class:`MLPDiscriminator` - Goodfellow et al. (2014) style, for toy
  2-D data and small images; optional class conditioning (Mirza & Osindero 2014) by
  concatenating a learned label embedding; the discriminator with leaky ReLU or
  :class:`Maxout` units and optional dropout (the paper's MNIST discriminator).
* :class:`DCGANGenerator` / :class:`DCGANDiscriminator` - Radford et al. (2016): transposed
  convolutions with batch norm and ReLU in G, strided convolutions with leaky ReLU in D, no
  pooling, tanh output. Batch norm statistics under data parallelism: the step is jitted over
  the *global* batch, so batch norm reduces over every device's examples (synchronized batch
  norm), exactly as on one device. Critics for WGAN-GP must not use batch norm (the penalty
  is per example): ``norm="layer"`` or ``"none"`` there (Gulrajani et al. 2017, Sec. 4).
* :class:`BiGANEncoder` and :class:`JointDiscriminator` - Donahue et al. (2017): an encoder
  E(x) and a discriminator on (x, z) pairs.

Generators map ``z (B, latent_dim)`` to images ``(B, H, W, C)`` in [-1, 1]; discriminators map
images to one logit (or critic score) per example, shape ``(B,)``.

Precision: every module takes ``dtype``, the dtype of its computation (Flax's convention;
``bfloat16`` under ``train.compute_dtype=bfloat16``), passed to each Dense, Conv, norm and
embedding layer; parameters and batch-norm statistics stay float32 (batch norm reduces in
float32). Final outputs (images, logits, scores, codes) are returned in float32: they feed
the losses, the gradient penalty's interpolation and the sample metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv, ConvTranspose

NORMS = ("batch", "layer", "none")


def _normalize(kind: str, train: bool, name: str | None = None, dtype: Any = jnp.float32):
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=dtype, name=name)
    if kind == "layer":
        return nn.LayerNorm(dtype=dtype, name=name)
    if kind == "none":
        return lambda h: h
    raise ValueError(f"norm={kind!r}; expected one of {NORMS}")


def _with_label(
    h: jax.Array, labels: jax.Array | None, num_classes: int, dim: int, dtype: Any = jnp.float32
) -> jax.Array:
    """Concatenates a learned embedding of ``labels`` to the features ``h`` (in ``dtype``)."""
    if num_classes <= 0:
        return h
    if labels is None:
        raise ValueError("this model is class-conditional: pass labels (int array, shape (B,))")
    h = h.astype(dtype)
    emb = nn.Embed(num_classes, dim, dtype=dtype, name="label_embedding")(labels)
    emb = emb.reshape(emb.shape[:1] + (1,) * (h.ndim - 2) + emb.shape[-1:])
    return jnp.concatenate([h, jnp.broadcast_to(emb, h.shape[:-1] + emb.shape[-1:])], axis=-1)


class MLPGenerator(nn.Module):
    """Fully connected generator; ``output_shape`` is ``(D,)`` for vectors or ``(H, W, C)``."""

    output_shape: tuple[int, ...]
    hidden: Sequence[int] = (256, 256)
    num_classes: int = 0
    output_activation: str = "tanh"  # "tanh" for images in [-1, 1], "none" for toy data
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = True):
        h = _with_label(z, labels, self.num_classes, 16, self.dtype)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
        out = nn.Dense(math.prod(self.output_shape), dtype=self.dtype)(h)
        out = jnp.tanh(out) if self.output_activation == "tanh" else out
        return out.reshape(z.shape[0], *self.output_shape).astype(jnp.float32)


ACTIVATIONS = ("leaky_relu", "maxout")


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): the max over ``pieces`` affine maps per unit.

    ``h_i = max_j (x W_ij + b_ij)`` for ``i < units``, ``j < pieces``: one Dense layer of
    ``units * pieces`` outputs, reshaped to ``(..., units, pieces)`` and maximized over the last
    axis (pieces of one unit are adjacent, as pylearn2's ``Maxout`` layer groups them).
    """

    units: int
    pieces: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.units < 1 or self.pieces < 1:
            raise ValueError(f"Maxout needs units >= 1 and pieces >= 1, got {self.units}, "
                             f"{self.pieces}")
        h = nn.Dense(self.units * self.pieces, dtype=self.dtype)(x)
        return h.reshape(*h.shape[:-1], self.units, self.pieces).max(axis=-1)


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator, one logit per example.

    ``activation="leaky_relu"`` (slope 0.2) or ``"maxout"`` (``pieces`` linear pieces per unit,
    the discriminator of Goodfellow et al. 2014). ``input_dropout`` / ``hidden_dropout`` are
    drop *rates* on the flattened input and on every hidden layer's output (Goodfellow et al.
    2014's MNIST D: 0.2 and 0.5, i.e. pylearn2's include probabilities 0.8 and 0.5), inverted
    dropout (kept units scaled by ``1 / (1 - rate)`` in training), off with ``train=False``;
    with a rate > 0 and ``train=True`` the caller passes ``rngs={"dropout": key}``.
    """

    hidden: Sequence[int] = (256, 256)
    num_classes: int = 0
    activation: str = "leaky_relu"
    pieces: int = 5
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = True):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}; expected one of {ACTIVATIONS}")
        h = x.reshape(x.shape[0], -1)
        h = nn.Dropout(self.input_dropout, deterministic=not train)(h)
        h = _with_label(h, labels, self.num_classes, 16, self.dtype)
        for width in self.hidden:
            if self.activation == "maxout":
                h = Maxout(width, self.pieces, dtype=self.dtype)(h)
            else:
                h = nn.leaky_relu(nn.Dense(width, dtype=self.dtype)(h), 0.2)
            h = nn.Dropout(self.hidden_dropout, deterministic=not train)(h)
        return nn.Dense(1, dtype=self.dtype)(h)[:, 0].astype(jnp.float32)


class DCGANGenerator(nn.Module):
    """Radford et al. (2016), Fig. 1: project, reshape, then 2x transposed-conv stages."""

    output_shape: tuple[int, int, int]
    base_features: int = 64
    num_stages: int = 2
    num_classes: int = 0
    norm: str = "batch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = True):
        height, width, channels = self.output_shape
        factor = 2 ** self.num_stages
        if height % factor or width % factor:
            raise ValueError(
                f"DCGANGenerator: image size {height}x{width} must be divisible by {factor} "
                f"(2 ** num_stages)"
            )
        h = _with_label(z, labels, self.num_classes, 16, self.dtype)
        features = self.base_features * 2 ** (self.num_stages - 1)
        h = nn.Dense((height // factor) * (width // factor) * features, use_bias=False,
                     dtype=self.dtype)(h)
        h = nn.relu(_normalize(self.norm, train, dtype=self.dtype)(h))
        h = h.reshape(z.shape[0], height // factor, width // factor, features)
        for stage in range(self.num_stages - 1):
            features //= 2
            h = ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
                                 dtype=self.dtype)(h)
            h = nn.relu(_normalize(self.norm, train, name=f"norm_{stage}", dtype=self.dtype)(h))
        h = ConvTranspose(channels, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
        return jnp.tanh(h).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
    """Strided convolutions, leaky ReLU 0.2, no norm on the first layer (Radford et al. 2016)."""

    base_features: int = 64
    num_stages: int = 2
    num_classes: int = 0
    norm: str = "batch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = True):
        h = _with_label(x, labels, self.num_classes, 8, self.dtype)
        features = self.base_features
        for stage in range(self.num_stages):
            h = Conv(features, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            if stage > 0:
                h = _normalize(self.norm, train, name=f"norm_{stage}", dtype=self.dtype)(h)
            h = nn.leaky_relu(h, 0.2)
            features *= 2
        h = h.reshape(h.shape[0], -1)
        return nn.Dense(1, dtype=self.dtype)(h)[:, 0].astype(jnp.float32)


class BiGANEncoder(nn.Module):
    """E(x) -> z for BiGAN (deterministic, as in Donahue et al. 2017)."""

    latent_dim: int
    hidden: Sequence[int] = (512, 512)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = True):
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = nn.leaky_relu(nn.Dense(width, dtype=self.dtype)(h), 0.2)
        return nn.Dense(self.latent_dim, dtype=self.dtype)(h).astype(jnp.float32)


class JointDiscriminator(nn.Module):
    """D(x, z): separate feature paths for x and z, joined, one logit per pair."""

    hidden: Sequence[int] = (512, 512)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, z, *, train: bool = True):
        dense = lambda width: nn.Dense(width, dtype=self.dtype)
        hx = nn.leaky_relu(dense(self.hidden[0])(x.reshape(x.shape[0], -1)), 0.2)
        hz = nn.leaky_relu(dense(self.hidden[0])(z), 0.2)
        h = jnp.concatenate([hx, hz], axis=-1)
        for width in self.hidden[1:]:
            h = nn.leaky_relu(dense(width)(h), 0.2)
        return dense(1)(h)[:, 0].astype(jnp.float32)
