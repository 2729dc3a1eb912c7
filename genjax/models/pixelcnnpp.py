"""PixelCNN++ (Salimans et al. 2017): shifted convolutions, gated resnets, U-Net-like passes.

Maps ``x (B, H, W, C)`` (floating, scaled to [-1, 1] by the caller, C = 3 or 1, H and W
multiples of 4) to the parameters of a discretized logistic mixture with M components per
pixel: ``(B, H, W, 10 M)`` for RGB, ``(B, H, W, 3 M)`` for grey, in the layout read by
:func:`genjax.losses.discretized_logistic_mixture_nll` (M mixture logits, then per channel
means, log-scales and, for RGB, the channel-coupling coefficients). Because the RGB channels of
a pixel are coupled inside the likelihood (Sec. 2.2), the parameters at pixel (i, j) depend
only on pixels strictly before (i, j) in raster order, with every channel of (i, j) excluded.

Causality comes from two streams instead of masks (like the Gated PixelCNN's two stacks):
``u`` sees the rows strictly above (down-shifted convolutions, kernel 2x3), ``ul`` sees the
rows above and the pixels to the left (down-right-shifted convolutions, kernel 2x2), at three
resolutions linked by strided convolutions (down, Sec. 2.3) and strided transposed
convolutions (up), with every up-pass activation fed to the matching down-pass block (the
short-cut connections of Sec. 2.4 and Fig. 2).

Weight normalization (Salimans & Kingma 2016) is optional and without the data-dependent
initialization of the reference code; dropout (Sec. 2.5) is active only with ``train=True``
and then needs ``rngs={"dropout": key}``.

Precision: every module's ``dtype`` (float32 or bfloat16) is that of its convolutions, dense
layers and activations; parameters (and the weight normalization of float32 kernels) stay
float32 and the mixture parameters are returned in float32 for the likelihood.

References:
  Salimans, Karpathy, Chen & Kingma, "PixelCNN++: Improving the PixelCNN with Discretized
  Logistic Mixture Likelihood and Other Modifications", ICLR 2017, arXiv:1701.05517.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv, ConvTranspose
from genjax.models.pixelcnn import as_float32, down_shift, validate_images, validate_labels


def right_shift(x: jax.Array) -> jax.Array:
    """Shifts a (B, H, W, F) map right by one column (zeros enter on the left)."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def concat_elu(x: jax.Array) -> jax.Array:
    """``elu([x, -x])`` along the feature axis (doubles the features; the paper's code)."""
    return nn.elu(jnp.concatenate([x, -x], axis=-1))


def _maybe_weight_norm(layer: nn.Module, weight_norm: bool) -> nn.Module:
    """``layer`` weight-normalized, or as is.

    The ``WeightNorm`` keeps its default ``dtype=None``: the norm is taken on the float32 kernel
    and the layer casts the result to its own ``dtype``. (A bfloat16 ``WeightNorm`` would also
    store its bfloat16 output as the parameter at ``init``.)
    """
    return nn.WeightNorm(layer) if weight_norm else layer


class ShiftedConv(nn.Module):
    """Convolution whose output at (i, j) only reads rows <= i (and, for "down_right", cols <= j).

    ``shift="down"``: kernel (kh, kw), padded kh - 1 rows on top and (kw - 1) / 2 columns on each
    side. ``shift="down_right"``: padded kh - 1 rows on top and kw - 1 columns on the left.
    """

    features: int
    kernel_size: tuple[int, int]
    shift: str = "down"
    strides: int = 1
    weight_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        cols = ((kw - 1) // 2, (kw - 1) // 2) if self.shift == "down" else (kw - 1, 0)
        x = jnp.pad(x, ((0, 0), (kh - 1, 0), cols, (0, 0)))
        conv = Conv(
            self.features,
            (kh, kw),
            strides=self.strides,
            padding="VALID",
            dtype=self.dtype,
            name="conv",
        )
        return _maybe_weight_norm(conv, self.weight_norm)(x)


class ShiftedConvTranspose(nn.Module):
    """Stride-2 transposed convolution that doubles H and W and keeps the shift's causality.

    Output row r reads input row r // 2; for "down" output column c reads input columns
    (c - 1) // 2 .. (c + 1) // 2, for "down_right" input column c // 2 (the crops of the paper's code).
    """

    features: int
    kernel_size: tuple[int, int]
    shift: str = "down"
    weight_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _, height, width, _ = x.shape
        kw = self.kernel_size[1]
        conv = ConvTranspose(
            self.features,
            tuple(self.kernel_size),
            strides=(2, 2),
            padding="VALID",
            dtype=self.dtype,
            name="conv",
        )
        y = _maybe_weight_norm(conv, self.weight_norm)(x)
        left = (kw - 1) // 2 if self.shift == "down" else 0
        return y[:, : 2 * height, left : left + 2 * width]


class GatedResnet(nn.Module):
    """``x + a * sigmoid(b)``, ``[a, b] = conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(aux)))))``.

    ``aux`` is the short-cut input (the other stream or the up-pass activation); ``cond`` a
    per-example conditioning vector (e.g. a class embedding) added before the gate.
    """

    shift: str = "down"
    dropout_rate: float = 0.5
    weight_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, aux=None, cond=None, *, train: bool = False):
        features, wn, dt = x.shape[-1], self.weight_norm, self.dtype
        kernel = (2, 3) if self.shift == "down" else (2, 2)
        h = ShiftedConv(features, kernel, self.shift, weight_norm=wn, dtype=dt, name="conv_in")(
            concat_elu(x)
        )
        if aux is not None:
            h = h + _maybe_weight_norm(nn.Dense(features, dtype=dt, name="nin_aux"), wn)(
                concat_elu(aux)
            )
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(concat_elu(h))
        h = ShiftedConv(
            2 * features, kernel, self.shift, weight_norm=wn, dtype=dt, name="conv_out"
        )(h)
        if cond is not None:
            cond_dense = nn.Dense(2 * features, use_bias=False, dtype=dt, name="cond")
            h = h + cond_dense(cond)[:, None, None]
        a, b = jnp.split(h, 2, axis=-1)
        return x + a * nn.sigmoid(b)


