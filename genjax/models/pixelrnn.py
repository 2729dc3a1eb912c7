"""PixelRNN: Row LSTM and Diagonal BiLSTM layers and the model around them (van den Oord et al. 2016b).

Same input/output conventions and R -> G -> B ordering as :mod:`genjax.models.pixelcnn`: the
model maps ``x (B, H, W, C)`` to logits ``(B, H, W, C, num_values)`` (categorical) or
``(B, H, W, C)`` (bernoulli). The LSTM gates ``[o, f, i, g]`` of Eq. 3 are computed with the
same colour-group layout in every gate (``num_gates=4`` of
:class:`~genjax.models.pixelcnn.MaskedConv2D`), so the elementwise LSTM update keeps the channel
ordering of the type-B input-to-state convolution; the state-to-state convolution only reads
states of strictly earlier pixels.

Precision: the modules' ``dtype`` (float32 or bfloat16) is that of the convolutions, the gates
and the hidden states; the LSTM *cell* states are carried in float32 whatever ``dtype``, since
``c = f c' + i g`` accumulates along a whole row or diagonal and bfloat16's 8-bit mantissa would
round it at every step. Parameters and the returned logits are float32.

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016,
  arXiv:1601.06759, Sections 3.1-3.4 (Eq. 3) and Table 1.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.models.convolution import conv2d
from genjax.models.pixelcnn import (
    MaskedConv2D,
    OutputHead,
    check_features,
    check_output,
    down_shift,
    validate_images,
)

LAYERS = ("row_lstm", "diagonal_bilstm")


def _lstm_update(pre: jax.Array, c_prev: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eq. 3: ``[o, f, i, g] = [sigmoid, sigmoid, sigmoid, tanh](pre)``, ``c = f c' + i g``, ``h = o tanh(c)``.

    The gates are computed in the dtype of ``pre``, the cell state ``c`` in that of ``c_prev``
    (float32 under mixed precision) and ``h`` in that of ``pre``.
    """
    o, f, i, g = jnp.split(pre, 4, axis=-1)
    acc = c_prev.dtype
    c = nn.sigmoid(f).astype(acc) * c_prev + (nn.sigmoid(i) * jnp.tanh(g)).astype(acc)
    return c, nn.sigmoid(o) * jnp.tanh(c).astype(pre.dtype)


def _initial_state(shape: tuple[int, ...], dtype: Any) -> tuple[jax.Array, jax.Array]:
    """Zero (cell, hidden) states: the cell in at least float32, the hidden state in ``dtype``."""
    return jnp.zeros(shape, jnp.promote_types(dtype, jnp.float32)), jnp.zeros(shape, dtype)


def skew(x: jax.Array) -> jax.Array:
    """Shifts row i of a (B, H, W, F) map right by i: (B, H, W + H - 1, F), zeros elsewhere (Sec. 3.2)."""
    _, height, width, _ = x.shape
    rows = np.arange(height)[:, None]
    cols = np.arange(width + height - 1)[None, :] - rows  # source column of each skewed position
    valid = (cols >= 0) & (cols < width)
    gathered = x[:, rows, np.clip(cols, 0, width - 1)]
    return jnp.where(valid[None, :, :, None], gathered, 0.0)


def unskew(y: jax.Array, width: int) -> jax.Array:
    """Inverse of :func:`skew`: (B, H, W + H - 1, F) -> (B, H, W, F)."""
    height = y.shape[1]
    rows = np.arange(height)[:, None]
    return y[:, rows, rows + np.arange(width)[None, :]]


class RowLSTM(nn.Module):
    """Row LSTM (Sec. 3.1): processes the image row by row with a triangular receptive field.

    Input-to-state: a masked convolution (type B) of width 3 along the row (the paper's "k x 1",
    k = 3), for all rows at once.
    State-to-state: a width-3 convolution of the previous row's hidden state, computed row by
    row with ``lax.scan``. Returns hidden states (B, H, W, hidden) in ``dtype``.
    """

    hidden: int
    color_channels: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, c = self.hidden, self.color_channels
        pre_in = MaskedConv2D(4 * n, (1, 3), "B", c, 4, dtype=self.dtype, name="input_to_state")(
            x
        )  # (B, H, W, 4n)
        kernel = self.param(
            "state_to_state", nn.initializers.lecun_normal(), (3, n, 4 * n), jnp.float32
        ).astype(self.dtype)

        def step(carry, pre_row):  # pre_row: (B, W, 4n), carry: row i-1's cell and hidden state
            c_prev, h_prev = carry
            # A 1 x 3 convolution along the row, as conv2d (loop-safe gradients on the CPU).
            pre = pre_row + conv2d(h_prev[:, None], kernel[None], padding=((0, 0), (1, 1)))[:, 0]
            cell, h = _lstm_update(pre, c_prev)
            return (cell, h), h

        batch, _, width, _ = x.shape
        state = _initial_state((batch, width, n), pre_in.dtype)
        _, hs = jax.lax.scan(step, state, jnp.moveaxis(pre_in, 1, 0))
        return jnp.moveaxis(hs, 0, 1)


