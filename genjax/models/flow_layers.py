"""Bijective layers for Real NVP (Dinh, Sohl-Dickstein & Bengio 2017).

Every bijector here is a Flax Linen module with one compact method::

    y, log_det = layer.apply(variables, x, inverse=False, train=False)

``inverse=False`` maps data towards the latent (``x -> z``) and returns
``log|det dz/dx|``; ``inverse=True`` maps ``z -> x`` and returns ``log|det dx/dz|``,
the negative of the forward value at the matching point. ``log_det`` has one value per
example (shape ``(B,)``), in nats. :meth:`forward` and :meth:`inverse` are thin wrappers
usable as ``apply(..., method="forward")``.

Images are NHWC ``(B, H, W, C)``; vector layers take ``(B, D)``. The losses that turn a
``(z, log_det)`` pair into a likelihood live in :mod:`genjax.losses.flow`.

Precision (``train.compute_dtype``): the couplings take a ``dtype`` attribute, the dtype in
which their s/t networks (:class:`ResNetST`, the MLP of :class:`MaskedMLPCoupling`) compute;
parameters stay float32. The flow's data path does not follow it: the network output is
cast to the data dtype (float32, or wider if the input is wider) before ``s = scale *
tanh(raw_s)``, so ``y = x * exp(s) + t``, its inverse and every log-determinant are float32.
Given the same ``(s, t)`` the inverse then undoes the forward map to float32 rounding, and a
log-determinant summed over thousands of dimensions keeps float32 resolution (bfloat16's
spacing at 10^4 nats is 64). The normalization bijectors (:class:`ActNorm`,
:class:`BatchNormBijector`) are elementwise maps on that data path and always compute in
float32 (their running averages too); they have no ``dtype``.

References:
    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017
    (affine coupling eqs. 4-9, masks and squeeze Fig. 3, batch normalization Sec. 3.7).
    Kingma & Dhariwal, "Glow", NeurIPS 2018 (ActNorm, Sec. 3.1, Table 1).
    Salimans & Kingma, "Weight normalization", NeurIPS 2016 (eq. 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import conv2d

MASK_TYPES = ("checkerboard", "channel")


def check_float_input(x: jax.Array, name: str, ndim: int | None = None) -> None:
    """Raises ValueError unless ``x.ndim == ndim`` (if given), TypeError unless ``x`` is float."""
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must be a floating array (dequantize integer images first), got {x.dtype}"
        )


def data_dtype(x: jax.Array) -> jnp.dtype:
    """The dtype of a flow's data path for input ``x``: at least float32 (float64 is kept)."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity!r}")


def checkerboard_mask(height: int, width: int, parity: int) -> jax.Array:
    """Checkerboard mask of Real NVP Fig. 3 (left), shape ``(height, width, 1)``.

    ``mask[i, j] = 1`` where ``(i + j) % 2 == parity``: those pixels condition the coupling
    and pass through unchanged; the others are transformed.
    """
    _check_parity(parity)
    ii, jj = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    return ((ii + jj) % 2 == parity).astype(jnp.float32)[..., None]


