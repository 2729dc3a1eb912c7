"""Flax parameter layouts to PyTorch layouts.

Flax stores a dense kernel as ``(in, out)`` and a convolution kernel as ``HWIO`` (images NHWC);
PyTorch stores ``(out, in)`` and ``OIHW`` (images NCHW). A Flax ``ConvTranspose`` (with its
default ``transpose_kernel=False``) is ``lax.conv_transpose``: the input is dilated by the
stride and *correlated* with the kernel as stored, ``(kh, kw, in, out)``. A PyTorch
``ConvTranspose2d`` is the gradient of a convolution, i.e. the dilated input correlated with the
kernel flipped in both spatial axes, stored ``(in, out, kh, kw)``. So the torch kernel is the
Flax kernel flipped spatially and transposed to ``IOHW`` (checked numerically by
``tests/test_benchmarks.py``).

Where a Flax model flattens an NHWC map into a dense layer (or reshapes a dense output into
one), the twin works in NCHW; :func:`nhwc_to_nchw_rows` and :func:`nhwc_to_nchw_columns`
permute the dense kernel so that the twin needs no transposes at run time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _array(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def dense_weight(kernel: Any) -> np.ndarray:
    """Flax ``Dense`` kernel ``(in, out)`` -> ``nn.Linear.weight`` ``(out, in)``."""
    return _array(kernel).T


def conv_weight(kernel: Any) -> np.ndarray:
    """Flax ``Conv`` kernel ``HWIO`` -> ``nn.Conv2d.weight`` ``OIHW``."""
    return _array(kernel).transpose(3, 2, 0, 1)


def conv_transpose_weight(kernel: Any) -> np.ndarray:
    """Flax ``ConvTranspose`` kernel ``HWIO`` -> ``nn.ConvTranspose2d.weight`` ``IOHW``, flipped."""
    return np.ascontiguousarray(_array(kernel)[::-1, ::-1].transpose(2, 3, 0, 1))


def nhwc_to_nchw_rows(kernel: Any, height: int, width: int) -> np.ndarray:
    """A dense kernel reading an NHWC-flattened map, as ``nn.Linear.weight`` reading NCHW.

    ``kernel`` is ``(H * W * C, out)`` with input index ``(i * W + j) * C + c``; the result is
    ``(out, C * H * W)`` with input index ``(c * H + i) * W + j``.
    """
    k = _array(kernel)
    channels = k.shape[0] // (height * width)
    k = k.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(k.shape[0], -1)
    return np.ascontiguousarray(k.T)


def nhwc_to_nchw_columns(kernel: Any, height: int, width: int) -> np.ndarray:
    """A dense kernel whose output is reshaped to NHWC, as ``nn.Linear.weight`` giving NCHW.

    ``kernel`` is ``(in, H * W * C)``; the result is ``(C * H * W, in)``.
    """
    k = _array(kernel)
    channels = k.shape[1] // (height * width)
    k = k.reshape(-1, height, width, channels).transpose(0, 3, 1, 2).reshape(k.shape[0], -1)
    return np.ascontiguousarray(k.T)


def nhwc_to_nchw_vector(v: Any, height: int, width: int) -> np.ndarray:
    """A per-feature vector over an NHWC-flattened map, reordered to NCHW order."""
    v = _array(v)
    return np.ascontiguousarray(v.reshape(height, width, -1).transpose(2, 0, 1).reshape(-1))


@torch.no_grad()
def assign(target: torch.Tensor, value: Any) -> None:
    """Copies ``value`` (numpy) into ``target``, refusing a shape mismatch by name."""
    value = torch.from_numpy(np.array(value, dtype=np.float32)).to(target.dtype)
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(
            f"converted parameter of shape {tuple(value.shape)} does not fit the twin's tensor "
            f"of shape {tuple(target.shape)}")
    target.copy_(value.to(target.device))


def load_dense(linear: torch.nn.Linear, params: dict, *, weight: np.ndarray | None = None,
               bias: np.ndarray | None = None) -> None:
    """Copies a Flax ``Dense``'s ``{"kernel", "bias"}`` into ``linear`` (optionally permuted)."""
    assign(linear.weight, dense_weight(params["kernel"]) if weight is None else weight)
    if linear.bias is not None:
        assign(linear.bias, _array(params["bias"]) if bias is None else bias)
    elif "bias" in params:
        raise ValueError("the Flax layer has a bias, the twin's layer has none")


def _load_kernel_and_bias(layer: torch.nn.Module, weight, params: dict) -> None:
    assign(layer.weight, weight)
    if layer.bias is not None:
        assign(layer.bias, params["bias"])
    elif "bias" in params:
        raise ValueError(f"the Flax layer has a bias, the twin's {type(layer).__name__} has none")


def load_conv(conv: torch.nn.Conv2d, params: dict) -> None:
    """Copies a Flax ``Conv``'s ``{"kernel", "bias"}`` into ``conv``."""
    _load_kernel_and_bias(conv, conv_weight(params["kernel"]), params)


def load_conv_transpose(conv: torch.nn.ConvTranspose2d, params: dict) -> None:
    """Copies a Flax ``ConvTranspose``'s ``{"kernel", "bias"}`` into ``conv``."""
    _load_kernel_and_bias(conv, conv_transpose_weight(params["kernel"]), params)


def load_batch_norm(norm: torch.nn.modules.batchnorm._BatchNorm, params: dict,
                    stats: dict | None = None, *, order=None) -> None:
    """Copies a Flax ``BatchNorm``'s scale/bias (and running mean/var) into ``norm``.

    ``order`` maps a flat vector to the twin's feature order (e.g. NHWC -> NCHW).
    """
    order = order or (lambda v: _array(v))
    assign(norm.weight, order(params["scale"]))
    assign(norm.bias, order(params["bias"]))
    if stats is not None:
        assign(norm.running_mean, order(stats["mean"]))
        assign(norm.running_var, order(stats["var"]))
