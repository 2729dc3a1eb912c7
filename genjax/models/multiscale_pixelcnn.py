"""Parallel multiscale PixelCNN (Reed et al. 2017): a base PixelCNN and group upsamplers.

An image ``x (B, H, W, C)`` is factorized into groups of pixels (Sec. 3, Fig. 2). With S
scales, the base image is ``x[:, ::2**S, ::2**S]`` (resolution ``H / 2**S``), modelled in
raster order by a :class:`~genjax.models.pixelcnn.GatedPixelCNN`. Each 2x upscaling, from the
image ``x_{s-1}`` to ``x_s = x[:, ::f, ::f]`` (``f = 2**(S - s)``), splits the 2x2 blocks of
``x_s`` into four groups by position: 1 upper-left (which *is* ``x_{s-1}``), 2 upper-right,
3 lower-left, 4 lower-right. Groups 2, 3, 4 are generated in that order, each by its own
upsampling network, all pixels of a group in parallel:

    p(x) = p(x_0) prod_{s=1..S} prod_{g=2..4} p(x_s^(g) | x_s^(1..g-1)).

Within a group, pixels are conditionally independent given the earlier groups (the paper's
central assumption). The colour channels of each pixel stay autoregressive (R -> G -> B)
through a 1x1 channel-masked head; this within-pixel ordering is this module's choice. For a
fixed base resolution ``b x b`` and ``H = W = b 2**S``, sampling takes ``b**2 C`` base-model
steps (independent of the image size) and ``3 S`` upsampler context evaluations, each followed
by ``C`` cheap head evaluations: O(log N) sequential network evaluations for N pixels.

The upsampler reads the earlier groups of its scale as a space-to-depth stack
``(B, H_s / 2, W_s / 2, (g - 1) C)`` through a convolutional ResNet; the paper's exact
conditioning network (and its sizes) differs, this keeps its interface and dependency
structure.

Precision: the modules' ``dtype`` (float32 or bfloat16) is that of their convolutions and
activations; parameters and every returned logit are float32.

References:
  Reed, van den Oord, Kalchbrenner, Gomez Colmenarejo, Wang, Chen, Belov & de Freitas,
  "Parallel Multiscale Autoregressive Density Estimation", ICML 2017, arXiv:1703.03664,
  Section 3 and Figure 2 (pixel groups).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv
from genjax.models.pixelcnn import (
    GatedPixelCNN,
    MaskedConv2D,
    as_float32,
    check_output,
    validate_images,
    validate_labels,
)

# (row, column) offset of groups 1-4 inside each 2x2 block of a scale's image.
GROUP_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


class PixelGroup(NamedTuple):
    """One step of the multiscale generation order, in full-resolution coordinates.

    The group's pixels are ``x[:, row_offset::stride, col_offset::stride]``. ``scale`` is 0
    for the base image (``group`` 1, generated pixel by pixel) and 1..S for the upscalings.
    """

    scale: int
    group: int
    stride: int
    row_offset: int
    col_offset: int


def multiscale_groups(height: int, width: int, num_scales: int) -> tuple[PixelGroup, ...]:
    """The generation order: the base image, then groups 2, 3, 4 of every scale, coarse to fine.

    Every pixel of an ``height x width`` image belongs to exactly one returned group.

    Args:
      height, width: full image size, multiples of ``2**num_scales``.
      num_scales: S >= 1, the number of 2x upscalings.

    Returns:
      ``1 + 3 S`` groups; entry 0 is the base image.
    """
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    factor = 2**num_scales
    if height % factor or width % factor or height < factor or width < factor:
        raise ValueError(
            f"height and width must be positive multiples of 2**num_scales = {factor}, got {height}x{width}"
        )
    groups = [PixelGroup(0, 1, factor, 0, 0)]
    for scale in range(1, num_scales + 1):
        f = 2 ** (num_scales - scale)  # pixel spacing of x_s in full-resolution coordinates
        for g in (2, 3, 4):
            dr, dc = GROUP_OFFSETS[g - 1]
            groups.append(PixelGroup(scale, g, 2 * f, dr * f, dc * f))
    return tuple(groups)


def extract_group(x: jax.Array, group: PixelGroup) -> jax.Array:
    """The pixels of ``group``: (B, H / stride, W / stride, C)."""
    return x[:, group.row_offset :: group.stride, group.col_offset :: group.stride]


def insert_group(x: jax.Array, group: PixelGroup, values: jax.Array) -> jax.Array:
    """``x`` with the pixels of ``group`` replaced by ``values`` (for a sampler's canvas)."""
    return x.at[:, group.row_offset :: group.stride, group.col_offset :: group.stride].set(values)


def known_groups(x: jax.Array, group: PixelGroup) -> jax.Array:
    """The context of an upscaling group: its scale's groups 1..g-1, stacked on the channel axis.

    Returns (B, H / stride, W / stride, (g - 1) C); group 1 (the lower-resolution image) first.
    """
    if group.scale == 0:
        raise ValueError("the base image (scale 0) has no earlier groups")
    f = group.stride // 2
    parts = [
        x[:, dr * f :: group.stride, dc * f :: group.stride]
        for dr, dc in GROUP_OFFSETS[: group.group - 1]
    ]
    return jnp.concatenate(parts, axis=-1)


class GroupUpsampler(nn.Module):
    """Predicts one group of pixels from the earlier groups of its scale (Reed et al. Sec. 3).

    ``known`` (B, h, w, (g - 1) C) goes through a 3x3 conv and ``num_blocks`` residual blocks
    (ReLU, 3x3 conv, ReLU, 3x3 conv); a 1x1 layer then adds a type-A channel-masked 1x1 conv
    of the group's own values ``target`` (B, h, w, C), so that channel c of a pixel sees that
    pixel's channels < c and nothing else of the group; a type-B masked 1x1 conv gives the
    logits (B, h, w, C, num_values) or (B, h, w, C), computed in ``dtype`` and returned in
    float32.
    """

    features: int = 64
    num_blocks: int = 2
    color_channels: int = 1
    output: str = "categorical"
    num_values: int = 256
    output_features: int = 256
    num_classes: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, known: jax.Array, target: jax.Array, labels: jax.Array | None = None
    ) -> jax.Array:
        c, k, dt = self.color_channels, self.num_values, self.dtype
        f = Conv(self.features, (3, 3), dtype=dt, name="context_in")(known)
        if self.num_classes > 0:
            embed = nn.Embed(self.num_classes, self.features, dtype=dt, name="label_embedding")
            f = f + embed(labels)[:, None, None]
        for b in range(self.num_blocks):
            r = Conv(self.features, (3, 3), dtype=dt, name=f"block{b}_conv1")(nn.relu(f))
            f = f + Conv(self.features, (3, 3), dtype=dt, name=f"block{b}_conv2")(nn.relu(r))
        h = nn.Dense(self.output_features, dtype=dt, name="context_out")(nn.relu(f))
        if c > 1:
            h = h + MaskedConv2D(
                self.output_features, (1, 1), "A", c, dtype=dt, name="channels_in"
            )(target)
        n = c * k if self.output == "categorical" else c
        out = as_float32(MaskedConv2D(n, (1, 1), "B", c, dtype=dt, name="logits")(nn.relu(h)))
        return out.reshape(*out.shape[:3], c, k) if self.output == "categorical" else out


