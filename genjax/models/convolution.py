"""2-D convolutions with exactly ``lax``'s semantics, reformulated where XLA:CPU is slow.

:func:`conv2d` computes ``lax.conv_general_dilated(x, kernel, strides, padding,
dimension_numbers=("NHWC", "HWIO", "NHWC"))`` and :func:`conv_transpose2d` computes
``lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))``
(Flax's ``nn.ConvTranspose`` with its default ``transpose_kernel=False``): the same output shape
and dtype, the same values up to float summation order, and the same reverse-mode derivatives
of any order (``grad``/``vjp``, a gradient penalty's derivative of a derivative) under ``jit``
and ``vmap``. On the CPU the derivatives come from one ``jax.custom_vjp`` (below), so
forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) raises there; use
``formulation="lax"`` for it. :class:`Conv` and :class:`ConvTranspose` are drop-in replacements
for the part of ``flax.linen.Conv`` / ``flax.linen.ConvTranspose`` that genjax uses, with the
same parameters.

Why: XLA:CPU lowers some convolutions, and above all some *kernel gradients*, to slow loops.
On the measured 2-core x86 CPU (jax 0.10.2, float32, batch sizes of the MNIST configs;
``benchmarks/bench_convolution.py``), ``lax`` reaches ~240 GFLOP/s on a 2048^3 matmul and
close to that on a forward 3x3 convolution, but its kernel gradients take ~4x the forward
convolution's time for 3x3 kernels at 28x28, ~7x for 1x1 kernels and ~50x for stride-2
transposed convolutions (input-dilated convolutions, 3/4 of whose input is zeros).

Formulations on the CPU (static rules on shapes, strides and kernel size, never timing;
measured forward+backward ratios ``lax / this`` from ``bench_convolution.py``):

* ``contraction`` - a 1x1 kernel (any stride and padding: pad, subsample, contract the
  channels) or a kernel covering the whole padded input (one output position, e.g. StarGAN's
  classification head): one ``dot_general``, whose derivatives are dots as well. PixelCNN's
  1x1 layers 2.0-4.7x, StarGAN's head 3.3x. Every product over positions is written on
  (positions, channels) matrices (``_flat``): XLA:CPU then reads the transposed operand of a
  kernel gradient in place instead of first writing channel-major copies of both operands.
* ``shifted gradients`` - a stride-1 kernel larger than 1x1 with at least 8 input and 4
  output channels. The value is ``lax.conv_general_dilated`` over the bounding box of the taps
  the static ``mask`` leaves nonzero (a PixelCNN type-B 3x3 kernel is a 2x3 one, a type-A 7x7
  one a 4x7 one). The gradients come from one ``jax.custom_vjp``: the convolution is ``y =
  sum_t shift_t(x) @ K_t`` over the used taps ``t``, so with ``G`` the output gradient ``g``
  moved to where each tap read the input and concatenated over the taps (positions x
  taps*C_out), ``dx = G @ K^T`` and ``dK = x^T @ G``: two matrix products over the input
  positions, no FLOP on masked taps, and no convolution in the backward pass for XLA:CPU to
  lower to a slow loop; their own derivatives (a gradient penalty's) are pads and dot products
  as well. The copies of ``g`` take taps*C_out floats per input position; above
  ``_CHUNK_BYTES`` for a batch they are built and contracted per chunk of images in a
  ``lax.scan``. This replaced a formulation that kept lax's input gradient and computed the
  kernel gradient by im2col of the input. Measured on the 2-core x86 CPU, jax 0.10.2, the
  value and both gradients called back to back (median of 7): PixelCNN's masked 3x3 64->64 at
  28x28, batch 64, 80 -> 49-54 ms (torch 44-51); an unmasked 3x3 64->64 at 28x28, batch 64,
  134 -> 69 ms; 64->128 at 14x14, batch 128, 100 -> 62 ms; 64->64 at 32x32, batch 16, 40 ->
  23 ms. ``bench_convolution.py`` calls each layer once after a pause, alternating with torch,
  and shows less of it (the masked 3x3 77 -> 80 ms, DCGAN's generator layers 46 -> 32 and
  24 -> 8 ms); in whole training steps (``benchmarks/run.py``, steps back to back)
  ``pixelcnn_binarized_mnist`` went from 0.404 to 0.481 steps/s without the loop.
* ``phase decomposition`` - a transposed convolution with stride ``s > 1`` reads, at output
  position ``s q + r``, only the taps ``t = pad - r (mod s)``: its ``s x s`` output phases are one stride-1 convolution of the
  input with an ``s*s*C_out``-channel kernel gathered from the original one (the "sub-pixel
  convolution" of Shi et al. 2016), then depth-to-space and a crop. No FLOP is spent on
  dilation zeros; that convolution always takes the shifted gradients (lax's own kernel
  gradient of it was up to 70x slower still). DCGAN's generator 17x, the VAE decoder 4-13x,
  CycleGAN/StarGAN upsampling 12-14x, PixelCNN++ 9x.
* ``lax`` - everything else: strided convolutions (XLA lowers their kernel gradients
  differently; neither im2col nor a space-to-depth rewrite into shifted gradients was faster
  for DCGAN's discriminator), inputs with fewer than 8 channels (first layers: a cheap lax
  gradient, while the copies of ``g`` would take taps*C_out floats per input value, e.g.
  24 x 128 for PixelCNN's 7x7 type-A input layer) and outputs with fewer than 4 channels
  (a matrix-vector product). Their gradients are written as
  canonical convolutions (see "Canonical backward convolutions" below): bit for bit lax's, and
  as fast inside a loop body as outside, where lax's own are up to 70x slower.

Other platforms: cuDNN and XLA:TPU convolutions are already fast and the rewrites can be
slower there. ``formulation="auto"`` (the default) lowers the CPU formulation for the CPU and
plain ``lax`` for every other platform through ``jax.lax.platform_dependent`` (resolved when
the program is lowered: the compiled program holds only one of them); ``"cpu"`` and ``"lax"``
force one of them (the tests run both on the CPU). :func:`default_formulation` changes what
``"auto"`` means for the programs traced inside it (every genjax model uses ``"auto"``): e.g.
``"cpu"`` on a GPU, to tell whether a difference between two backends comes from the
formulation or from the backend's own kernels.

References:
  Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for Document
  Processing", IWFHR 2006 (convolution as im2col and a matrix product).
  Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285,
  Section 4 (transposed convolution as a convolution of the dilated input).
  Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
  Convolutional Neural Network", CVPR 2016, arXiv:1609.05158 (output phases as channels).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype
from jax import lax

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
FORMULATIONS = ("auto", "cpu", "lax")

# Bytes of the output gradient's shifted copies above which the shifted gradients are computed
# per chunk of images (a scan): measured back to back, chunks of 4-8 PixelCNN images were
# 5-15% slower than one product over the batch, so chunking only bounds memory.
_CHUNK_BYTES = 128 << 20

Pads = tuple[tuple[int, int], tuple[int, int]]
Taps = tuple[tuple[int, int], ...]
_PADDING_HELP = "'SAME', 'VALID' or ((top, bottom), (left, right))"


# ---------------------------------------------------------------------------------------------
# Arguments


def _pair(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or any(v < 1 for v in pair):
        raise ValueError(f"{name} must be two positive ints (height, width), got {value!r}")
    return pair  # type: ignore[return-value]


def _check_operands(fn: str, x: Any, kernel: Any) -> None:
    for name, a, layout in (("x", x, "(B, H, W, C)"), ("kernel", kernel, "(kh, kw, C_in, C_out)")):
        if getattr(a, "ndim", None) != 4:
            raise ValueError(f"{fn}: {name} must be a {layout} array, got shape "
                             f"{getattr(a, 'shape', type(a).__name__)}")
    if x.shape[3] != kernel.shape[2]:
        raise ValueError(f"{fn}: kernel.shape[2] (input features) must equal x.shape[3] = "
                         f"{x.shape[3]}, got kernel shape {kernel.shape}")
    if x.dtype != kernel.dtype:
        raise TypeError(f"{fn}: x and kernel must have the same dtype (as lax requires), got "
                        f"{x.dtype} and {kernel.dtype}")


def _explicit_pads(padding: Any) -> Pads:
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        pads = ()
    if len(pads) != 2:
        raise ValueError(f"padding must be {_PADDING_HELP}, got {padding!r}")
    return pads  # type: ignore[return-value]


def _conv_padding(padding: Any, in_hw, window_hw, strides) -> Pads:
    """Explicit (low, high) pads of a convolution, as ``lax`` resolves ``padding``."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"padding must be {_PADDING_HELP}, got {padding!r}")
        pads = lax.padtype_to_pads(in_hw, window_hw, strides, padding.upper())
        return tuple((int(lo), int(hi)) for lo, hi in pads)  # type: ignore[return-value]
    return _explicit_pads(padding)