def squeeze(x: jax.Array) -> jax.Array:
    """Space-to-depth 2x2 (Real NVP Fig. 3): ``(B, H, W, C) -> (B, H/2, W/2, 4C)``.

    Output channel ``k = (2 * di + dj) * C + c`` holds input pixel ``(2i + di, 2j + dj, c)``.
    Volume preserving (log-det 0); :func:`unsqueeze` is its exact inverse.
    """
    check_float_input(x, "x", ndim=4)
    b, h, w, c = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"x height and width must be even to squeeze, got shape {x.shape}")
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
    """Depth-to-space 2x2, the exact inverse of :func:`squeeze`."""
    check_float_input(x, "x", ndim=4)
    b, h, w, c = x.shape
    if c % 4:
        raise ValueError(f"x channels must be divisible by 4 to unsqueeze, got shape {x.shape}")
    x = x.reshape(b, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, c // 4)


class WNConv(nn.Module):
    """Weight-normalized 'SAME' convolution, ``w = g * v / ||v||`` (Salimans & Kingma eq. 2).

    The norm runs over ``(kh, kw, C_in)`` for each output channel. ``zero_init`` sets
    ``g = 0`` so the layer outputs exactly its bias (zero) at initialisation while ``g``
    still receives gradients (a zero ``v`` would give a 0/0 direction).

    ``w`` is computed from the float32 parameters in float32, then the input, ``w`` and the
    bias are cast to ``dtype`` (Flax's computation dtype), which is the output's dtype.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    zero_init: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (*self.kernel_size, x.shape[-1], self.features)
        v = self.param("v", nn.initializers.lecun_normal(), shape)
        g_init = nn.initializers.zeros if self.zero_init else nn.initializers.ones
        g = self.param("g", g_init, (self.features,))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        w = g * v / jnp.sqrt(jnp.sum(v**2, axis=(0, 1, 2)))
        x = x.astype(self.dtype)
        y = conv2d(x, w.astype(x.dtype))
        return y + b.astype(self.dtype)


class ResNetST(nn.Module):
    """Residual s/t network of a convolutional coupling (Real NVP Sec. 4.1).

    ``WNConv 3x3 -> num_blocks x [relu, WNConv 3x3, relu, WNConv 3x3] + skip -> relu ->
    WNConv 3x3 (zero_init)`` with ``out_features`` output channels. Weight normalization
    only: no batch normalization inside s/t, so the coupling is the same map in training
    and evaluation. Every activation, and the output, is in ``dtype``.
    """

    features: int
    out_features: int
    num_blocks: int = 8
    zero_init: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dt = self.dtype
        h = WNConv(self.features, dtype=dt, name="conv_in")(x)
        for i in range(self.num_blocks):
            r = WNConv(self.features, dtype=dt, name=f"block{i}_conv0")(nn.relu(h))
            r = WNConv(self.features, dtype=dt, name=f"block{i}_conv1")(nn.relu(r))
            h = h + r
        out = WNConv(self.out_features, zero_init=self.zero_init, dtype=dt, name="conv_out")
        return out(nn.relu(h))


class _Bijector(nn.Module):
    """Adds ``forward``/``inverse`` wrappers around ``__call__(x, *, inverse, train)``."""

    def forward(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Data to latent: returns ``(y, log|det dy/dx|)`` with log-det shape ``(B,)``."""
        return self(x, inverse=False, train=train)

    def inverse(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latent to data (evaluation statistics): returns ``(x, log|det dx/dy|)``."""
        return self(y, inverse=True, train=False)


def _scale_shift(
    raw: jax.Array, scale: jax.Array, dtype: jnp.dtype
) -> tuple[jax.Array, jax.Array]:
    """Splits a network output into ``(s, t)`` with ``s = scale * tanh(raw_s)``, in ``dtype``.

    ``raw`` (in the network's compute dtype) is cast to the data-path ``dtype`` first, so the
    tanh, the learned scale and everything downstream of them are float32.
    """
    raw_s, t = jnp.split(raw.astype(dtype), 2, axis=-1)
    return scale * jnp.tanh(raw_s), t


class AffineCoupling(_Bijector):
    """Convolutional affine coupling layer (Real NVP eqs. 4-9).

    ``y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))`` with a binary mask ``b``
    (eq. 9); the Jacobian is triangular (eq. 6), so ``log|det dy/dx| = sum((1 - b) * s)``
    per example. The inverse (eqs. 7-8)
    ``x = b * y + (1 - b) * (y - t(b * y)) * exp(-s(b * y))`` never inverts s or t.

    Masks: ``"checkerboard"`` (:func:`checkerboard_mask` with ``parity``) or ``"channel"``
    (parity 0: the first half of the channels conditions and the second half is
    transformed; parity 1 the reverse; the channel count must be even).

    Scale stabilisation: ``s = scale * tanh(raw_s)`` with a learned per-channel ``scale``
    initialised to 1, so ``|s| <= |scale|`` (Real NVP Sec. 4.1 uses a tanh with a learned
    scale). With ``zero_init`` the s/t network's last convolution starts at zero, so the
    layer is the identity with log-det 0 at initialisation.

    ``dtype`` is the computation dtype of the s/t network only (see the module doc): ``x``
    is taken to float32 (:func:`data_dtype`), and ``y`` and the log-det are float32.
    """

    mask_type: str = "checkerboard"
    parity: int = 0
    features: int = 64
    num_blocks: int = 8
    zero_init: bool = True
    dtype: Any = jnp.float32

    def _st_network(self, out_features: int) -> ResNetST:
        return ResNetST(
            self.features, out_features, self.num_blocks, self.zero_init, self.dtype, name="st"
        )

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        del train  # a coupling is the same map in training and evaluation
        check_float_input(x, "x", ndim=4)
        _check_parity(self.parity)
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type={self.mask_type!r}; expected one of {MASK_TYPES}")
        x = x.astype(data_dtype(x))
        c = x.shape[-1]
        if self.mask_type == "checkerboard":
            b = checkerboard_mask(x.shape[1], x.shape[2], self.parity).astype(x.dtype)
            net = self._st_network(2 * c)
            scale = self.param("scale", nn.initializers.ones, (c,))
            s, t = _scale_shift(net(b * x), scale, x.dtype)
            s, t = (1 - b) * s, (1 - b) * t
            if inverse:
                y = b * x + (1 - b) * (x - t) * jnp.exp(-s)
            else:
                y = b * x + (1 - b) * (x * jnp.exp(s) + t)
            log_det = jnp.sum(s, axis=(1, 2, 3))
            return y, -log_det if inverse else log_det
        if c % 2:
            raise ValueError(f"channel-wise coupling needs an even channel count, got {c}")
        x_a, x_b = jnp.split(x, 2, axis=-1)
        cond, moved = (x_a, x_b) if self.parity == 0 else (x_b, x_a)
        net = self._st_network(c)
        scale = self.param("scale", nn.initializers.ones, (c // 2,))
        s, t = _scale_shift(net(cond), scale, x.dtype)
        moved = (moved - t) * jnp.exp(-s) if inverse else moved * jnp.exp(s) + t
        y = jnp.concatenate([cond, moved] if self.parity == 0 else [moved, cond], axis=-1)
        log_det = jnp.sum(s, axis=(1, 2, 3))
        return y, -log_det if inverse else log_det


class MaskedMLPCoupling(_Bijector):
    """Affine coupling on vectors ``(B, D)`` with an MLP s/t network (toy 2-D flows).

    Parity 0 keeps the even-indexed coordinates and transforms the odd ones; parity 1 the
    reverse. Same equations, scale stabilisation, zero initialisation and precision (the
    MLP computes in ``dtype``, the coupling itself in float32) as :class:`AffineCoupling`.
    """

    parity: int = 0
    hidden: Sequence[int] = (256, 256)
    zero_init: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        del train
        check_float_input(x, "x", ndim=2)
        _check_parity(self.parity)
        d = x.shape[-1]
        if d < 2:
            raise ValueError(f"x must have at least 2 features, got shape {x.shape}")
        x = x.astype(data_dtype(x))
        b = (jnp.arange(d) % 2 == self.parity).astype(x.dtype)
        h = b * x
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(h))
        out_init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        raw = nn.Dense(2 * d, kernel_init=out_init, dtype=self.dtype, name="dense_out")(h)
        scale = self.param("scale", nn.initializers.ones, (d,))
        s, t = _scale_shift(raw, scale, x.dtype)
        s, t = (1 - b) * s, (1 - b) * t
        y = b * x + (1 - b) * ((x - t) * jnp.exp(-s) if inverse else x * jnp.exp(s) + t)
        log_det = jnp.sum(s, axis=-1)
        return y, -log_det if inverse else log_det


def _per_example_count(x: jax.Array) -> int:
    """Number of positions sharing one channel's parameters (H * W for images, 1 for vectors)."""
    return x[0].size // x.shape[-1]


class ActNorm(_Bijector):
    """Activation normalization, ``y = (x + loc) * exp(log_scale)`` per channel (Glow Sec. 3.1).

    Data-dependent initialisation: when the variables are created through the forward map
    (``init(..., method="forward")`` or the default ``__call__``), ``loc = -mean(x)`` and
    ``log_scale = -log(std(x) + eps)`` over every axis but the last, so the first batch comes
    out with zero mean and unit (population) variance per channel. Initialised through the
    inverse map, it starts as the identity. ``log|det dy/dx| = n * sum(log_scale)`` per
    example, where n is the number of positions per channel (H * W, or 1 for vectors).
    """

    eps: float = 1e-6

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        del train
        check_float_input(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must be (B, ..., C), got shape {x.shape}")
        x = x.astype(data_dtype(x))
        axes = tuple(range(x.ndim - 1))
        c = x.shape[-1]

        def loc_init(_, shape):
            return jnp.zeros(shape) if inverse else -jnp.mean(x, axis=axes)

        def log_scale_init(_, shape):
            if inverse:
                return jnp.zeros(shape)
            return -jnp.log(jnp.std(x, axis=axes) + self.eps)

        loc = self.param("loc", loc_init, (c,))
        log_scale = self.param("log_scale", log_scale_init, (c,))
        log_det = _per_example_count(x) * jnp.sum(log_scale) * jnp.ones(x.shape[0], x.dtype)
        if inverse:
            return x * jnp.exp(-log_scale) - loc, -log_det
        return (x + loc) * jnp.exp(log_scale), log_det


class BatchNormBijector(_Bijector):
    """Batch normalization as a bijector (Real NVP Sec. 3.7).

    ``y = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta`` per channel, with
    ``log|det dy/dx| = n * sum(log_gamma - 0.5 * log(var + eps))`` per example (n = H * W,
    or 1 for vectors). The scale is parametrised as ``exp(log_gamma)`` to stay invertible.

    ``train=True``: ``mu``/``var`` are the batch's mean and (biased) variance over every
    axis but the last, and the running averages in the ``"batch_stats"`` collection are
    updated as ``r <- momentum * r + (1 - momentum) * batch`` (pass
    ``mutable=["batch_stats"]``; nothing is updated while initialising). As in the paper,
    the log-det treats the batch statistics as constants (it ignores the coupling between
    examples of a batch). ``train=False`` and the inverse use the running averages, which
    start at mean 0 and variance 1.
    """

    momentum: float = 0.99
    eps: float = 1e-5

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        check_float_input(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must be (B, ..., C), got shape {x.shape}")
        if inverse and train:
            raise ValueError("train=True is not defined for the inverse; it uses running stats")
        x = x.astype(data_dtype(x))
        c = x.shape[-1]
        axes = tuple(range(x.ndim - 1))
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros(c, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones(c, jnp.float32))
        log_gamma = self.param("log_gamma", nn.initializers.zeros, (c,))
        beta = self.param("beta", nn.initializers.zeros, (c,))
        if train:
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean((x - mean) ** 2, axis=axes)
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1 - m) * jax.lax.stop_gradient(mean)
                ra_var.value = m * ra_var.value + (1 - m) * jax.lax.stop_gradient(var)
        else:
            mean, var = ra_mean.value, ra_var.value
        log_scale = log_gamma - 0.5 * jnp.log(var + self.eps)
        log_det = _per_example_count(x) * jnp.sum(log_scale) * jnp.ones(x.shape[0], x.dtype)
        if inverse:
            return (x - beta) * jnp.exp(-log_scale) + mean, -log_det
        return (x - mean) * jnp.exp(log_scale) + beta, log_det


NORMS = {"actnorm": ActNorm, "batchnorm": BatchNormBijector, "none": None}


def make_norm(name: str, layer_name: str) -> _Bijector | None:
    """The normalization bijector called ``name`` (``"actnorm"``, ``"batchnorm"``, ``"none"``)."""
    if name not in NORMS:
        raise ValueError(f"norm={name!r}; expected one of {sorted(NORMS)}")
    cls = NORMS[name]
    return None if cls is None else cls(name=layer_name)