class MultiscalePixelCNN(nn.Module):
    """Base Gated PixelCNN at ``H / 2**S`` plus one :class:`GroupUpsampler` per (scale, group).

    ``apply(variables, x, labels)`` computes, in parallel (teacher forcing), the logits of every
    group of :func:`multiscale_groups` in that order: entry 0 ``(B, H/2**S, W/2**S, C, K)`` for
    the base image, then ``(B, H/stride, W/stride, C, K)`` per upscaling group (``(..., C)``
    without the last axis for ``output="bernoulli"``). Scoring ``extract_group(x, group)`` with
    each entry and summing gives ``-log p(x)`` in nats. A sampler uses the methods
    :meth:`base_logits` and :meth:`group_logits` (``apply(..., method=...)``).

    Attributes:
      num_scales: S, number of 2x upscalings.
      color_channels, output, num_values: as in :class:`~genjax.models.pixelcnn.PixelCNN`.
      base_features, base_layers: of the base Gated PixelCNN.
      features, num_blocks, output_features: of each upsampler.
      num_classes: 0, or the number of labels for class-conditional models.
      dtype: computation dtype (float32 or bfloat16) of the base model and the upsamplers;
        parameters and every returned logit are float32.

    References:
      Reed et al. (2017), Section 3.
    """

    num_scales: int = 2
    color_channels: int = 1
    output: str = "categorical"
    num_values: int = 256
    base_features: int = 64
    base_layers: int = 8
    features: int = 64
    num_blocks: int = 2
    output_features: int = 256
    num_classes: int = 0
    dtype: Any = jnp.float32

    def setup(self):
        check_output(self.output, self.num_values)
        common = dict(
            color_channels=self.color_channels,
            output=self.output,
            num_values=self.num_values,
            output_features=self.output_features,
            num_classes=self.num_classes,
            dtype=self.dtype,
        )
        self.base = GatedPixelCNN(self.base_features, self.base_layers, **common)
        self.upsamplers = [
            GroupUpsampler(self.features, self.num_blocks, **common)
            for _ in range(3 * self.num_scales)
        ]

    def base_logits(self, x_base: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Logits of the base image ``x_base (B, H / 2**S, W / 2**S, C)`` (raster order)."""
        return self.base(x_base, labels)

    def group_logits(
        self, index: int, known: jax.Array, target: jax.Array, labels: jax.Array | None = None
    ) -> jax.Array:
        """Logits of upscaling group ``multiscale_groups(...)[index]`` (``index`` >= 1).

        Args:
          index: position of the group in the generation order, 1 .. 3 S.
          known: ``known_groups(x, group)``, (B, h, w, (g - 1) C).
          target: the group's own values ``extract_group(x, group)`` (B, h, w, C); only channels
            < c of the same pixel reach channel c (a sampler may pass zeros for unknown ones).
          labels: (B,) int when ``num_classes > 0``.
        """
        if not 1 <= index <= 3 * self.num_scales:
            raise ValueError(f"index must be in 1..{3 * self.num_scales}, got {index}")
        c = self.color_channels
        validate_images(known, "known")
        validate_images(target, "target", c)
        validate_labels(labels, target.shape[0], self.num_classes)
        group = (index - 1) % 3 + 2
        if known.shape[-1] != (group - 1) * c or known.shape[:3] != target.shape[:3]:
            raise ValueError(
                f"known must have shape {target.shape[:3] + ((group - 1) * c,)} for group {group}, got {known.shape}"
            )
        return self.upsamplers[index - 1](known, target, labels)

    def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> tuple[jax.Array, ...]:
        validate_images(x, channels=self.color_channels)
        groups = multiscale_groups(x.shape[1], x.shape[2], self.num_scales)
        outputs = [self.base_logits(extract_group(x, groups[0]), labels)]
        for index, group in enumerate(groups[1:], start=1):
            outputs.append(
                self.group_logits(index, known_groups(x, group), extract_group(x, group), labels)
            )
        return tuple(outputs)
