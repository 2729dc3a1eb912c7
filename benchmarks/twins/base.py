"""The interface of a PyTorch twin of a genjax method's train step.

A twin holds torch modules with the same architecture as the method's Flax modules, optimizers
that make the same updates (:class:`twins.common.OptaxAdam`) and a ``train_step``
that does the same work as ``method.train_step``: the same losses on the same batch, the same
number of optimizer updates. It is written the way a careful PyTorch user would write it (eager
mode, NCHW, ``foreach`` Adam, no gradients computed for parameters that are not updated).

Equivalence is checked, not assumed: :meth:`Twin.load` copies genjax's initial parameters,
:meth:`Twin.genjax_inputs` reproduces the inputs and noise genjax's step draws at a given state
(with genjax's own functions and keys), and the twin's losses on those must equal genjax's.
:meth:`Twin.draw_inputs` draws the same kinds of inputs with torch's generator, for the timed
steps.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch

from .common import autocast, set_precision


class Twin(abc.ABC):
    """A PyTorch twin of one genjax method (see the module docstring).

    Args:
      method: the genjax method (its config and data spec define the twin).
      device: ``"cpu"`` or ``"cuda"``.
      compute_dtype: ``"float32"`` or ``"bfloat16"`` (bfloat16: ``torch.autocast``; the losses
        are reduced in float32, as genjax does).
      seed: seed of the twin's own noise (:meth:`draw_inputs`).

    Attributes:
      losses: ``{twin loss name: genjax metric name}``, the numbers compared with genjax's.
    """

    losses: dict[str, str] = {}

    def __init__(self, method, *, device: str = "cpu", compute_dtype: str = "float32",
                 seed: int = 0):
        self.method = method
        self.config = method.config
        self.data = method.data
        self.device = device
        self.compute_dtype = compute_dtype
        self.rng = torch.Generator(device=device)
        self.rng.manual_seed(seed)
        set_precision(device, compute_dtype)

    def autocast(self):
        return autocast(self.device, self.compute_dtype)

    def tensor(self, array: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A host array as a tensor on the twin's device."""
        array = np.asarray(array)
        if not array.flags.writeable:  # jax's host buffers are read-only; torch wants to own one
            array = array.copy()
        return torch.from_numpy(array).to(device=self.device, dtype=dtype)

    @abc.abstractmethod
    def load(self, state) -> None:
        """Copies the parameters of genjax's ``TrainState`` into the twin; fresh optimizers."""

    @abc.abstractmethod
    def genjax_inputs(self, state, host_batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The inputs and noise genjax's ``train_step(state, batch)`` draws, as twin tensors."""

    @abc.abstractmethod
    def draw_inputs(self, host_batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The same kinds of inputs drawn with the twin's own generator (for timing)."""

    @abc.abstractmethod
    def train_step(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One training step (all its optimizer updates); returns the detached losses."""

    def modules(self) -> list[torch.nn.Module]:
        """The twin's torch modules (for counting parameters)."""
        return [m for m in vars(self).values() if isinstance(m, torch.nn.Module)]

    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.modules() for p in m.parameters())
