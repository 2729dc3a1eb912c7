"""Encoders and decoders for variational autoencoders (Kingma & Welling 2014).

Architectures only: an encoder maps images ``(B, H, W, C)`` to the mean and log-variance of a
diagonal Gaussian q(z|x); a decoder maps latents ``(..., latent_dim)`` to the parameters of
p(x|z): Bernoulli logits (binary data) or a Gaussian mean with a log-variance (continuous
data). The losses that turn these into an ELBO live in :mod:`genjax.losses.variational`.

Decoders accept any number of leading axes on ``z`` (e.g. ``(S, B, latent_dim)`` for S
importance samples), so an estimator never has to reshape.

Precision: every module takes ``dtype``, the dtype of its computation (Flax's convention;
``bfloat16`` under ``train.compute_dtype=bfloat16``); parameters stay float32. The outputs
that feed a likelihood (the encoder's mean and log-variance, the decoder's logits, mean and
log-variance) are returned in float32, so the losses and their reductions run in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv, ConvTranspose

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "gelu": nn.gelu, "swish": nn.swish}
LIKELIHOODS = ("bernoulli", "gaussian")


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLPEncoder(nn.Module):
    """Fully connected Gaussian encoder: flatten, hidden layers, then (mean, log_var)."""

    latent_dim: int
    hidden: Sequence[int] = (200, 200)
    act: str = "tanh"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = activation(self.act)(nn.Dense(width, dtype=self.dtype)(h))
        mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, dtype=self.dtype, name="log_var")(h)
        return mean.astype(jnp.float32), log_var.astype(jnp.float32)


class ConvEncoder(nn.Module):
    """Strided-convolution Gaussian encoder (each stage halves the resolution)."""

    latent_dim: int
    features: Sequence[int] = (32, 64)
    dense: int = 256
    act: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        for f in self.features:
            h = activation(self.act)(
                Conv(f, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            )
        h = h.reshape(h.shape[0], -1)
        h = activation(self.act)(nn.Dense(self.dense, dtype=self.dtype)(h))
        mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")(h)
        log_var = nn.Dense(self.latent_dim, dtype=self.dtype, name="log_var")(h)
        return mean.astype(jnp.float32), log_var.astype(jnp.float32)


class _DecoderHead(nn.Module):
    """Turns decoder features into the likelihood's parameters over ``image_shape``.

    The parameters are returned in float32 whatever the computation dtype: they feed the
    log-likelihood (:mod:`genjax.losses.variational`).
    """

    image_shape: tuple[int, int, int]
    likelihood: str

    @nn.compact
    def __call__(self, out: jax.Array) -> dict[str, jax.Array]:
        out = out.astype(jnp.float32)
        if self.likelihood == "bernoulli":
            return {"logits": out}
        # Gaussian: the network gives the mean; one learned log-variance per pixel (a float32
        # parameter used as it is: it is a likelihood parameter, not an activation).
        log_var = self.param("log_var", nn.initializers.zeros, self.image_shape)
        return {"mean": out, "log_var": jnp.broadcast_to(log_var, out.shape)}


class MLPDecoder(nn.Module):
    """Fully connected decoder; returns ``{"logits"}`` or ``{"mean", "log_var"}``."""

    image_shape: tuple[int, int, int]
    hidden: Sequence[int] = (200, 200)
    act: str = "tanh"
    likelihood: str = "bernoulli"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> dict[str, jax.Array]:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={self.likelihood!r}; expected one of {LIKELIHOODS}")
        h = z
        for width in self.hidden:
            h = activation(self.act)(nn.Dense(width, dtype=self.dtype)(h))
        out = nn.Dense(math.prod(self.image_shape), dtype=self.dtype, name="out")(h)
        out = out.reshape(*z.shape[:-1], *self.image_shape)
        return _DecoderHead(tuple(self.image_shape), self.likelihood)(out)


class ConvDecoder(nn.Module):
    """Transposed-convolution decoder mirroring :class:`ConvEncoder`.

    The image height and width must be divisible by ``2 ** len(features)``.
    """

    image_shape: tuple[int, int, int]
    features: Sequence[int] = (64, 32)
    dense: int = 256
    act: str = "relu"
    likelihood: str = "bernoulli"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> dict[str, jax.Array]:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={self.likelihood!r}; expected one of {LIKELIHOODS}")
        height, width, channels = self.image_shape
        factor = 2 ** len(self.features)
        if height % factor or width % factor:
            raise ValueError(
                f"ConvDecoder: image size {height}x{width} must be divisible by {factor} "
                f"(2 ** len(features)); use fewer stages or the MLP decoder"
            )
        lead = z.shape[:-1]
        h = z.reshape(-1, z.shape[-1])
        h = activation(self.act)(nn.Dense(self.dense, dtype=self.dtype)(h))
        h0, w0 = height // factor, width // factor
        h = activation(self.act)(nn.Dense(h0 * w0 * self.features[0], dtype=self.dtype)(h))
        h = h.reshape(-1, h0, w0, self.features[0])
        for f in self.features:
            h = activation(self.act)(
                ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            )
        out = Conv(channels, (3, 3), padding="SAME", dtype=self.dtype, name="out")(h)
        out = out.reshape(*lead, height, width, channels)
        return _DecoderHead(tuple(self.image_shape), self.likelihood)(out)


class VAE(nn.Module):
    """An encoder and a decoder; ``encode`` and ``decode`` are the two methods a loss needs.

    It computes nothing itself: the computation dtype is the ``dtype`` of its encoder and
    decoder (set both alike).
    """

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.encoder(x)

    def decode(self, z: jax.Array) -> dict[str, jax.Array]:
        return self.decoder(z)

    def __call__(self, x: jax.Array, z: jax.Array):
        """Used once for initialisation: touches every parameter."""
        return self.encode(x), self.decode(z)