class PixelCNNPlusPlus(nn.Module):
    """PixelCNN++ network (Fig. 2): three resolutions up, three down, discretized-logistic head.

    Attributes:
      features: feature maps of every layer (160 for CIFAR-10 in the paper).
      num_resnet: gated resnet blocks per resolution in the up pass (5); the down pass uses
        ``num_resnet`` at the lowest resolution and ``num_resnet + 1`` at the others, so that
        it consumes each up-pass activation exactly once.
      num_mixtures: M, logistic mixture components (10).
      dropout_rate: dropout inside each gated resnet (0.5 for CIFAR-10), used when ``train``.
      weight_norm: weight-normalized convolutions and 1x1 layers (Salimans & Kingma 2016).
      num_classes: 0 (unconditional) or the number of labels for class-conditional models.
      dtype: computation dtype (float32 or bfloat16); parameters and the returned mixture
        parameters are float32.

    Call: ``apply(variables, x, labels=None, train=False, rngs={"dropout": key})``.

    References:
      Salimans et al. (2017), Sections 2.2-2.5, Figure 2.
    """

    features: int = 160
    num_resnet: int = 5
    num_mixtures: int = 10
    dropout_rate: float = 0.5
    weight_norm: bool = True
    num_classes: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, labels: jax.Array | None = None, *, train: bool = False
    ) -> jax.Array:
        validate_images(x)
        batch, height, width, channels = x.shape
        if channels not in (1, 3):
            raise ValueError(f"x must have 1 (grey) or 3 (RGB) channels, got shape {x.shape}")
        if height % 4 or width % 4:
            raise ValueError(
                f"x height and width must be multiples of 4 (two 2x downsamplings), got {x.shape}"
            )
        validate_labels(labels, batch, self.num_classes)
        if self.num_mixtures < 1 or self.num_resnet < 1 or not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"need num_mixtures >= 1, num_resnet >= 1, 0 <= dropout_rate < 1; got {self.num_mixtures}, "
                f"{self.num_resnet}, {self.dropout_rate}"
            )
        f, wn, dt = self.features, self.weight_norm, self.dtype
        cond = None
        if self.num_classes > 0:
            cond = jax.nn.one_hot(labels, self.num_classes, dtype=dt)

        def block(shift, name):
            return GatedResnet(shift, self.dropout_rate, wn, dt, name=name)

        # A channel of ones lets the network tell the zero padding from black pixels.
        x = x.astype(dt)
        xp = jnp.concatenate([x, jnp.ones((batch, height, width, 1), x.dtype)], axis=-1)
        u = [down_shift(ShiftedConv(f, (2, 3), "down", 1, wn, dt, name="u_init")(xp))]
        ul = [
            down_shift(ShiftedConv(f, (1, 3), "down", 1, wn, dt, name="ul_init_up")(xp))
            + right_shift(ShiftedConv(f, (2, 1), "down_right", 1, wn, dt, name="ul_init_left")(xp))
        ]
        for level in range(3):  # up pass
            for r in range(self.num_resnet):
                u.append(block("down", f"up{level}_u{r}")(u[-1], cond=cond, train=train))
                ul.append(block("down_right", f"up{level}_ul{r}")(ul[-1], u[-1], cond, train=train))
            if level < 2:
                u.append(ShiftedConv(f, (2, 3), "down", 2, wn, dt, name=f"down{level}_u")(u[-1]))
                ul.append(
                    ShiftedConv(f, (2, 2), "down_right", 2, wn, dt, name=f"down{level}_ul")(ul[-1])
                )

        hu, hul = u.pop(), ul.pop()
        for level in range(3):  # down pass, consuming the up-pass activations in reverse
            for r in range(self.num_resnet + (level > 0)):
                hu = block("down", f"dn{level}_u{r}")(hu, u.pop(), cond, train=train)
                hul = block("down_right", f"dn{level}_ul{r}")(
                    hul, jnp.concatenate([hu, ul.pop()], axis=-1), cond, train=train
                )
            if level < 2:
                hu = ShiftedConvTranspose(f, (2, 3), "down", wn, dt, name=f"upsample{level}_u")(hu)
                hul = ShiftedConvTranspose(
                    f, (2, 2), "down_right", wn, dt, name=f"upsample{level}_ul"
                )(hul)
        assert not u and not ul, "every up-pass activation is used once"
        per_mixture = 10 if channels == 3 else 3
        head = _maybe_weight_norm(
            nn.Dense(per_mixture * self.num_mixtures, dtype=dt, name="head"), wn
        )
        return as_float32(head(nn.elu(hul)))