def transpose_padding(padding: Any, kernel_hw, strides) -> Pads:
    """Pads of the stride-dilated input that ``lax.conv_transpose`` convolves.

    "SAME" and "VALID" are the paddings of the corresponding forward convolution (so "SAME"
    gives ``H * s`` outputs); explicit pads are used as given. This is ``lax.conv_transpose``
    with ``use_consistent_padding=False`` (its default up to at least jax 0.10).
    """
    if not isinstance(padding, str):
        return _explicit_pads(padding)
    mode = padding.upper()
    if mode not in ("SAME", "VALID"):
        raise ValueError(f"padding must be {_PADDING_HELP}, got {padding!r}")
    pads = []
    for k, s in zip(kernel_hw, strides, strict=True):
        if mode == "SAME":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else math.ceil(total / 2)
        else:
            total = k + s - 2 + max(k - s, 0)
            lo = k - 1
        pads.append((lo, total - lo))
    return tuple(pads)  # type: ignore[return-value]


def _static_mask(mask: Any, kernel_shape) -> np.ndarray:
    if isinstance(mask, jax.core.Tracer):
        raise ValueError("mask must be a static numpy array of 0s and 1s, got a traced value")
    m = np.asarray(mask)
    if m.dtype == object or not np.all((m == 0) | (m == 1)):
        raise ValueError("mask must contain only 0s and 1s")
    try:
        return np.broadcast_to(m, kernel_shape)
    except ValueError:
        raise ValueError(f"mask must broadcast to the kernel shape {tuple(kernel_shape)}, got "
                         f"shape {m.shape}") from None


def _check_formulation(formulation: str) -> None:
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")


# ---------------------------------------------------------------------------------------------
# The plain formulation and shared pieces


def _lax_conv(x: jax.Array, kernel: jax.Array, strides, pads: Pads) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=DIMENSION_NUMBERS)


def _lax_conv_transpose(x: jax.Array, kernel: jax.Array, strides, pads: Pads) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, (1, 1), pads, lhs_dilation=strides,
                                    dimension_numbers=DIMENSION_NUMBERS)


