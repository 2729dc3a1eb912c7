"""A small convolutional image classifier whose penultimate layer serves as a feature space.

Architecture (LeNet-like; LeCun et al. 1998, with ReLU and max pooling):

    x (B, H, W, C)
    -> [conv 3x3 (f channels, SAME) -> ReLU -> max-pool 2x2 stride 2 (SAME)]  for f in conv_features
    -> flatten -> dense (``dense`` units) -> ReLU       = the "features" (B, dense)
    -> dropout (training only)
    -> dense (num_classes)                               = the logits (B, num_classes)

Pooling with SAME padding keeps odd sizes valid, so one module serves 8x8 (8 -> 4 -> 2),
28x28 (28 -> 14 -> 7) and 32x32x3 (32 -> 16 -> 8) images. The features are taken after the
ReLU and before dropout, like the Inception-v3 pool3 features of the FID recipe (Heusel et
al. 2017): non-negative, deterministic, one vector per image.

Precision: ``dtype`` is the dtype of the computation (Flax's convention; ``bfloat16`` under
``train.compute_dtype=bfloat16``), parameters stay float32, and the outputs (features and
logits) are returned in float32, whatever ``dtype`` is.

The module computes; it does not know its loss (that is
:func:`genjax.losses.softmax_cross_entropy`) nor its input convention (the method maps
pixels to ``[0, 1]`` or ``[-1, 1]`` before calling it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.convolution import Conv


class CNNClassifier(nn.Module):
    """Conv-ReLU-pool stages, a dense ReLU feature layer and a linear classification head.

    Attributes:
      num_classes: number of output logits K (>= 2).
      conv_features: output channels of the conv stages, one stage per entry (each halves
        H and W, rounding up).
      dense: width of the feature layer (the dimension of :meth:`features`).
      dropout_rate: dropout on the feature layer during training only; 0 disables it. With
        a rate > 0, ``__call__(..., train=True)`` needs ``rngs={"dropout": key}``.
      dtype: the computation dtype (float32 or bfloat16); outputs are float32 either way.
    """

    num_classes: int
    conv_features: Sequence[int] = (32, 64)
    dense: int = 128
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    def setup(self):
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if not self.conv_features or any(f < 1 for f in self.conv_features):
            raise ValueError(
                f"conv_features must be a non-empty tuple of ints >= 1, got {self.conv_features}"
            )
        if self.dense < 1:
            raise ValueError(f"dense must be >= 1, got {self.dense}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        self.convs = [
            Conv(f, (3, 3), padding="SAME", dtype=self.dtype, name=f"conv_{i}")
            for i, f in enumerate(self.conv_features)
        ]
        self.feature_layer = nn.Dense(self.dense, dtype=self.dtype, name="features")
        self.dropout = nn.Dropout(self.dropout_rate)
        self.head = nn.Dense(self.num_classes, dtype=self.dtype, name="logits")

    def _embed(self, x: jax.Array) -> jax.Array:
        """The feature layer's activations, in ``dtype``."""
        if x.ndim != 4:
            raise ValueError(f"x must be images (B, H, W, C), got shape {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"x must be floating point, got dtype {x.dtype}")
        h = x
        for conv in self.convs:
            h = nn.relu(conv(h))
            h = nn.max_pool(h, (2, 2), strides=(2, 2), padding="SAME")
        h = h.reshape(h.shape[0], -1)
        return nn.relu(self.feature_layer(h))

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Class logits.

        Args:
          x: (B, H, W, C) floating-point images.
          train: applies dropout when True (needs the ``"dropout"`` rng if the rate is > 0).

        Returns:
          (B, num_classes) float32 logits.
        """
        logits = self.head(self.dropout(self._embed(x), deterministic=not train))
        return logits.astype(jnp.float32)

    def features(self, x: jax.Array) -> jax.Array:
        """The feature layer, (B, dense) float32: post-ReLU activations, no dropout."""
        return self._embed(x).astype(jnp.float32)

    def features_and_logits(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(features(x), __call__(x, train=False))`` from one forward pass, both float32."""
        h = self._embed(x)
        return h.astype(jnp.float32), self.head(h).astype(jnp.float32)
