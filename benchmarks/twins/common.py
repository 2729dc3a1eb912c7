"""What every PyTorch twin shares: the optimizer as optax runs it, data preprocessing, precision.

A twin's optimizer must make the updates genjax's does, so that a step of the twin is the same
work: :class:`OptaxAdam` is ``torch.optim.Adam`` (``foreach`` kernels) driven by genjax's own
learning-rate schedule (evaluated once per update count, as ``optax.scale_by_learning_rate``
does) with optax's global-norm clipping (``optax.clip_by_global_norm``: no ``1e-6`` in the
denominator, unlike ``torch.nn.utils.clip_grad_norm_``). Adam's update is the same expression in
both libraries: ``lr * m_hat / (sqrt(v_hat) + eps)``.

:func:`preprocess` is :func:`genjax.data.preprocess` in torch, for a twin's own (timed) steps;
the equivalence checks feed genjax's prepared inputs instead, so they do not depend on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from genjax.train.config import OptimConfig
from genjax.train.optim import learning_rate_schedule


class UnsupportedConfig(ValueError):
    """The config asks for something this twin does not implement; the message says what."""


class OptaxAdam:
    """``optax.chain(clip_by_global_norm(c), adam(schedule, b1, b2, eps))`` on torch parameters.

    Args:
      params: the parameters to update (a list of tensors with ``.grad``).
      cfg: genjax's optimizer section; only ``name="adam"`` is supported.
      num_steps: the ``num_steps`` genjax builds its schedule with (``train.num_steps``, or
        ``num_steps * n_critic`` for a GAN critic).
      learning_rate: overrides ``cfg.learning_rate`` (a GAN's discriminator rate).

    Raises:
      UnsupportedConfig: for an optimizer other than Adam.
    """

    def __init__(self, params, cfg: OptimConfig, num_steps: int, *,
                 learning_rate: float | None = None):
        if cfg.name != "adam":
            raise UnsupportedConfig(
                f"optim.name={cfg.name!r}: the PyTorch twins implement optim.name='adam' only")
        if learning_rate:
            cfg = dataclasses.replace(cfg, learning_rate=learning_rate)
        self.params = [p for p in params if p.requires_grad]
        self._schedule = learning_rate_schedule(cfg, num_steps)
        self._rates = np.zeros(0)
        self.clip = float(cfg.grad_clip_norm)
        self.count = 0
        self.opt = torch.optim.Adam(self.params, lr=self._rate(0), betas=(cfg.b1, cfg.b2),
                                    eps=cfg.eps, foreach=True)

    def _rate(self, count: int) -> float:
        if count >= len(self._rates):  # evaluate genjax's schedule in blocks, on the host
            size = max(1024, 2 * count + 1)
            self._rates = np.asarray(jax.vmap(self._schedule)(jnp.arange(size)), np.float64)
        return float(self._rates[count])

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One update from the parameters' ``.grad`` (clipped first when configured)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.clip > 0 and grads:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            # optax: where(norm < c, g, g / norm * c); no host synchronisation.
            factor = torch.where(norm < self.clip, torch.ones_like(norm), self.clip / norm)
            torch._foreach_mul_(grads, factor)
        for group in self.opt.param_groups:
            group["lr"] = self._rate(self.count)
        self.opt.step()
        self.count += 1


def preprocess(images: torch.Tensor, mode: str, num_bits: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`genjax.data.preprocess` in torch (same modes and formulas, torch's own noise).

    Raises:
      UnsupportedConfig: for ``mode="none"`` (continuous points have no twin).
    """
    max_value = float(2**num_bits - 1)
    if mode == "integer":
        return images.long()
    x = images.float()
    if mode == "unit":
        return x / max_value
    if mode == "symmetric":
        return x * (2.0 / max_value) - 1.0
    if mode == "binary":
        return x
    u = torch.rand(x.shape, generator=generator, device=x.device)
    if mode == "binarize_dynamic":
        return (u < x / max_value).float()
    if mode == "dequantize":
        scale = float(2**num_bits)
        upper = torch.nextafter((x + 1.0) / scale, torch.zeros((), device=x.device))
        return torch.minimum((x + u) / scale, upper)
    raise UnsupportedConfig(f"data.preprocess={mode!r} has no twin implementation")


def nchw(images: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    """A host NHWC batch as an NCHW tensor on ``device`` (a view when possible)."""
    t = torch.as_tensor(images)
    return t.permute(0, 3, 1, 2).to(device)


def autocast(device: str, compute_dtype: str):
    """The twin's counterpart of ``train.compute_dtype``: bfloat16 autocast, or nothing."""
    if compute_dtype == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_precision(device: str, compute_dtype: str) -> None:
    """float32 runs in true float32 on GPUs too (genjax traces them with 'highest' precision)."""
    if device == "cuda":
        allow = compute_dtype != "float32"
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def relative_difference(twin: float, reference: float) -> float:
    """``|twin - reference| / |reference|`` (absolute when the reference is 0)."""
    twin, reference = float(twin), float(reference)
    if not (math.isfinite(twin) and math.isfinite(reference)):
        return math.inf
    scale = abs(reference)
    return abs(twin - reference) / scale if scale > 0 else abs(twin - reference)


def to_numpy_tree(tree: Any) -> Any:
    """A pytree of device arrays as host numpy arrays (float32 kept)."""
    return jax.tree.map(lambda a: np.asarray(jax.device_get(a)), tree)
