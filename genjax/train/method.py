"""The interface a method offers the engine, and the registry of methods by name.

A method ties a model (``genjax.models`` or ``genjax.classical``), its losses and its sampler
together. Every method, however its state is made, offers the engine one protocol on one
state (a :class:`~genjax.train.state.TrainState`): :meth:`BaseMethod.init`,
:meth:`~BaseMethod.evaluate`, :meth:`~BaseMethod.sample` and :meth:`~BaseMethod.write_pictures`.
The state is made in one of two ways:

* :class:`Method` - trained by the engine's step loop through a pure, jitted
  :meth:`Method.train_step` (every random number from ``state.step_keys(...)``, nothing read
  from globals);
* :class:`FitMethod` - fitted by its own algorithm (EM, a closed form, full-batch descent) in
  :meth:`FitMethod.fit`, which reports its iterations through a callback.

The engine (:mod:`genjax.train.loop`) owns everything else for both kinds alike: data,
devices, the workdir (``config.json``, the lock, resume and config-change checks, verified
checkpoints, ``metrics.jsonl``, ``results.json``, pictures, TensorBoard), and ``genjax
evaluate`` / ``genjax sample``, which restore either kind and call the same protocol.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from genjax.train.config import Config, ConfigValueError, check_sections, need
from genjax.train.state import ModelState, TrainState


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a method may know about its data before seeing it."""

    shape: tuple[int, ...]  # (H, W, C) of images, (D,) of continuous points
    num_bits: int  # 8 for 8-bit images, 1 for binary images, 0 for continuous points
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
    # data.name values beside genjax.data's datasets; their splits come from load_extra_split.
    extra_datasets: ClassVar[tuple[str, ...]] = ()

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


