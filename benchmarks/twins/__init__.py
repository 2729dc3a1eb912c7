"""PyTorch twins of genjax's train steps, for side-by-side throughput ratios.

One module per network family (``vae``, ``gan``, ``realnvp``, ``pixelcnn``, ``cyclegan``), the
shared optimizer and preprocessing in ``common``, the Flax -> PyTorch parameter layouts in
``convert``. :func:`make_twin` picks the twin of a genjax method, or raises
:class:`UnsupportedConfig` saying why there is none. Importing this package needs torch (the
``bench`` extra); ``benchmarks/run.py`` imports it only when torch is importable.
"""

from __future__ import annotations

from .base import Twin
from .common import UnsupportedConfig, relative_difference


def make_twin(method, *, device: str = "cpu", compute_dtype: str = "float32",
              seed: int = 0) -> Twin:
    """The twin of ``method`` (a genjax :class:`~genjax.train.method.Method`).

    Raises:
      UnsupportedConfig: no twin implements this method or this variant of it; the message
        names the config field.
    """
    kwargs = dict(device=device, compute_dtype=compute_dtype, seed=seed)
    name = method.name
    if name == "vae":
        from .vae import VAETwin

        return VAETwin(method, **kwargs)
    if name == "gan":
        from .gan import GANTwin

        return GANTwin(method, **kwargs)
    if name == "realnvp":
        from .realnvp import RealNVPTwin

        return RealNVPTwin(method, **kwargs)
    if name == "autoregressive":
        from .pixelcnn import PixelCNNTwin

        return PixelCNNTwin(method, **kwargs)
    if name == "cyclegan":
        from .cyclegan import CycleGANTwin

        return CycleGANTwin(method, **kwargs)
    raise UnsupportedConfig(f"method {name!r} has no PyTorch twin")


__all__ = ["Twin", "UnsupportedConfig", "make_twin", "relative_difference"]