def _pad_spatial(x: jax.Array, pads: Pads) -> jax.Array:
    """Zero-pads the H and W axes of an NHWC array (negative pads crop)."""
    if pads == ((0, 0), (0, 0)):
        return x
    (top, bottom), (left, right) = pads
    config = ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0))
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _flat(a: jax.Array) -> jax.Array:
    """An NHWC array as (N*H*W, C), a free reshape.

    Dots over the positions are written on these 2-D views: XLA:CPU runs ``x^T @ g`` of two
    (positions, C) matrices as one dot that reads ``x`` transposed in place, while the same
    contraction over the (N, H, W) axes of 4-D arrays gets transposing copies of both operands
    fused into their producers first. Measured on the 2-core x86 CPU, jax 0.10.2: a 1x1 kernel
    gradient over 64 x 28 x 28 positions, 64 -> 128 channels, 25 -> 11 ms; whole jitted train
    steps (the two forms compiled in one process, timed alternately): PixelCNN (binarized
    MNIST) 2262 -> 2025 ms, Gated PixelCNN 3220 -> 2818 ms, Real NVP 3892 -> 3519 ms, DCGAN
    183 -> 171 ms; WGAN-GP and CycleGAN unchanged within their spread.
    """
    return a.reshape(-1, a.shape[-1])


def _dot(a: jax.Array, b: jax.Array, contract: tuple[tuple[int, ...], tuple[int, ...]]):
    """``dot_general`` accumulating in at least float32, returned in the dtype of ``a``."""
    acc = jnp.promote_types(a.dtype, jnp.float32)
    out = lax.dot_general(a, b, (contract, ((), ())), preferred_element_type=acc)
    return out.astype(a.dtype)


# ---------------------------------------------------------------------------------------------
# "contraction": 1x1 kernels and kernels covering the whole padded input


def _contraction(x: jax.Array, kernel: jax.Array, strides, pads: Pads) -> jax.Array:
    kh, kw, c, o = kernel.shape
    xp = _pad_spatial(x, pads)
    if (kh, kw) == (1, 1):
        sh, sw = strides
        if (sh, sw) != (1, 1):
            xp = xp[:, ::sh, ::sw]
        # A (positions, C) x (C, O) product, so that the kernel gradient is a 2-D dot (``_flat``).
        n, h, w = xp.shape[:3]
        return _dot(_flat(xp), kernel.reshape(c, o), ((1,), (0,))).reshape(n, h, w, o)
    # One output position: a (B, kh*kw*C) x (kh*kw*C, O) product.
    y = _dot(xp.reshape(x.shape[0], kh * kw * c), kernel.reshape(kh * kw * c, o), ((1,), (0,)))
    return y.reshape(x.shape[0], 1, 1, o)


# ---------------------------------------------------------------------------------------------
# "shifted gradients": stride-1 kernels larger than 1x1