class BaseMethod(_ConfigChecks, abc.ABC):
    """What the engine asks of every method: config checks and the protocol on its state.

    Subclasses set ``name`` and ``model_config`` (the dataclass type of ``Config.model``),
    state the config's relations in :meth:`check_model` and :meth:`check_data`, and implement
    :meth:`init`, :meth:`evaluate`, :meth:`sample` and :meth:`write_pictures`; they derive from
    :class:`Method` (trained by the step loop) or :class:`FitMethod` (fitted by their own
    algorithm), never from this class directly.
    """

    def __init__(self, config: Config, data: DataSpec):
        check_sections(config)  # cheap; the same checks as check_config, with the real data
        self._check_type(config)
        self.check_model(config)
        self.check_data(config, data)
        self.config = config
        self.data = data

    @classmethod
    def load_extra_split(cls, config: Config, split: str):
        """A split of ``config.data.name``, one of :attr:`extra_datasets`, as a
        :class:`genjax.data.ArrayDataset` (:func:`load_split` truncates it)."""
        raise NotImplementedError(f"method {cls.name!r} names no extra datasets")

    @abc.abstractmethod
    def init(self, key: jax.Array, batch: dict[str, jax.Array]) -> dict[str, ModelState]:
        """The model states (params, optimizer states) from an example batch: the starting point
        of the step loop, or for a fitted method the structure its fit returns (the shapes its
        checkpoints are restored into)."""

    @abc.abstractmethod
    def evaluate(self, state: TrainState, dataset: Any, key: jax.Array) -> dict[str, Any]:
        """Metrics on held-out data (``dataset`` is a :class:`genjax.data.ArrayDataset`)."""

    @abc.abstractmethod
    def sample(self, state: TrainState, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples as float images in [0, 1], shape ``(num, H, W, C)``, or points
        ``(num, D)`` for vector data."""

    @abc.abstractmethod
    def write_pictures(
        self, state: TrainState, outdir: Path, *, dataset: Any, key: jax.Array, step: int
    ) -> list[Path]:
        """Writes this step's PNG pictures (sample grids, ...) into ``outdir``; returns paths."""

    def load_split(self, split: str, max_examples: int = 0):
        """A split of ``data.name`` as configured (``data_dir``, ``manual_dir``), truncated to
        ``max_examples`` when it is > 0 (reference sets of evaluation protocols)."""
        return load_split(self.config, split, max_examples)


class Method(BaseMethod):
    """Base class of every method trained by the engine's step loop.

    Subclasses implement :meth:`train_step` besides the protocol of :class:`BaseMethod`.
    """

    # Non-trained collections (ModelState.collections keys) that hold per-group state of the
    # batch, such as CycleGAN's history pools (one pool per batch position): their leaves'
    # leading axis is split over the data devices (where it divides) instead of replicated.
    # Their values must not depend on the split: group g is updated from batch block g only.
    split_collections: ClassVar[tuple[str, ...]] = ()

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


# fit's metric callback: (iteration, {name: value}), in order of the iterations.
FitLog = Callable[[int, dict[str, float]], None]


class FitMethod(BaseMethod):
    """Base class of every method fitted by its own algorithm (EM, a closed form, full-batch
    gradient descent) instead of the step loop.

    Subclasses implement :meth:`fit` besides the protocol of :class:`BaseMethod`. The engine
    (:class:`genjax.train.loop.Fitter`) calls it once on the train split, wraps the returned
    model states in a :class:`TrainState` at step 0 and then treats the run as it treats a
    trained one: one verified checkpoint, the same evaluation, pictures, ``results.json`` and
    ``genjax evaluate`` / ``genjax sample`` path. A fitted run is done once its checkpoint
    exists: training it again evaluates the checkpoint instead of fitting anew.
    """

    @classmethod
    def _check_type(cls, config: Config) -> None:
        super()._check_type(config)
        need(config.train.ema_decay == 0, "train.ema_decay", config.train.ema_decay,
             f"0: method {cls.name!r} is fitted by its own algorithm, not by steps to average")

    @abc.abstractmethod
    def fit(self, dataset: Any, key: jax.Array, *, log: FitLog
            ) -> tuple[dict[str, ModelState], dict[str, Any]]:
        """Fits the model to ``dataset`` (the train split, a :class:`genjax.data.ArrayDataset`).

        Args:
          dataset: the training data.
          key: the run's base key, ``jax.random.key(train.seed)``. The engine keeps
            ``split(key)[1]`` as the state's ``rng``, as it does for a trained run.
          log: called with ``(iteration, {name: value})`` for the fit's iterations in order
            (EM's log-likelihood, a loss); the engine writes them as ``"train"`` rows of
            ``metrics.jsonl`` and TensorBoard scalars. An algorithm that runs its iterations in
            one compiled loop reports them when the loop ends.

        Returns:
          ``(models, report)``: the fitted model states, with the structure :meth:`init`
          returns, and a JSON-serializable report of the fit (what was fitted, iterations,
          convergence, wall seconds), saved with the checkpoint and put before the metrics of
          every evaluation of the run.
        """


def load_split(config: Config, split: str, max_examples: int):
    """Loads one split of ``config.data`` as configured, truncated to ``max_examples`` if > 0.

    A dataset among the method's ``extra_datasets`` comes from its ``load_extra_split``.
    """
    from genjax.data import load_dataset

    cls = get_method(config.method)
    if config.data.name in cls.extra_datasets:
        ds = cls.load_extra_split(config, split)
    else:
        ds = load_dataset(config.data.name, split, data_dir=config.data.data_dir or None,
                          manual_dir=config.data.manual_dir or None)
    if max_examples and max_examples < len(ds):
        labels = None if ds.labels is None else ds.labels[:max_examples]
        ds = dataclasses.replace(ds, images=ds.images[:max_examples], labels=labels)
    return ds


_REGISTRY: dict[str, type[BaseMethod]] = {}


def register(cls):
    """Class decorator adding a method to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


_PLUGIN_GROUP = "genjax.methods"
_plugins_loaded = False


def _load_builtin_methods() -> None:
    """Imports every package that declares methods: the entry points of group
    ``genjax.methods`` in the installed packages' metadata (genjax's own ``genjax.methods``,
    declared in its pyproject.toml, and any other package's). A method registers itself
    (:func:`register`) when its module is imported, so the engine names no method module."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    plugins = importlib.metadata.entry_points(group=_PLUGIN_GROUP)
    if not plugins:
        raise RuntimeError(
            f"no package declares genjax methods (entry points of group {_PLUGIN_GROUP!r}): "
            "install genjax (pip install -e . in its clone) instead of putting it on the path")
    for plugin in plugins:
        try:
            plugin.load()
        except Exception as e:
            raise RuntimeError(f"the genjax methods of {plugin.value!r} (entry point "
                               f"{plugin.name!r}) failed to import: {e}") from e
    _plugins_loaded = True


def get_method(name: str) -> type[BaseMethod]:
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
