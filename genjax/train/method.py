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

from genjax.train.config import Config, ConfigValueError, check_sections
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


class _ConfigChecks:
    """The config checks every method class offers (:func:`check_config` calls them).

    ``check_model`` holds the relations that need no data (between model fields, and to the
    data, optim, train and eval sections); ``check_data`` those that need the data's shape,
    bits or classes. Both raise :class:`~genjax.train.config.ConfigValueError` (one line naming
    the key, the value and what is accepted). Field types and ranges are the ``LIMITS`` of the
    config dataclasses, checked before either runs.
    """

    name: ClassVar[str]
    model_config: ClassVar[type]
    extra_datasets: ClassVar[tuple[str, ...]] = ()  # data.name values beside the datasets'

    @classmethod
    def check_model(cls, config: Config) -> None:
        """Relations of the model section that need no data; by default none."""

    @classmethod
    def check_data(cls, config: Config, data: DataSpec) -> None:
        """Relations to the data (shape, bits, classes); by default none."""

    @classmethod
    def _check_type(cls, config: Config) -> None:
        if not isinstance(config.model, cls.model_config):
            raise ConfigValueError(
                f"model={type(config.model).__name__}(...); method {cls.name!r} expected "
                f"{cls.model_config.__name__}"
            )


class Method(_ConfigChecks, abc.ABC):
    """Base class of every gradient-trained method.

    Subclasses set ``name`` and ``model_config`` (the dataclass type of ``Config.model``) and
    implement :meth:`init`, :meth:`train_step`, :meth:`evaluate` and :meth:`sample`; they
    state the config's relations in :meth:`check_model` and :meth:`check_data`.
    """

    # Non-trained collections (ModelState.collections keys) that hold per-group state of the
    # batch, such as CycleGAN's history pools (one pool per batch position): their leaves'
    # leading axis is split over the data devices (where it divides) instead of replicated.
    # Their values must not depend on the split: group g is updated from batch block g only.
    split_collections: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config, data: DataSpec):
        check_sections(config)  # cheap; the same checks as check_config, with the real data
        self._check_type(config)
        self.check_model(config)
        self.check_data(config, data)
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

    def load_split(self, split: str, max_examples: int = 0):
        """A split of ``data.name`` as configured (``data_dir``, ``manual_dir``), truncated to
        ``max_examples`` when it is > 0 (reference sets of evaluation protocols)."""
        return load_split(self.config, split, max_examples)


def load_split(config: Config, split: str, max_examples: int):
    """Loads one split of ``config.data`` as configured, truncated to ``max_examples`` if > 0."""
    from genjax.data import load_dataset

    ds = load_dataset(config.data.name, split, data_dir=config.data.data_dir or None,
                      manual_dir=config.data.manual_dir or None)
    if max_examples and max_examples < len(ds):
        labels = None if ds.labels is None else ds.labels[:max_examples]
        ds = dataclasses.replace(ds, images=ds.images[:max_examples], labels=labels)
    return ds


class FitMethod(_ConfigChecks, abc.ABC):
    """A method fitted by its own algorithm (EM, a closed form) instead of the step loop.

    ``genjax train`` calls :meth:`fit` with the run's folder; it must write there what a
    gradient-trained run writes: ``config.json``, ``metrics.jsonl``, ``results.json``, PNG
    pictures under ``pictures/`` and the fitted parameters as a verified checkpoint
    (:class:`genjax.train.checkpoint.CheckpointStore`), and return the summary dict
    (``{"status": "finished", "eval": {...}, ...}``).
    """

    def __init__(self, config: Config):
        check_config(config)
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


def known_data_spec(name: str) -> DataSpec | None:
    """The :class:`DataSpec` of a named dataset without reading it; ``None`` where only its
    files tell (``tfds:<name>`` datasets) or for names no dataset has."""
    from genjax.data.dataset import describe_dataset

    described = describe_dataset(name)
    if described is None:
        return None
    shape, num_bits, num_classes = described
    return DataSpec(shape=tuple(shape), num_bits=num_bits, num_classes=num_classes, name=name)


def check_config(config: Config) -> DataSpec | None:
    """Checks a whole config before any data is read or anything compiled.

    Every field's type and range (the sections' ``LIMITS``), the method name, the model
    section's type, the dataset name, and the method's relations (``check_model``, and
    ``check_data`` where the dataset's shape is known without reading it; for ``tfds:``
    datasets the method checks it when the data is loaded, still before anything compiles).

    Returns:
      The dataset's :class:`DataSpec` where it is known without reading, else ``None``.

    Raises:
      ConfigValueError: one line naming the key, the value given and what is accepted.
      ValueError: an unknown method name (the message lists the known ones).
    """
    from genjax.data.dataset import available_datasets
    from genjax.data.tfds_builtin import TFDS_PREFIX

    check_sections(config)
    cls = get_method(config.method)
    cls._check_type(config)
    name = config.data.name
    spec = known_data_spec(name)
    if spec is None and not name.startswith(TFDS_PREFIX) and name not in cls.extra_datasets:
        raise ConfigValueError(
            f"data.name={name!r}; expected one of {[*available_datasets(), *cls.extra_datasets]}"
            f" or '{TFDS_PREFIX}<name>[:<version>]'")
    cls.check_model(config)
    if spec is not None:
        cls.check_data(config, spec)
    return spec