def _batch_chunk(batch: int, bytes_per_example: int) -> int:
    """The largest divisor of ``batch`` whose shifted gradient copies fit in ``_CHUNK_BYTES``."""
    limit = max(1, _CHUNK_BYTES // max(bytes_per_example, 1))
    return max(d for d in range(1, min(batch, limit) + 1) if batch % d == 0)


def _tap_box(taps: Taps) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of the taps' bounding box."""
    rows, cols = [t[0] for t in taps], [t[1] for t in taps]
    return min(rows), max(rows), min(cols), max(cols)


def _box_conv(x: jax.Array, kernel: jax.Array, pads: Pads, taps: Taps) -> jax.Array:
    """The stride-1 convolution over the taps' bounding box only (the kernel is zero outside
    it): a PixelCNN type-B 3x3 kernel is a 2x3 one, a type-A 7x7 one a 4x7 one."""
    kh, kw = kernel.shape[:2]
    y0, y1, x0, x1 = _tap_box(taps)
    (pt, pb), (pl, pr) = pads
    box_pads = ((pt - y0, pb - (kh - 1 - y1)), (pl - x0, pr - (kw - 1 - x1)))
    return _lax_conv(x, kernel[y0:y1 + 1, x0:x1 + 1], (1, 1), box_pads)


def _shift(a: jax.Array, dh: int, dw: int, out_hw) -> jax.Array:
    """``out[:, i, j] = a[:, i - dh, j - dw]`` for an (out_h, out_w) map, zeros outside ``a``."""
    (h, w), (oh, ow) = a.shape[1:3], out_hw
    config = ((0, 0, 0), (dh, oh - h - dh, 0), (dw, ow - w - dw, 0), (0, 0, 0))
    return lax.pad(a, jnp.zeros((), a.dtype), config)


def _shifted_grads(x: jax.Array, kernel_cat: jax.Array, g: jax.Array, pads: Pads,
                   taps: Taps) -> tuple[jax.Array, jax.Array]:
    """Both gradients of ``y = sum_t shift_t(x) @ K_t`` from the output gradient's copies.

    ``G_t``, the output gradient ``g`` moved to where tap ``t`` read the input, concatenated
    over the taps: ``dx = G @ K^T`` and ``dK = x^T @ G``, two matrix products over the input
    positions. ``kernel_cat`` is (C_in, T * C_out), tap-major in its columns.
    """
    (pt, _), (pl, _) = pads
    h, w = x.shape[1:3]
    cols = _flat(jnp.concatenate([_shift(g, ty - pt, tx - pl, (h, w)) for ty, tx in taps],
                                 axis=-1))  # (n*H*W, T * C_out)
    dx = _dot(cols, kernel_cat, ((1,), (1,))).reshape(x.shape)  # (n, H, W, C_in)
    dk = _dot(_flat(x), cols, ((0,), (0,)))  # (C_in, T * C_out)
    return dx, dk


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shifted_conv(x: jax.Array, kernel: jax.Array, pads: Pads, taps: Taps) -> jax.Array:
    """A stride-1 convolution whose kernel is zero off ``taps``: the value from lax over the
    taps' bounding box, both gradients from the shifted copies of the output gradient (see the
    module docstring), written with pads and dot products only, so that their own derivatives
    (a gradient penalty's) are dot products as well, in and out of loops."""
    return _box_conv(x, kernel, pads, taps)


def _shifted_conv_fwd(x, kernel, pads, taps):
    return _shifted_conv(x, kernel, pads, taps), (x, kernel)


def _shifted_conv_bwd(pads, taps, residuals, g):
    x, kernel = residuals
    kh, kw, c, o = kernel.shape
    b, t_count = x.shape[0], len(taps)
    used = np.array([ty * kw + tx for ty, tx in taps])
    kernel_cat = kernel.reshape(kh * kw, c, o)[used].transpose(1, 0, 2).reshape(c, t_count * o)
    chunk = _batch_chunk(b, t_count * o * x.shape[1] * x.shape[2] * x.dtype.itemsize)
    if chunk == b:
        dx, dk_cat = _shifted_grads(x, kernel_cat, g, pads, taps)
    else:
        # Strided chunks (chunk i: rows i, i + b / chunk, ...): when the batch is split over
        # devices, each device holds its share of every chunk, so the scan moves no rows
        # between devices (contiguous chunks would each sit on a subset of them).
        def strided(a):
            return jnp.moveaxis(a.reshape(chunk, b // chunk, *a.shape[1:]), 1, 0)

        def body(dk, xg):
            dx_c, dk_c = _shifted_grads(xg[0], kernel_cat, xg[1], pads, taps)
            return dk + dk_c, dx_c

        dk_cat, dxs = lax.scan(body, jnp.zeros(kernel_cat.shape, kernel_cat.dtype),
                               (strided(x), strided(g)))
        dx = jnp.moveaxis(dxs, 0, 1).reshape(x.shape)
    d_taps = dk_cat.reshape(c, t_count, o).transpose(1, 0, 2)
    dk = jnp.zeros((kh * kw, c, o), d_taps.dtype).at[used].set(d_taps)
    return dx, dk.reshape(kernel.shape)


_shifted_conv.defvjp(_shifted_conv_fwd, _shifted_conv_bwd)


# ---------------------------------------------------------------------------------------------
# Canonical backward convolutions (XLA:CPU inside loops)
#
# XLA:CPU runs a convolution through its fast Eigen kernels only when the convolution is in the
# canonical layout (batch, spatial, feature) x (spatial, in, out); its ConvCanonicalization pass
# inserts the transposes that make it so, but only in a program's entry computation. The kernel
# gradient and the input gradient that JAX derives for a convolution have other dimension
# labels ("f01b_i01o->01bf", "b01f_01oi->b01f"), so inside a loop body (``train.
# steps_per_dispatch``'s device loop, ``lax.scan``) they fall to a naive loop: measured on the
# 2-core x86 CPU, a 3x3 64->64 conv's gradient at 28x28, batch 64, took 17.8 s in a
# ``fori_loop`` against 0.26 s outside it; 4x4 stride-2 64->128: 6.1 s against 0.09 s. The
# custom VJP below writes both gradients as canonical convolutions of explicitly transposed
# operands, as XLA's pass would: the same values bit for bit (tested) and the same speed in and
# out of loops.


def _input_grad(g: jax.Array, kernel: jax.Array, in_hw, strides, pads: Pads,
                lhs_dilation) -> jax.Array:
    """d/dx of ``conv(x, kernel, strides, pads, lhs_dilation)`` as one canonical convolution."""
    kh, kw = kernel.shape[:2]
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)  # (kh, kw, C_out, C_in)
    grad_pads = []
    for n_in, n_out, k, s, d, (lo, _) in zip(in_hw, g.shape[1:3], (kh, kw), strides,
                                             lhs_dilation, pads, strict=True):
        before = k - 1 - lo
        grad_pads.append((before, (n_in - 1) * d + k - (n_out - 1) * s - 1 - before))
    # Itself a canonical convolution with canonical gradients: a gradient penalty
    # differentiates this input gradient again (WGAN-GP's critic step), inside the loop too.
    return _canonical_conv(g, flipped, tuple(lhs_dilation),
                           tuple(tuple(p) for p in grad_pads), tuple(strides))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _kernel_grad(x: jax.Array, g: jax.Array, kernel_hw, strides, pads: Pads,
                 lhs_dilation) -> jax.Array:
    """d/dkernel as one canonical convolution: the batch axis is contracted as the features
    of (C_in, H, W, B) against the output gradient laid out as a (Ho, Wo, B, C_out) kernel.

    Bilinear in ``x`` and ``g``; its own derivatives (a gradient penalty differentiates the
    critic's gradients again) are the forward convolution of ``x`` with the kernel cotangent
    (d/dg) and that convolution's input gradient (d/dx), both canonical as well.
    """
    k_pads = []
    for n_in, n_out, k, s, d, (lo, _) in zip(x.shape[1:3], g.shape[1:3], kernel_hw, strides,
                                             lhs_dilation, pads, strict=True):
        k_pads.append((lo, k + (n_out - 1) * s - (n_in - 1) * d - 1 - lo))
    dk = lax.conv_general_dilated(
        x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), k_pads,
        lhs_dilation=lhs_dilation, rhs_dilation=strides, dimension_numbers=DIMENSION_NUMBERS,
    )  # (C_in, kh, kw, C_out)
    return dk.transpose(1, 2, 0, 3)


def _kernel_grad_fwd(x, g, kernel_hw, strides, pads, lhs_dilation):
    return _kernel_grad(x, g, kernel_hw, strides, pads, lhs_dilation), (x, g)


def _kernel_grad_bwd(kernel_hw, strides, pads, lhs_dilation, residuals, dk_bar):
    x, g = residuals
    dx = _input_grad(g, dk_bar, x.shape[1:3], strides, pads, lhs_dilation)
    dg = _canonical_conv(x, dk_bar, tuple(strides), pads, tuple(lhs_dilation))
    return dx, dg


_kernel_grad.defvjp(_kernel_grad_fwd, _kernel_grad_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _canonical_conv(x, kernel, strides, pads, lhs_dilation):
    """``lax.conv_general_dilated`` whose gradients are canonical convolutions."""
    return lax.conv_general_dilated(x, kernel, strides, pads, lhs_dilation=lhs_dilation,
                                    dimension_numbers=DIMENSION_NUMBERS)


def _canonical_conv_fwd(x, kernel, strides, pads, lhs_dilation):
    return _canonical_conv(x, kernel, strides, pads, lhs_dilation), (x, kernel)


def _canonical_conv_bwd(strides, pads, lhs_dilation, residuals, g):
    x, kernel = residuals
    return (_input_grad(g, kernel, x.shape[1:3], strides, pads, lhs_dilation),
            _kernel_grad(x, g, tuple(kernel.shape[:2]), strides, pads, lhs_dilation))


_canonical_conv.defvjp(_canonical_conv_fwd, _canonical_conv_bwd)


# ---------------------------------------------------------------------------------------------
# Dispatch of a forward convolution


def _taps_of(mask: np.ndarray | None, kernel_shape) -> Taps:
    """The (ty, tx) taps a mask leaves nonzero (all of them without a mask)."""
    kh, kw = kernel_shape[:2]
    if mask is None:
        return tuple((ty, tx) for ty in range(kh) for tx in range(kw))
    used = mask.reshape(kh, kw, -1).any(axis=-1)
    return tuple((ty, tx) for ty in range(kh) for tx in range(kw) if used[ty, tx])


# When the shifted gradients are used (bench_convolution.py, 2-core x86, CPU time of the value
# and both gradients): lax's own gradients range from fine (batch 16 on 9x9 maps) to 4x slower
# than the forward convolution (3x3 at 28x28, batch 64) and to 70x slower (a 2x2 kernel to 256
# channels on 8x8 maps at batch 128: 6.5 CPU-seconds), so the shifted gradients are the default
# for stride-1 kernels. The exceptions are inputs with few channels (first layers, whose lax
# kernel gradient is cheap and whose input gradient is never needed) and few output channels
# (a matrix-vector product: the copies cost more than they save). Strided kernel gradients are
# lowered differently by XLA and were as fast in lax (DCGAN's discriminator, PixelCNN++'s
# downsampling).
_MIN_IN_FEATURES = 8
_MIN_OUT_FEATURES = 4


def _conv_plan(x_shape, kernel_shape, strides, pads: Pads, taps: Taps) -> str:
    """The CPU formulation of a forward convolution: "contraction", "shifted" or "lax"."""
    kh, kw, c, o = kernel_shape
    (pt, pb), (pl, pr) = pads
    if (kh, kw) == (1, 1) or (kh, kw) == (x_shape[1] + pt + pb, x_shape[2] + pl + pr):
        return "contraction"
    if tuple(strides) == (1, 1) and c >= _MIN_IN_FEATURES and o >= _MIN_OUT_FEATURES:
        return "shifted"
    return "lax"


def _cpu_conv(x: jax.Array, kernel: jax.Array, strides, pads: Pads, taps: Taps,
              force_shifted: bool = False) -> jax.Array:
    """The XLA:CPU formulation of ``lax.conv_general_dilated`` (see the module docstring)."""
    plan = _conv_plan(x.shape, kernel.shape, strides, pads, taps)
    if plan == "contraction":
        return _contraction(x, kernel, strides, pads)
    if taps and (plan == "shifted" or (force_shifted and tuple(strides) == (1, 1))):
        return _shifted_conv(x, kernel, pads, tuple(taps))
    return _canonical_conv(x, kernel, tuple(strides), pads, (1, 1))


_AUTO = ["auto"]  # what formulation="auto" means while tracing (see default_formulation)


@contextlib.contextmanager
def default_formulation(formulation: str):
    """Within the block, ``formulation="auto"`` (the default of :func:`conv2d`,
    :func:`conv_transpose2d`, :class:`Conv`, :class:`ConvTranspose` and so of every genjax
    model) means ``formulation`` ("auto", "cpu" or "lax").

    It acts when a program is traced: a function ``jax.jit`` has already traced keeps the
    formulation it was traced with (its cache does not see this setting), so enter the block
    before the first call (``benchmarks/run.py --conv-formulation`` wraps the whole command).
    """
    _check_formulation(formulation)
    previous = _AUTO[0]
    _AUTO[0] = formulation
    try:
        yield
    finally:
        _AUTO[0] = previous


def _run(formulation: str, cpu: Callable, plain: Callable, *args) -> jax.Array:
    if formulation == "auto":
        formulation = _AUTO[0]
    if formulation == "cpu":
        return cpu(*args)
    if formulation == "lax":
        return plain(*args)
    return lax.platform_dependent(*args, cpu=cpu, default=plain)


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int | Sequence[int] = (1, 1),
    padding: str | Sequence[tuple[int, int]] = "SAME",
    mask: np.ndarray | None = None,
    formulation: str = "auto",
) -> jax.Array:
    """``lax.conv_general_dilated(x, kernel * mask, strides, padding, ("NHWC", "HWIO", "NHWC"))``.

    Args:
      x: (B, H, W, C_in) input.
      kernel: (kh, kw, C_in, C_out) kernel, same dtype as ``x``.
      strides: (sh, sw), or one int for both.
      padding: "SAME", "VALID" or ((top, bottom), (left, right)) as ``lax`` takes it.
      mask: optional static 0/1 numpy array broadcastable to the kernel shape (a masked
        convolution, e.g. PixelCNN's). The convolution uses ``kernel * mask`` (passing a kernel
        already multiplied by the mask gives the same result); on the CPU, taps the mask
        zeroes entirely are skipped. Derivatives are those of ``conv(x, kernel * mask)``.
      formulation: "auto" (the CPU formulation when lowered for the CPU, plain ``lax``
        elsewhere), "cpu" or "lax".

    Returns:
      (B, H_out, W_out, C_out) with ``x``'s dtype, as ``lax`` returns it.

    Raises:
      ValueError: if the shapes, strides, padding, mask or formulation do not fit.
      TypeError: if ``x`` and ``kernel`` have different dtypes.
    """
    _check_formulation(formulation)
    _check_operands("conv2d", x, kernel)
    strides = _pair("strides", strides)
    pads = _conv_padding(padding, x.shape[1:3], kernel.shape[:2], strides)
    static_mask = None if mask is None else _static_mask(mask, kernel.shape)
    if static_mask is not None:
        kernel = kernel * jnp.asarray(static_mask, kernel.dtype)
    out = jax.eval_shape(functools.partial(_lax_conv, strides=strides, pads=pads), x, kernel)
    if 0 in out.shape:  # nothing to compute: lax's (empty) result
        return _lax_conv(x, kernel, strides, pads)
    return _run(
        formulation,
        functools.partial(_cpu_conv, strides=strides, pads=pads,
                          taps=_taps_of(static_mask, kernel.shape)),
        functools.partial(_lax_conv, strides=strides, pads=pads),
        x, kernel,
    )


# ---------------------------------------------------------------------------------------------
# Transposed convolutions: "phase decomposition"


def _phase_plan(length: int, k: int, s: int, pad: tuple[int, int]):
    """One axis of a stride-``s`` transposed convolution as a stride-1 one over ``s`` phases.

    The transposed convolution is ``out[p] = sum_t d[p + t] k[t]`` with ``d`` the input dilated
    by ``s`` and padded by ``pad``. Output ``p = s q + r`` reads tap ``t`` only when
    ``r + t - pad_lo = 0 (mod s)``, at input ``q + (r + t - pad_lo) // s``. The stride-1
    convolution ``Y[j, rho] = sum_w xp[j + w] K[w, rho]`` (``xp`` the input padded by ``P`` in
    front) computes every phase; the output is ``out[p] = Z[p + c]`` with
    ``Z[s j + rho] = Y[j, rho]`` (depth-to-space), phase ``rho = (r + c) % s``. The offset
    ``c`` in ``[0, s)`` is chosen to make the window ``wn`` smallest.

    Returns:
      (wn, index, (P, P_high), c, out_length), ``index[w, rho]`` the tap of ``k`` at window
      offset ``w`` of phase ``rho``, or -1.
    """
    lo, hi = pad
    out_len = (length - 1) * s + 1 + lo + hi - k + 1
    best = None
    for c in range(s):
        entries = [((r + c) % s, (r + t - lo) // s - (r + c) // s, t)
                   for r in range(s) for t in range(k) if (r + t - lo) % s == 0]
        first = min(e[1] for e in entries)
        wn = max(e[1] for e in entries) - first + 1
        if best is None or wn < best[0]:
            best = (wn, c, entries, first)
    wn, c, entries, first = best
    index = -np.ones((wn, s), np.int64)
    for rho, off, t in entries:
        index[off - first, rho] = t
    y_len = -(-(c + out_len) // s)
    return wn, index, (-first, y_len + wn - 1 - length + first), c, out_len


def _phase_kernel(kernel: jax.Array, plan_h, plan_w) -> tuple[jax.Array, np.ndarray]:
    """The (wn_h, wn_w, C_in, s_h*s_w*C_out) kernel of the phases and its 0/1 mask."""
    kh, kw, c, o = kernel.shape
    (wh, ih, *_), (ww, iw, *_) = plan_h, plan_w
    sh, sw = ih.shape[1], iw.shape[1]
    zero = kh * kw  # the index of an appended zero tap
    valid = (ih[:, None, :, None] >= 0) & (iw[None, :, None, :] >= 0)  # (wh, ww, sh, sw)
    index = np.where(valid, ih[:, None, :, None] * kw + iw[None, :, None, :], zero)
    taps = jnp.concatenate([kernel.reshape(kh * kw, c, o), jnp.zeros((1, c, o), kernel.dtype)])
    k = jnp.transpose(taps[index], (0, 1, 4, 2, 3, 5)).reshape(wh, ww, c, sh * sw * o)
    mask = np.broadcast_to(valid.reshape(wh, ww, 1, sh * sw, 1), (wh, ww, c, sh * sw, o))
    return k, mask.reshape(wh, ww, c, sh * sw * o)


def _phase_conv_transpose(x: jax.Array, kernel: jax.Array, strides, pads: Pads) -> jax.Array:
    b, h, w, _ = x.shape
    o = kernel.shape[3]
    sh, sw = strides
    plan_h = _phase_plan(h, kernel.shape[0], sh, pads[0])
    plan_w = _phase_plan(w, kernel.shape[1], sw, pads[1])
    k, mask = _phase_kernel(kernel, plan_h, plan_w)
    # lax's kernel gradient of this convolution is the pathological case (see above).
    y = _cpu_conv(x, k, (1, 1), (plan_h[2], plan_w[2]), _taps_of(mask, k.shape),
                  force_shifted=True)
    hy, wy = y.shape[1:3]
    y = y.reshape(b, hy, wy, sh, sw, o).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(b, hy * sh, wy * sw, o)
    (ch, out_h), (cw, out_w) = plan_h[3:], plan_w[3:]
    return y[:, ch:ch + out_h, cw:cw + out_w]


def _transpose_plan(kernel_shape, strides) -> str:
    """The CPU formulation of a transposed convolution: "convolution" (stride 1),
    "phase decomposition" or "lax"."""
    if tuple(strides) == (1, 1):  # no dilation: an ordinary convolution
        return "convolution"
    # Every strided one, even to few output channels (DCGAN's last layer: lax 16 CPU-ms, phases
    # 30 in a plain program): lax's input-dilated convolution has a gradient XLA:CPU leaves
    # non-canonical even when written out, which inside a loop runs naively.
    return "phase decomposition"


def _cpu_conv_transpose(x: jax.Array, kernel: jax.Array, strides, pads: Pads) -> jax.Array:
    """The XLA:CPU formulation of ``lax.conv_transpose`` (see the module docstring)."""
    plan = _transpose_plan(kernel.shape, strides)
    if plan == "convolution":
        return _cpu_conv(x, kernel, (1, 1), pads, _taps_of(None, kernel.shape))
    if plan == "phase decomposition":
        return _phase_conv_transpose(x, kernel, strides, pads)
    return _canonical_conv(x, kernel, (1, 1), pads, tuple(strides))


_PLAN_NAMES = {"contraction": "contraction", "shifted": "shifted gradients", "lax": "lax"}


def cpu_formulation(x_shape, kernel_shape, *, strides: int | Sequence[int] = 1,
                    padding: Any = "SAME", mask: np.ndarray | None = None,
                    transpose: bool = False) -> str:
    """The formulation :func:`conv2d` (or, with ``transpose``, :func:`conv_transpose2d`) uses
    on the CPU for these shapes: "contraction", "shifted gradients", "phase decomposition"
    or "lax". Computes nothing; for benchmarks, tests and the curious.
    """
    strides = _pair("strides", strides)
    kernel_shape = tuple(kernel_shape)
    if transpose:
        plan = _transpose_plan(kernel_shape, strides)
        if plan != "convolution":
            return plan
        pads = transpose_padding(padding, kernel_shape[:2], strides)
        return _PLAN_NAMES[_conv_plan(x_shape, kernel_shape, (1, 1), pads,
                                      _taps_of(None, kernel_shape))]
    pads = _conv_padding(padding, tuple(x_shape[1:3]), kernel_shape[:2], strides)
    taps = _taps_of(None if mask is None else _static_mask(mask, kernel_shape), kernel_shape)
    return _PLAN_NAMES[_conv_plan(x_shape, kernel_shape, strides, pads, taps)]


def conv_transpose2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int | Sequence[int],
    padding: str | Sequence[tuple[int, int]] = "SAME",
    formulation: str = "auto",
) -> jax.Array:
    """``lax.conv_transpose(x, kernel, strides, padding, ("NHWC", "HWIO", "NHWC"))``.

    The kernel is not flipped (``transpose_kernel=False``, as in Flax's ``nn.ConvTranspose``).
    "SAME" and "VALID" are the paddings of the matching forward convolution ("SAME" gives
    ``H * s`` rows); explicit ``((top, bottom), (left, right))`` pads apply to the
    stride-dilated input (see :func:`transpose_padding`).

    Args:
      x: (B, H, W, C_in) input.
      kernel: (kh, kw, C_in, C_out) kernel, same dtype as ``x``.
      strides: (sh, sw), or one int: the upsampling factors.
      padding: "SAME", "VALID" or ((top, bottom), (left, right)).
      formulation: "auto" (phase decomposition when lowered for the CPU, plain ``lax``
        elsewhere), "cpu" or "lax".

    Returns:
      (B, H_out, W_out, C_out) with ``x``'s dtype.

    Raises:
      ValueError: if the shapes, strides, padding or formulation do not fit.
      TypeError: if ``x`` and ``kernel`` have different dtypes.
    """
    _check_formulation(formulation)
    _check_operands("conv_transpose2d", x, kernel)
    strides = _pair("strides", strides)
    pads = transpose_padding(padding, kernel.shape[:2], strides)
    out = jax.eval_shape(functools.partial(_lax_conv_transpose, strides=strides, pads=pads),
                         x, kernel)
    if 0 in out.shape:
        return _lax_conv_transpose(x, kernel, strides, pads)
    return _run(
        formulation,
        functools.partial(_cpu_conv_transpose, strides=strides, pads=pads),
        functools.partial(_lax_conv_transpose, strides=strides, pads=pads),
        x, kernel,
    )


# ---------------------------------------------------------------------------------------------
# Flax modules


def _kernel_size(value: Any) -> tuple[int, int]:
    if isinstance(value, int) or len(tuple(value)) != 2:
        raise ValueError(f"kernel_size must be (kh, kw) for a 2-D convolution, got {value!r}")
    return _pair("kernel_size", value)


def _module_padding(padding: Any, allowed: tuple[str, ...]) -> Any:
    """Flax's padding forms: a string, an int, or per-dimension ints or (low, high) pairs."""
    if isinstance(padding, str):
        if padding.upper() not in allowed:
            raise ValueError(f"padding must be one of {allowed}, an int or per-dimension pads, "
                             f"got {padding!r}")
        return padding.upper()
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding, Sequence) and len(padding) == 2:
        pads = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
        if all(len(p) == 2 for p in pads):
            return tuple(pads)
    raise ValueError(f"padding must be one of {allowed}, an int or per-dimension pads, got "
                     f"{padding!r}")


def _flatten_batch(inputs: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
    """(..., H, W, C) -> (B, H, W, C), as Flax does for any number of leading batch axes."""
    if inputs.ndim < 3:
        raise ValueError(f"inputs must be (..., H, W, C), got shape {inputs.shape}")
    batch_shape = inputs.shape[:-3]
    return inputs.reshape((-1, *inputs.shape[-3:])), batch_shape


class Conv(nn.Module):
    """``flax.linen.Conv`` (2-D) computed with :func:`conv2d`.

    Same attributes, parameter names (``kernel`` (kh, kw, C_in, features), ``bias``
    (features,)), shapes, dtypes, initialisers and dtype rules (``dtype`` is the computation
    dtype, inputs and kernel are cast to it, ``None`` infers it; parameters are created in
    ``param_dtype``), so a model switched to it keeps its checkpoints and, for the same key,
    its initial parameters. ``mask`` must be a static 0/1 array (Flax allows a traced one);
    masked taps are skipped on the CPU. Not supported: input or kernel dilation, feature
    groups, 'CAUSAL' padding (1-D only in Flax).

    Attributes:
      features: output channels.
      kernel_size: (kh, kw).
      strides: an int or (sh, sw); None means 1.
      padding: 'SAME', 'VALID', 'CIRCULAR', 'REFLECT', an int, or per-dimension ints or
        (low, high) pairs.
      use_bias: add a learned bias.
      mask: optional static 0/1 mask of the kernel's shape.
      dtype: computation dtype (None: inferred from inputs and parameters).
      param_dtype: dtype of the parameters.
      kernel_init, bias_init: initialisers (Flax's defaults: LeCun normal, zeros).
      formulation: see :func:`conv2d`.
    """

    features: int
    kernel_size: Sequence[int]
    strides: int | Sequence[int] | None = 1
    padding: Any = "SAME"
    use_bias: bool = True
    mask: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.linear.default_kernel_init
    bias_init: Callable = nn.initializers.zeros_init()
    formulation: str = "auto"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        kernel_size = _kernel_size(self.kernel_size)
        strides = _pair("strides", 1 if self.strides is None else self.strides)
        padding = _module_padding(self.padding, ("SAME", "VALID", "CIRCULAR", "REFLECT"))
        x, batch_shape = _flatten_batch(inputs)
        if padding in ("CIRCULAR", "REFLECT"):
            pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel_size] + [(0, 0)]
            x = jnp.pad(x, pads, mode={"CIRCULAR": "wrap", "REFLECT": "reflect"}[padding])
            padding = "VALID"
        kernel_shape = (*kernel_size, x.shape[-1], self.features)
        mask = None if self.mask is None else np.asarray(self.mask)
        if mask is not None and mask.shape != kernel_shape:
            raise ValueError(f"mask must have the kernel's shape {kernel_shape}, got {mask.shape}")
        kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        y = conv2d(x, kernel, strides=strides, padding=padding, mask=mask,
                   formulation=self.formulation)
        if bias is not None:
            y = y + bias.reshape(1, 1, 1, -1)
        return y.reshape(*batch_shape, *y.shape[1:])


class ConvTranspose(nn.Module):
    """``flax.linen.ConvTranspose`` (2-D, ``transpose_kernel=False``) computed with
    :func:`conv_transpose2d`.

    Same attributes, parameter names (``kernel`` (kh, kw, C_in, features), ``bias``),
    shapes, dtypes, initialisers and dtype rules as Flax's. Not supported: kernel dilation,
    ``transpose_kernel=True``, 'CIRCULAR' padding.

    Attributes:
      features: output channels.
      kernel_size: (kh, kw).
      strides: an int or (sh, sw): the upsampling factors; None means 1.
      padding: 'SAME', 'VALID', an int, or per-dimension ints or (low, high) pairs (pads of
        the stride-dilated input, as ``lax.conv_transpose`` takes them).
      use_bias: add a learned bias.
      mask: optional 0/1 mask of the kernel's shape, multiplied into the kernel.
      dtype: computation dtype (None: inferred from inputs and parameters).
      param_dtype: dtype of the parameters.
      kernel_init, bias_init: initialisers (Flax's defaults: LeCun normal, zeros).
      formulation: see :func:`conv_transpose2d`.
    """

    features: int
    kernel_size: Sequence[int]
    strides: int | Sequence[int] | None = None
    padding: Any = "SAME"
    use_bias: bool = True
    mask: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.linear.default_kernel_init
    bias_init: Callable = nn.initializers.zeros_init()
    formulation: str = "auto"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        kernel_size = _kernel_size(self.kernel_size)
        strides = _pair("strides", 1 if self.strides is None else self.strides)
        padding = _module_padding(self.padding, ("SAME", "VALID"))
        x, batch_shape = _flatten_batch(inputs)
        kernel_shape = (*kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != kernel_shape:
                raise ValueError(
                    f"mask must have the kernel's shape {kernel_shape}, got {mask.shape}")
            kernel = kernel * mask
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        y = conv_transpose2d(x, kernel, strides=strides, padding=padding,
                             formulation=self.formulation)
        if bias is not None:
            y = y + bias.reshape(1, 1, 1, -1)
        return y.reshape(*batch_shape, *y.shape[1:])
