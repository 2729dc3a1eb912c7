"""Real NVP flows (Dinh, Sohl-Dickstein & Bengio 2017): multi-scale image flow and 2-D toy flow.

A flow is a Flax Linen module with

* ``forward(x, *, train=False) -> (z, log_det)``: data to latent, ``log_det = log|det dz/dx|``
  per example, shape ``(B,)``, in nats;
* ``inverse(z) -> (x, log_det_inverse)``: latent to data with evaluation statistics,
  ``log_det_inverse = log|det dx/dz| = -log_det`` at the matching point;
* ``latent_shape(input_shape)``: the shape of ``z`` (equal to the input's shape here).

Call them as ``model.apply(variables, x, method="forward")``. With ``norm="batchnorm"`` and
``train=True`` also pass ``mutable=["batch_stats"]``. The model does not know its loss: the
change-of-variables log-likelihood ``log p(x) = log N(z; 0, I) + log_det`` and the bits/dim
conversion are in :mod:`genjax.losses.flow`. Sampling at temperature T is the caller's:
``inverse(T * eps)`` with ``eps ~ N(0, I)`` of shape ``latent_shape``.

Precision: ``dtype`` (``train.compute_dtype``) is the computation dtype of the couplings' s/t
networks only. The data path is float32 whatever ``dtype`` is (see
:mod:`genjax.models.flow_layers`): ``x`` is taken to float32, ``z`` and ``log_det`` are
float32, every log-determinant is accumulated in float32, and batch-norm statistics are
float32, so the inverse undoes the forward map to float32 rounding given the same s/t values.
With the default float32 nothing is cast and the numbers are those of a model without the
attribute.

References:
    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017:
    coupling eqs. 4-9, masks and squeeze Fig. 3, multi-scale architecture Sec. 3.6 (Fig. 4),
    batch normalization Sec. 3.7, architecture Sec. 4.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.flow_layers import (
    AffineCoupling,
    MaskedMLPCoupling,
    check_float_input,
    data_dtype,
    make_norm,
    squeeze,
    unsqueeze,
)


class _Flow(nn.Module):
    """Shared ``forward``/``inverse`` wrappers around ``__call__(x, *, inverse, train)``."""

    def forward(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Data to latent: ``(z, log|det dz/dx|)``, log-det of shape ``(B,)`` in nats."""
        return self(x, inverse=False, train=train)

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latent to data (evaluation statistics): ``(x, log|det dx/dz|)``."""
        return self(z, inverse=True, train=False)


def _run(steps, h, *, inverse: bool, train: bool) -> tuple[jax.Array, jax.Array]:
    """Applies ``steps`` (bijectors, ``None`` skipped) in order, or reversed for the inverse."""
    total = jnp.zeros(h.shape[0], h.dtype)
    for step in reversed(steps) if inverse else steps:
        if step is not None:
            h, log_det = step(h, inverse=inverse, train=train)
            total = total + log_det
    return h, total


class RealNVP(_Flow):
    """Multi-scale Real NVP for images ``(B, H, W, C)`` (Sec. 3.6 and 4.1).

    Each of the first ``num_scales - 1`` scales applies 3 checkerboard couplings (parities
    0, 1, 0), a :func:`~genjax.models.flow_layers.squeeze`, 3 channel-wise couplings
    (parities 0, 1, 0), and factors out the second half of the channels (Sec. 3.6); the
    final scale applies 4 checkerboard couplings (parities 0, 1, 0, 1) to what remains. A
    normalization bijector (``norm``) follows every coupling. H and W must be divisible by
    ``2 ** (num_scales - 1)``.

    Latent layout: ``z`` has the input's shape. The final scale's output is concatenated
    along channels with the variables factored out at the last squeezed scale (kept first,
    factored second), unsqueezed, and so on back to the first scale; this is exactly how
    the forward pass split them, so ``z`` is the input's pixels in the input's layout and
    ``inverse`` undoes it. The standard-normal prior is elementwise, so the layout does not
    change the likelihood.

    Attributes:
        num_scales: number of scales L (L - 1 squeezes).
        features: feature maps of each coupling's ResNet s/t network.
        num_blocks: residual blocks per s/t network.
        norm: ``"actnorm"`` (data-dependent init), ``"batchnorm"`` or ``"none"``.
        zero_init: start every s/t network's last layer at zero (identity couplings).
        dtype: computation dtype of the s/t networks (float32 or bfloat16); parameters, the
            data path, ``z`` and ``log_det`` are float32.
    """

    num_scales: int = 2
    features: int = 64
    num_blocks: int = 8
    norm: str = "actnorm"
    zero_init: bool = True
    dtype: Any = jnp.float32

    def latent_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of ``z`` for an input of ``input_shape`` (``(..., H, W, C)``): the same."""
        shape = tuple(int(d) for d in input_shape)
        if len(shape) < 3:
            raise ValueError(f"input_shape must end in (H, W, C), got {shape}")
        factor = 2 ** (self.num_scales - 1)
        if shape[-3] % factor or shape[-2] % factor:
            raise ValueError(
                f"input_shape height and width must be divisible by 2 ** (num_scales - 1) = "
                f"{factor} for num_scales={self.num_scales}, got {shape}"
            )
        return shape

    def _coupling(self, mask_type: str, parity: int, name: str) -> AffineCoupling:
        return AffineCoupling(
            mask_type,
            parity,
            self.features,
            self.num_blocks,
            self.zero_init,
            self.dtype,
            name=name,
        )

    def _steps(self, mask_type: str, parities: Sequence[int], prefix: str) -> list:
        steps = []
        for i, parity in enumerate(parities):
            steps.append(self._coupling(mask_type, parity, f"{prefix}_{mask_type}{i}"))
            steps.append(make_norm(self.norm, f"{prefix}_{mask_type}{i}_norm"))
        return steps

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Forward (``inverse=False``, data to latent) or inverse map; see the module doc."""
        check_float_input(x, "x", ndim=4)
        if inverse and train:
            raise ValueError("train=True is not defined for the inverse; it uses running stats")
        if self.num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {self.num_scales}")
        self.latent_shape(x.shape)
        x = x.astype(data_dtype(x))
        scales = [
            (
                self._steps("checkerboard", (0, 1, 0), f"scale{i}"),
                self._steps("channel", (0, 1, 0), f"scale{i}"),
            )
            for i in range(self.num_scales - 1)
        ]
        final = self._steps("checkerboard", (0, 1, 0, 1), f"scale{self.num_scales - 1}")
        total = jnp.zeros(x.shape[0], x.dtype)
        if not inverse:
            h, factored = x, []
            for checker, channel in scales:
                h, ld_a = _run(checker, h, inverse=False, train=train)
                h, ld_b = _run(channel, squeeze(h), inverse=False, train=train)
                h, z_i = jnp.split(h, 2, axis=-1)
                factored.append(z_i)
                total = total + ld_a + ld_b
            h, ld = _run(final, h, inverse=False, train=train)
            for z_i in reversed(factored):
                h = unsqueeze(jnp.concatenate([h, z_i], axis=-1))
            return h, total + ld
        h, factored = x, []
        for _ in scales:
            h, z_i = jnp.split(squeeze(h), 2, axis=-1)
            factored.append(z_i)
        h, total = _run(final, h, inverse=True, train=False)
        for (checker, channel), z_i in zip(reversed(scales), reversed(factored), strict=True):
            h, ld_b = _run(channel, jnp.concatenate([h, z_i], axis=-1), inverse=True, train=False)
            h, ld_a = _run(checker, unsqueeze(h), inverse=True, train=False)
            total = total + ld_a + ld_b
        return h, total


class RealNVP2D(_Flow):
    """Real NVP on vectors ``(B, D)`` (2-D toy densities: two moons, rings).

    ``num_couplings`` :class:`~genjax.models.flow_layers.MaskedMLPCoupling` layers with
    alternating masks (parity 0, 1, 0, ...: even then odd coordinates condition), each
    followed by the ``norm`` bijector. ``z`` has the input's shape.

    Attributes:
        num_couplings: number of coupling layers (use an even number so every coordinate is
            transformed equally often).
        hidden: widths of each coupling's MLP s/t network.
        norm: ``"actnorm"``, ``"batchnorm"`` or ``"none"``.
        zero_init: start every s/t network's last layer at zero (identity couplings).
        dtype: computation dtype of the MLP s/t networks (float32 or bfloat16); parameters,
            the data path, ``z`` and ``log_det`` are float32.
    """

    num_couplings: int = 8
    hidden: Sequence[int] = (256, 256)
    norm: str = "none"
    zero_init: bool = True
    dtype: Any = jnp.float32

    def latent_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of ``z`` for an input of ``input_shape`` (``(..., D)``, D >= 2): the same."""
        shape = tuple(int(d) for d in input_shape)
        if len(shape) < 1 or shape[-1] < 2:
            raise ValueError(f"input_shape must end in D >= 2 features, got {shape}")
        return shape

    @nn.compact
    def __call__(
        self, x: jax.Array, *, inverse: bool = False, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Forward (``inverse=False``, data to latent) or inverse map; see the module doc."""
        check_float_input(x, "x", ndim=2)
        if inverse and train:
            raise ValueError("train=True is not defined for the inverse; it uses running stats")
        self.latent_shape(x.shape)
        if self.num_couplings < 1:
            raise ValueError(f"num_couplings must be >= 1, got {self.num_couplings}")
        x = x.astype(data_dtype(x))
        steps = []
        for i in range(self.num_couplings):
            steps.append(
                MaskedMLPCoupling(
                    i % 2, tuple(self.hidden), self.zero_init, self.dtype, name=f"coupling{i}"
                )
            )
            steps.append(make_norm(self.norm, f"coupling{i}_norm"))
        return _run(steps, x, inverse=inverse, train=train)
