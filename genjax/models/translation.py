"""Generators and discriminators for image-to-image translation: CycleGAN and StarGAN.

Architectures only (the objectives live in :mod:`genjax.losses.translation` and
:mod:`genjax.losses.adversarial`); images are ``(B, H, W, C)`` in [-1, 1], NHWC.

* :class:`ResnetGenerator` - Zhu et al. (2017), Appendix 7.2 (after Johnson et al. 2016):
  ``c7s1-F, d2F, d4F, R4F x num_blocks, u2F, uF, c7s1-C`` with instance normalisation
  (no affine parameters, as the reference ``norm='instance'``), reflection padding for the
  7x7 and residual convolutions, stride-2 3x3 convolutions down and transposed convolutions
  up, tanh output. ``num_downsamples`` (2 in the paper) and ``num_blocks`` (9 for 256x256,
  6 for 128x128) are configurable so that 8x8 digits fit.
* :class:`PatchGANDiscriminator` - Isola et al. (2017) / Zhu et al. (2017): 4x4 convolutions,
  ``num_layers`` of stride 2 then two of stride 1, zero padding 1, leaky ReLU 0.2, instance
  norm except on the first and last layer; one unbounded score per patch, ``(B, h, w, 1)``.
  ``num_layers=3`` is the 70x70 PatchGAN (:func:`patchgan_receptive_field`).
* :class:`StarGANGenerator` - Choi et al. (2018), Appendix (Table 4): the target domain label
  is tiled over the image and concatenated as extra input channels; 7x7 conv, two stride-2
  4x4 convs down, 6 residual blocks, two 4x4 transposed convs up, 7x7 conv, tanh; instance
  norm with affine parameters, zero padding. Options not in the paper (off by default):
  ``outer_kernel`` (the 7 of the first and last convs) and ``skip`` (U-Net skips: each upsampled
  map concatenated with the map of its size from the way down).
* :class:`StarGANDiscriminator` - Choi et al. (2018), Table 5: ``num_layers`` stride-2 4x4
  convs with leaky ReLU 0.01 and no normalisation (the WGAN-GP penalty is per example); an
  adversarial head (3x3 conv, one score per patch) and a domain-classification head (a conv
  covering the whole remaining map, ``K`` logits).

Padding details follow the PyTorch reference where Flax can express them; the transposed
convolutions use Flax's ``"SAME"`` padding, which doubles the size like the reference's
``padding=1, output_padding=1`` (CycleGAN) and ``padding=1`` (StarGAN) but may align the
kernel one pixel differently.

Precision: every module takes ``dtype`` (Flax's computation dtype, ``train.compute_dtype``;
float32 by default): inputs are cast to it and every convolution and normalisation runs in it,
while parameters stay float32 and instance-norm statistics are computed in float32 (Flax
promotes the reductions). Final outputs (images, scores, logits) are returned in float32, so
the losses and metrics built on them are computed in float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv, ConvTranspose


def _pad(x: jax.Array, p: int, mode: str) -> jax.Array:
    pad = ((0, 0), (p, p), (p, p), (0, 0))
    return jnp.pad(x, pad, mode="reflect" if mode == "reflect" else "constant")


def instance_norm(affine: bool, name: str | None = None, *, dtype: Any = jnp.float32
                  ) -> nn.InstanceNorm:
    """Per-example, per-channel normalisation over the spatial axes (Ulyanov et al. 2016).

    Always uses the statistics of the image at hand (no running averages), in training and
    evaluation alike; ``affine`` adds a learned scale and bias per channel (float32). The mean
    and variance are computed in float32 whatever ``dtype``; the result is returned in
    ``dtype``.
    """
    return nn.InstanceNorm(epsilon=1e-5, use_scale=affine, use_bias=affine, dtype=dtype,
                           name=name)


def _check_image(x: jax.Array, name: str = "x") -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must be images (B, H, W, C), got shape {x.shape}")


class ResnetBlock(nn.Module):
    """``x + IN(conv3(pad(ReLU(IN(conv3(pad(x)))))))`` with ``padding`` "reflect" or "zero"."""

    features: int
    padding: str = "reflect"
    affine: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dt = self.dtype
        x = x.astype(dt)
        h = Conv(self.features, (3, 3), padding="VALID", dtype=dt)(_pad(x, 1, self.padding))
        h = nn.relu(instance_norm(self.affine, dtype=dt)(h))
        h = Conv(self.features, (3, 3), padding="VALID", dtype=dt)(_pad(h, 1, self.padding))
        return x + instance_norm(self.affine, dtype=dt)(h)


class ResnetGenerator(nn.Module):
    """CycleGAN generator ``G: X -> Y``; input and output ``(B, H, W, C)`` in [-1, 1].

    ``H`` and ``W`` must be divisible by ``2**num_downsamples`` and, after downsampling, larger
    than 1 (reflection padding needs two pixels).
    """

    out_channels: int
    base_features: int = 64
    num_downsamples: int = 2
    num_blocks: int = 9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_image(x)
        factor = 2**self.num_downsamples
        if x.shape[1] % factor or x.shape[2] % factor or min(x.shape[1:3]) // factor < 2:
            raise ValueError(
                f"x of spatial size {x.shape[1:3]} must be divisible by 2**num_downsamples = "
                f"{factor} and leave at least 2x2 pixels; lower num_downsamples"
            )
        f, dt = self.base_features, self.dtype
        h = Conv(f, (7, 7), padding="VALID", dtype=dt)(_pad(x.astype(dt), 3, "reflect"))
        h = nn.relu(instance_norm(False, dtype=dt)(h))
        for i in range(self.num_downsamples):
            h = Conv(f * 2 ** (i + 1), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                        dtype=dt)(h)
            h = nn.relu(instance_norm(False, dtype=dt)(h))
        for _ in range(self.num_blocks):
            h = ResnetBlock(h.shape[-1], padding="reflect", affine=False, dtype=dt)(h)
        for i in reversed(range(self.num_downsamples)):
            h = ConvTranspose(f * 2**i, (3, 3), strides=(2, 2), padding="SAME", dtype=dt)(h)
            h = nn.relu(instance_norm(False, dtype=dt)(h))
        h = Conv(self.out_channels, (7, 7), padding="VALID", dtype=dt)(_pad(h, 3, "reflect"))
        return jnp.tanh(h).astype(jnp.float32)


def patchgan_receptive_field(num_layers: int) -> int:
    """Input pixels (per side) seen by one output score of :class:`PatchGANDiscriminator`.

    ``num_layers`` stride-2 4x4 convolutions, then two stride-1 4x4 convolutions:
    1 -> 16, 2 -> 34, 3 -> 70 (the "70x70 PatchGAN").
    """
    field = 1
    for stride in reversed([2] * num_layers + [1, 1]):
        field = (field - 1) * stride + 4
    return field


class PatchGANDiscriminator(nn.Module):
    """Scores each overlapping patch of an image as real or fake: ``(B, H, W, C) -> (B, h, w, 1)``.

    The output is unbounded (least-squares or Wasserstein scores, or logits); ``norm`` is
    ``"instance"`` (CycleGAN) or ``"none"``.
    """

    base_features: int = 64
    num_layers: int = 3
    norm: str = "instance"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_image(x)
        if self.norm not in ("instance", "none"):
            raise ValueError(f"norm={self.norm!r}; expected 'instance' or 'none'")
        f, pad, dt = self.base_features, ((1, 1), (1, 1)), self.dtype
        h = nn.leaky_relu(Conv(f, (4, 4), strides=(2, 2), padding=pad, dtype=dt)(
            x.astype(dt)), 0.2)
        for n in range(1, self.num_layers + 1):
            stride = 2 if n < self.num_layers else 1
            h = Conv(f * min(2**n, 8), (4, 4), strides=(stride, stride), padding=pad,
                        dtype=dt)(h)
            if self.norm == "instance":
                h = instance_norm(False, dtype=dt)(h)
            h = nn.leaky_relu(h, 0.2)
        if min(h.shape[1:3]) < 2:
            raise ValueError(
                f"x of spatial size {x.shape[1:3]} is too small for num_layers={self.num_layers}"
                " (the last 4x4 convolution needs a 2x2 map); lower num_layers"
            )
        return Conv(1, (4, 4), padding=pad, dtype=dt)(h).astype(jnp.float32)


class StarGANGenerator(nn.Module):
    """StarGAN generator ``G(x, c)``: images ``(B, H, W, C)`` and target labels ``c (B, K)``.

    ``c`` is a one-hot domain vector (or a multi-hot attribute vector), float; it is tiled to
    ``(B, H, W, K)`` and concatenated to the image channels (Choi et al. 2018, Sec. 3.1).
    ``outer_kernel`` (odd) is the size of the first and last convolutions (7 in the paper);
    ``skip`` adds U-Net skips (not in the paper).
    """

    out_channels: int
    base_features: int = 64
    num_downsamples: int = 2
    num_blocks: int = 6
    outer_kernel: int = 7
    skip: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
        _check_image(x)
        if c.ndim != 2 or c.shape[0] != x.shape[0]:
            raise ValueError(f"c must be label vectors (B, K) with B = {x.shape[0]}, got {c.shape}")
        factor = 2**self.num_downsamples
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(
                f"x of spatial size {x.shape[1:3]} must be divisible by 2**num_downsamples = "
                f"{factor}; lower num_downsamples"
            )
        if self.outer_kernel < 1 or self.outer_kernel % 2 == 0:
            raise ValueError(f"outer_kernel must be odd and >= 1 (7 in Choi et al.), got "
                             f"{self.outer_kernel}")
        f, dt = self.base_features, self.dtype
        tiled = jnp.broadcast_to(c[:, None, None, :].astype(dt), (*x.shape[:3], c.shape[1]))
        h = jnp.concatenate([x.astype(dt), tiled], axis=-1)
        k, p = self.outer_kernel, ((self.outer_kernel // 2,) * 2,) * 2
        h = Conv(f, (k, k), padding=p, use_bias=False, dtype=dt)(h)
        h = nn.relu(instance_norm(True, dtype=dt)(h))
        skips = []  # the map at each resolution before it is downsampled
        for i in range(self.num_downsamples):
            skips.append(h)
            h = Conv(f * 2 ** (i + 1), (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                        use_bias=False, dtype=dt)(h)
            h = nn.relu(instance_norm(True, dtype=dt)(h))
        for _ in range(self.num_blocks):
            h = ResnetBlock(h.shape[-1], padding="zero", affine=True, dtype=dt)(h)
        for i in reversed(range(self.num_downsamples)):
            h = ConvTranspose(f * 2**i, (4, 4), strides=(2, 2), padding="SAME",
                                 use_bias=False, dtype=dt)(h)
            h = nn.relu(instance_norm(True, dtype=dt)(h))
            if self.skip:  # U-Net: the map of this resolution from the way down
                h = jnp.concatenate([h, skips[i]], axis=-1)
        h = Conv(self.out_channels, (k, k), padding=p, use_bias=False, dtype=dt)(h)
        return jnp.tanh(h).astype(jnp.float32)


class StarGANDiscriminator(nn.Module):
    """StarGAN discriminator: ``x (B, H, W, C) -> (scores (B, h, w, 1), domain logits (B, K))``.

    ``h = H / 2**num_layers``; the classification head is a ``h x w`` convolution without
    padding (the reference's ``kernel_size = image_size / 2**repeat_num``).
    """

    num_domains: int
    base_features: int = 64
    num_layers: int = 6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        _check_image(x)
        factor = 2**self.num_layers
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(
                f"x of spatial size {x.shape[1:3]} must be divisible by 2**num_layers = {factor};"
                " lower num_layers"
            )
        dt = self.dtype
        h = x.astype(dt)
        for i in range(self.num_layers):
            h = Conv(self.base_features * 2**i, (4, 4), strides=(2, 2),
                        padding=((1, 1), (1, 1)), dtype=dt)(h)
            h = nn.leaky_relu(h, 0.01)
        scores = Conv(1, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, dtype=dt,
                         name="adversarial")(h)
        logits = Conv(self.num_domains, h.shape[1:3], padding="VALID", use_bias=False,
                         dtype=dt, name="classification")(h)
        return (scores.astype(jnp.float32),
                logits.reshape(x.shape[0], self.num_domains).astype(jnp.float32))