class DiagonalLSTM(nn.Module):
    """One direction of the Diagonal BiLSTM (Sec. 3.2), scanning the diagonals left to right.

    The input is skewed so that each diagonal becomes a column; input-to-state is a 1x1 masked
    convolution (type B); state-to-state is a 2x1 convolution (rows i-1 and i) of the previous
    column's hidden state, so the state at pixel (i, j) reads the states at (i, j-1) and
    (i-1, j). Returns hidden states (B, H, W, hidden) in ``dtype``.
    """

    hidden: int
    color_channels: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, c = self.hidden, self.color_channels
        pre_in = MaskedConv2D(4 * n, (1, 1), "B", c, 4, dtype=self.dtype, name="input_to_state")(
            skew(x)
        )  # (B, H, W', 4n)
        kernel = self.param(
            "state_to_state", nn.initializers.lecun_normal(), (2, n, 4 * n), jnp.float32
        ).astype(self.dtype)

        def step(carry, pre_col):  # pre_col: (B, H, 4n), carry: the previous column's state
            c_prev, h_prev = carry
            pre = pre_col + conv2d(h_prev[:, None], kernel[None], padding=((0, 0), (1, 0)))[:, 0]
            cell, h = _lstm_update(pre, c_prev)
            return (cell, h), h

        batch, height, width, _ = x.shape
        state = _initial_state((batch, height, n), pre_in.dtype)
        _, hs = jax.lax.scan(step, state, jnp.moveaxis(pre_in, 2, 0))
        return unskew(jnp.moveaxis(hs, 0, 2), width)


class DiagonalBiLSTM(nn.Module):
    """Diagonal BiLSTM (Sec. 3.2): a left-to-right and a right-to-left diagonal LSTM.

    The right-to-left LSTM runs on the horizontally flipped map; its output is flipped back
    and shifted down by one row before being added, so that no pixel to the right of the
    current one in the current row is seen. Returns (B, H, W, hidden) in ``dtype``.
    """

    hidden: int
    color_channels: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, c, dt = self.hidden, self.color_channels, self.dtype
        forward = DiagonalLSTM(n, c, dt, name="left_to_right")(x)
        backward = DiagonalLSTM(n, c, dt, name="right_to_left")(x[:, :, ::-1])
        return forward + down_shift(backward[:, :, ::-1])


class PixelRNN(nn.Module):
    """PixelRNN: 7x7 type-A conv, residual Row LSTM or Diagonal BiLSTM layers, 1x1 output convs.

    Each recurrent layer maps the 2h-feature map to h hidden states; a 1x1 masked conv (type
    B) brings them back to 2h features and the layer's input is added (residual connection,
    Sec. 3.3). The output head is two ReLU + 1x1 masked conv layers (Table 1).

    Attributes:
      layer: "row_lstm" or "diagonal_bilstm".
      hidden: h, LSTM state size (at least C).
      num_layers: recurrent layers (12 for MNIST/CIFAR-10 in the paper).
      color_channels, output, num_values, output_features: as in
        :class:`~genjax.models.pixelcnn.PixelCNN`.
      first_kernel_size: of the type-A input convolution (7).
      dtype: computation dtype (float32 or bfloat16) of the convolutions, gates and hidden
        states; parameters, LSTM cell states and the returned logits are float32.

    References:
      van den Oord et al. (2016b), Sections 3.1-3.3, Table 1.
    """

    layer: str = "row_lstm"
    hidden: int = 128
    num_layers: int = 12
    color_channels: int = 1
    output: str = "categorical"
    num_values: int = 256
    output_features: int = 1024
    first_kernel_size: int = 7
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.color_channels
        if self.layer not in LAYERS:
            raise ValueError(f"layer={self.layer!r}; expected one of {LAYERS}")
        validate_images(x, channels=c)
        check_output(self.output, self.num_values)
        check_features("hidden", self.hidden, c)
        recurrent = RowLSTM if self.layer == "row_lstm" else DiagonalBiLSTM
        k0, n, dt = self.first_kernel_size, self.hidden, self.dtype
        h = MaskedConv2D(2 * n, (k0, k0), "A", c, dtype=dt, name="input_conv")(x)
        for i in range(self.num_layers):
            states = recurrent(n, c, dt, name=f"{self.layer}{i}")(h)
            h = h + MaskedConv2D(2 * n, (1, 1), "B", c, dtype=dt, name=f"residual{i}")(states)
        return OutputHead(c, self.output, self.num_values, self.output_features, dt, name="head")(h)
