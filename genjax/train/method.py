"""The interface a trainable method offers the engine, and the registry of methods by name.

A method ties a model (``genjax.models``), its losses (``genjax.losses``) and its sampler
together. The engine (:mod:`genjax.train.loop`) owns everything else: data, devices, jit,
checkpoints, logging. A method must keep :meth:`Method.train_step` pure: every random number
comes from ``state.step_keys(...)``; nothing reads globals.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from genjax.train.config import Config
from genjax.train.state import ModelState, TrainState


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a method may know about its data before seeing it."""

    shape: tuple[int, int, int]  # (H, W, C)
    num_bits: int  # 8 for 8-bit images, 1 for binary images
    num_classes: int | None
    name: str

    @property
    def num_dims(self) -> int:
        return int(np.prod(self.shape))


class Method(abc.ABC):
    """Base class of every gradient-trained method.

    Subclasses set ``name`` and ``model_config`` (the dataclass type of ``Config.model``) and
    implement :meth:`init`, :meth:`train_step`, :meth:`evaluate` and :meth:`sample`.
    """

    name: ClassVar[str]
    model_config: ClassVar[type]

    def __init__(self, config: Config, data: DataSpec):
        if not isinstance(config.model, self.model_config):
            raise TypeError(
                f"method {self.name!r} needs config.model of type {self.model_config.__name__}, "
                f"got {type(config.model).__name__}"
            )
        self.config = config
        self.data = data

    @abc.abstractmethod
    def init(self, key: jax.Array, batch: dict[str, jax.Array]) -> dict[str, ModelState]:
        """Initial model states (params and optimizer states) from an example batch."""

    @abc.abstractmethod
    def train_step(
        self, state: TrainState, batch: dict[str, jax.Array]
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One update. Pure; the engine jits it, donates ``state`` and increments the step.

        Returns the new state and scalar metrics: each loss term and the norms returned by
        :func:`genjax.train.state.apply_gradients`.
        """

    def host_batch(self, step: int, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The host batch of ``step`` as the step receives it; by default ``batch`` unchanged.

        A method that needs more inputs than the dataset's (e.g. CycleGAN's images of a second
        dataset) adds them here, on the host, before the batch is sharded over the devices.
        Added arrays must have the batch's leading size and be a pure function of
        ``(config.train.seed, step)`` so that a resumed run sees the same batches.
        """
        return batch

    @abc.abstractmethod
    def evaluate(self, state: TrainState, dataset: Any, key: jax.Array) -> dict[str, float]:
        """Metrics on held-out data (``dataset`` is a :class:`genjax.data.ArrayDataset`)."""

    @abc.abstractmethod
    def sample(self, state: TrainState, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples as float images in [0, 1], shape ``(num, H, W, C)``."""

    @abc.abstractmethod
    def write_pictures(
        self, state: TrainState, outdir: Path, *, dataset: Any, key: jax.Array, step: int
    ) -> list[Path]:
        """Writes this step's PNG pictures (sample grids, ...) into ``outdir``; returns paths."""


class FitMethod(abc.ABC):
    """A method fitted by its own algorithm (EM, a closed form) instead of the step loop.

    ``genjax train`` calls :meth:`fit` with the run's folder; it must write there what a
    gradient-trained run writes: ``config.json``, ``metrics.jsonl``, ``results.json``, PNG
    pictures under ``pictures/`` and the fitted parameters as a verified checkpoint
    (:class:`genjax.train.checkpoint.CheckpointStore`), and return the summary dict
    (``{"status": "finished", "eval": {...}, ...}``).
    """

    name: ClassVar[str]
    model_config: ClassVar[type]

    def __init__(self, config: Config):
        if not isinstance(config.model, self.model_config):
            raise TypeError(
                f"method {self.name!r} needs config.model of type {self.model_config.__name__}, "
                f"got {type(config.model).__name__}"
            )
        self.config = config

    @abc.abstractmethod
    def fit(self, workdir: Path) -> dict[str, Any]:
        """Fits, evaluates, writes pictures and parameters into ``workdir``; returns a summary."""

    @abc.abstractmethod
    def evaluate(self, workdir: Path) -> dict[str, float]:
        """Metrics of the parameters saved in ``workdir`` on the eval split."""

    @abc.abstractmethod
    def sample(self, workdir: Path, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples from the parameters saved in ``workdir``, images in [0, 1]
        (``(num, H, W, C)``) or points (``(num, D)``) for vector data."""


_REGISTRY: dict[str, type[Method] | type[FitMethod]] = {}


def register(cls):
    """Class decorator adding a method to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin_methods() -> None:
    # Plugin-style discovery: the built-in methods register themselves when their package is
    # imported. Imported by name so the engine layer has no static dependency on it.
    importlib.import_module("genjax.methods")


def get_method(name: str) -> type[Method] | type[FitMethod]:
    """The method class registered as ``name``; unknown names list the known ones."""
    _load_builtin_methods()

    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def available_methods() -> list[str]:
    _load_builtin_methods()

    return sorted(_REGISTRY)
