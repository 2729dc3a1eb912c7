"""Masked convolutions, PixelCNN and Gated PixelCNN (van den Oord et al. 2016b, 2016c).

Architectures only (the likelihoods live in :mod:`genjax.losses.autoregressive`). Every model
here maps a batch of images ``x (B, H, W, C)``, floating point and already scaled by the caller
(e.g. ``2 v / 255 - 1`` for 8-bit data, ``{0, 1}`` for binarized data), to the parameters of
``p(x_i | x_<i)`` for every sub-pixel at once:

* ``output="categorical"``: logits ``(B, H, W, C, num_values)`` of a ``num_values``-way softmax
  (256 for 8-bit data), for :func:`genjax.losses.categorical_nll`.
* ``output="bernoulli"``: logits ``(B, H, W, C)`` of one Bernoulli per sub-pixel (binarized
  data, C = 1), for :func:`genjax.losses.bernoulli_nll`.

Ordering: pixels in raster order (row by row, left to right) and, within a pixel, the colour
channels in order R -> G -> B (channel 0 first). The output for sub-pixel ``(i, j, c)`` depends
only on pixels before ``(i, j)`` and on channels ``< c`` of pixel ``(i, j)`` (Section 3.4 of
van den Oord et al. 2016b). Feature maps are split into ``C`` contiguous groups, group ``g``
belonging to colour ``g``; :func:`causal_mask` builds the masks that enforce this.

NaNs in ``x`` are not checked (that would need the values, unavailable under ``jit``).

Precision: every module has a Flax ``dtype`` attribute, the dtype of its activations and
convolutions (``train.compute_dtype``: float32 by default, bfloat16 for mixed precision).
Parameters are float32 whatever ``dtype`` (kernels are cast to ``dtype`` where they are used)
and the output logits are returned in float32, so the likelihoods are computed in float32.

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016,
  arXiv:1601.06759 (2016b).
  van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
  Generation with PixelCNN Decoders", NeurIPS 2016, arXiv:1606.05328 (2016c).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.models.convolution import Conv, conv2d

OUTPUTS = ("categorical", "bernoulli")
MASK_TYPES = ("A", "B")


def validate_images(x: jax.Array, name: str = "x", channels: int | None = None) -> None:
    """Raises ValueError unless ``x`` is a floating (B, H, W, C) batch (with C = ``channels``)."""
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(
            f"{name} must be a (B, H, W, C) image batch, got shape {getattr(x, 'shape', type(x))}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{name} must be floating point (scale the pixels first), got dtype {x.dtype}"
        )
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels (color_channels), got shape {x.shape}"
        )


def validate_labels(labels: jax.Array | None, batch: int, num_classes: int) -> None:
    """Raises ValueError unless ``labels`` is an integer (B,) array when ``num_classes > 0``."""
    if num_classes <= 0:
        if labels is not None:
            raise ValueError("labels given but the model is unconditional (num_classes=0)")
        return
    if labels is None:
        raise ValueError(f"labels (B,) are required when num_classes={num_classes}")
    if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"labels must be integers of shape ({batch},), got {labels.dtype}{labels.shape}"
        )


def check_output(output: str, num_values: int) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r}; expected one of {OUTPUTS}")
    if output == "categorical" and num_values < 2:
        raise ValueError(f"num_values must be >= 2 for a categorical output, got {num_values}")


def check_features(name: str, features: int, color_channels: int) -> None:
    if color_channels < 1 or features < color_channels:
        raise ValueError(
            f"{name}={features} must be at least color_channels={color_channels} (one feature group per colour)"
        )


def channel_groups(features: int, color_channels: int, num_gates: int = 1) -> np.ndarray:
    """Colour group of each feature: ``C`` contiguous blocks (group g -> colour g).

    With ``num_gates > 1`` the features are ``num_gates`` stacked gates of ``features /
    num_gates`` features each, every gate laid out in ``C`` contiguous blocks, so that
    ``jnp.split(y, num_gates, -1)`` gives gates whose features align colour by colour.
    """
    if features % num_gates:
        raise ValueError(f"features={features} must be a multiple of num_gates={num_gates}")
    n = features // num_gates
    return np.tile(np.arange(n) * color_channels // n, num_gates)


def causal_mask(
    kernel_size: tuple[int, int],
    in_features: int,
    out_features: int,
    mask_type: str,
    color_channels: int = 1,
    num_gates: int = 1,
) -> np.ndarray:
    """Mask ``(kh, kw, in, out)`` of a raster-order masked convolution (PixelRNN Sec. 3.4).

    Positions above the centre row, and left of the centre in the centre row, are kept; positions
    after the centre are zeroed. At the centre, input feature group ``g_in`` may feed output group
    ``g_out`` iff ``g_in < g_out`` (type A, used once, on the image) or ``g_in <= g_out`` (type B,
    every later layer). With ``color_channels = 1`` type A drops the centre, type B keeps it.

    Args:
      kernel_size: (kh, kw), both odd so that the centre is the current pixel.
      in_features, out_features: numbers of input and output features.
      mask_type: "A" or "B".
      color_channels: C, the number of colour groups (3 for RGB, 1 for grey or binary).
      num_gates: the outputs are this many stacked gates (see :func:`channel_groups`).

    Returns:
      float32 array of 0s and 1s, shape (kh, kw, in_features, out_features).
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type={mask_type!r}; expected one of {MASK_TYPES}")
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel_size must be odd in both dimensions, got {kernel_size}")
    mask = np.zeros((kh, kw, in_features, out_features), np.float32)
    mask[: kh // 2] = 1.0
    mask[kh // 2, : kw // 2] = 1.0
    g_in = channel_groups(in_features, color_channels)[:, None]
    g_out = channel_groups(out_features, color_channels, num_gates)[None, :]
    mask[kh // 2, kw // 2] = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    return mask


def as_float32(x: jax.Array) -> jax.Array:
    """``x`` cast up to at least float32 (bfloat16 -> float32): outputs that feed a likelihood."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def down_shift(x: jax.Array) -> jax.Array:
    """Shifts a (B, H, W, F) map down by one row (zeros enter at the top)."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


class MaskedConv2D(nn.Module):
    """2-D convolution whose kernel is multiplied by :func:`causal_mask` ('SAME' padding).

    Attributes:
      features: number of output features.
      kernel_size: (kh, kw), odd.
      mask_type: "A" (excludes the current sub-pixel) or "B" (includes it).
      color_channels: C, colour groups of the raster/R->G->B ordering.
      num_gates: the output is ``num_gates`` stacked gates (split with ``jnp.split``).
      use_bias: add a learned bias.
      dtype: the computation dtype: ``x`` and the masked kernel are cast to it (the kernel and
        bias parameters are float32), and so is the output.
    """

    features: int
    kernel_size: tuple[int, int]
    mask_type: str = "B"
    color_channels: int = 1
    num_gates: int = 1
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        mask = causal_mask(
            tuple(self.kernel_size),
            x.shape[-1],
            self.features,
            self.mask_type,
            self.color_channels,
            self.num_gates,
        )
        kernel = self.param("kernel", nn.initializers.lecun_normal(), mask.shape, jnp.float32)
        # Masked in float32, then cast: the masked weights stay exact zeros in any dtype.
        y = conv2d(x.astype(self.dtype), (kernel * mask).astype(self.dtype), mask=mask)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


class OutputHead(nn.Module):
    """ReLU, 1x1 masked conv (B), ReLU, 1x1 masked conv (B) to the output logits (PixelRNN Table 1).

    Computes in ``dtype``; the logits are returned in float32 (they feed the likelihood).
    """

    color_channels: int
    output: str = "categorical"
    num_values: int = 256
    features: int = 1024
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        c, k, dt = self.color_channels, self.num_values, self.dtype
        h = nn.relu(
            MaskedConv2D(self.features, (1, 1), "B", c, dtype=dt, name="hidden")(nn.relu(h))
        )
        n = c * k if self.output == "categorical" else c
        out = as_float32(MaskedConv2D(n, (1, 1), "B", c, dtype=dt, name="logits")(h))
        return out.reshape(*out.shape[:3], c, k) if self.output == "categorical" else out


class PixelCNN(nn.Module):
    """PixelCNN: 7x7 type-A conv, residual blocks of type-B masked convs, 1x1 output convs.

    Each residual block (PixelRNN Fig. 5) maps 2h features through ReLU, 1x1 conv to h, ReLU,
    ``kernel_size`` masked conv, ReLU, 1x1 conv back to 2h, and adds its input. Stacked masked
    convolutions leave a *blind spot* above-right of each pixel (Gated PixelCNN Fig. 1).

    Attributes:
      features: h (the paper uses h = 128 for CIFAR-10), at least C.
      num_blocks: residual blocks (15 in the paper).
      color_channels: C.
      output: "categorical" (logits (B, H, W, C, num_values)) or "bernoulli" ((B, H, W, C)).
      num_values: softmax size (256 for 8-bit data).
      output_features: width of the hidden 1x1 output layer (1024 in the paper).
      kernel_size, first_kernel_size: of the blocks' masked convs (3) and of the first layer (7).
      dtype: computation dtype (float32 or bfloat16); parameters and the returned logits are
        float32.

    References:
      van den Oord et al. (2016b), Sections 3.4-3.5, Figure 5 and Table 1.
    """

    features: int = 128
    num_blocks: int = 15
    color_channels: int = 1
    output: str = "categorical"
    num_values: int = 256
    output_features: int = 1024
    kernel_size: int = 3
    first_kernel_size: int = 7
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.color_channels
        validate_images(x, channels=c)
        check_output(self.output, self.num_values)
        check_features("features", self.features, c)
        k0, k, f, dt = self.first_kernel_size, self.kernel_size, self.features, self.dtype
        h = MaskedConv2D(2 * f, (k0, k0), "A", c, dtype=dt, name="input_conv")(x)
        for b in range(self.num_blocks):
            r = MaskedConv2D(f, (1, 1), "B", c, dtype=dt, name=f"block{b}_reduce")(nn.relu(h))
            r = MaskedConv2D(f, (k, k), "B", c, dtype=dt, name=f"block{b}_conv")(nn.relu(r))
            h = h + MaskedConv2D(2 * f, (1, 1), "B", c, dtype=dt, name=f"block{b}_expand")(
                nn.relu(r)
            )
        return OutputHead(
            c, self.output, self.num_values, self.output_features, self.dtype, name="head"
        )(h)


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN: vertical and horizontal stacks without blind spot, optional class label.

    Layer k computes ``y = tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)`` (Eqs. 2 and 4) in both
    stacks, where ``h`` is a learned embedding of the class label (Eq. 4, ``V^T h``). The
    vertical stack convolves over the rows above with a ``(k//2 + 1, k)`` kernel; its output,
    shifted down one row, feeds the horizontal stack through a 1x1 conv (Fig. 2). The
    horizontal stack convolves over the current row up to the current pixel (a ``(1, k)``
    masked conv: type A in the first layer, type B after) and has a residual connection from
    the second layer on. The first layer uses ``first_kernel_size`` (7), later ones
    ``kernel_size`` (3). Every earlier pixel within the receptive field is seen.

    Attributes:
      features: p, features of both stacks (at least C).
      num_layers: gated layers (15 in the paper, 20 for ImageNet).
      color_channels, output, num_values, output_features: as in :class:`PixelCNN`.
      num_classes: 0 for an unconditional model, else the number of labels.
      embed_features: size of the label embedding h.
      dtype: computation dtype (float32 or bfloat16); parameters and the returned logits are
        float32.

    Call: ``apply(variables, x, labels)`` with labels (B,) int when ``num_classes > 0``.

    References:
      van den Oord et al. (2016c), Sections 2.1-2.3 (Eqs. 2 and 4), Figures 1-2.
    """

    features: int = 128
    num_layers: int = 15
    color_channels: int = 1
    output: str = "categorical"
    num_values: int = 256
    output_features: int = 1024
    kernel_size: int = 3
    first_kernel_size: int = 7
    num_classes: int = 0
    embed_features: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        c, p, dt = self.color_channels, self.features, self.dtype
        validate_images(x, channels=c)
        validate_labels(labels, x.shape[0], self.num_classes)
        check_output(self.output, self.num_values)
        check_features("features", p, c)
        for name, size in (
            ("kernel_size", self.kernel_size),
            ("first_kernel_size", self.first_kernel_size),
        ):
            if size < 1 or size % 2 == 0:
                raise ValueError(f"{name} must be odd and positive, got {size}")
        cond = None
        if self.num_classes > 0:
            cond = nn.Embed(
                self.num_classes, self.embed_features, dtype=dt, name="label_embedding"
            )(labels)

        def gate(pre, layer, stack):
            if cond is not None:  # V_f^T h and V_g^T h, broadcast over positions.
                pre = (
                    pre
                    + nn.Dense(2 * p, use_bias=False, dtype=dt, name=f"{stack}{layer}_cond")(cond)[
                        :, None, None
                    ]
                )
            a, b = jnp.split(pre, 2, axis=-1)
            return jnp.tanh(a) * nn.sigmoid(b)

        v = h = x.astype(dt)
        for layer in range(self.num_layers):
            k = self.first_kernel_size if layer == 0 else self.kernel_size
            pad = k // 2
            v_pre = Conv(
                2 * p,
                (pad + 1, k),
                padding=((pad, 0), (pad, pad)),
                dtype=dt,
                name=f"vertical{layer}",
            )(v)
            # Shifted down one row, the vertical stack only sees rows strictly above.
            link = Conv(2 * p, (1, 1), dtype=dt, name=f"vertical_to_horizontal{layer}")(
                down_shift(v_pre)
            )
            h_pre = MaskedConv2D(
                2 * p, (1, k), "A" if layer == 0 else "B", c, 2, dtype=dt, name=f"horizontal{layer}"
            )(h)
            v = gate(v_pre, layer, "vertical")
            out = MaskedConv2D(p, (1, 1), "B", c, dtype=dt, name=f"horizontal{layer}_out")(
                gate(h_pre + link, layer, "horizontal")
            )
            h = out if layer == 0 else h + out
        return OutputHead(c, self.output, self.num_values, self.output_features, dt, name="head")(h)
