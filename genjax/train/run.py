"""A run: a method and its state, and what the engine does with them however the state is made.

:class:`Run` is the part of the one workdir protocol that acts on a state: evaluation,
samples and pictures through the method's protocol (:class:`genjax.train.method.BaseMethod`),
verified checkpoints through :class:`genjax.train.checkpoint.CheckpointStore`. Two kinds of run
make the state: :class:`genjax.train.loop.Trainer` by the step loop, and :class:`Fitter` (here)
by a fitted method's own algorithm. :func:`genjax.train.loop.train_and_evaluate` drives either
in a workdir and :func:`genjax.train.loop.load_trainer` restores either for ``genjax
evaluate`` / ``genjax sample``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from genjax.data import ArrayDataset
from genjax.train import parallel
from genjax.train.checkpoint import CheckpointStore
from genjax.train.config import Config, to_dict
from genjax.train.method import (
    BaseMethod,
    DataSpec,
    FitLog,
    FitMethod,
    check_config,
    get_method,
    load_split,
)
from genjax.train.precision import matmul_precision
from genjax.train.state import TrainState


def initial_state_fn(method: BaseMethod):
    """``(key, batch) -> TrainState``: the method's initial models and the run key, as every
    step-trained run builds its state from its base key and an example batch."""

    def init(key: jax.Array, batch: dict[str, Any]) -> TrainState:
        init_key, run_key = jax.random.split(key)
        return TrainState.create(run_key, method.init(init_key, batch))

    return init


def abstract_state(method: BaseMethod, key: jax.Array, example: dict[str, Any],
                   mesh: Mesh) -> TrainState:
    """Shapes, dtypes and placement of the run's initial state, computed without running it:
    replicated over ``mesh`` except the method's ``split_collections`` (split over the devices).
    The layout a Trainer places its state in and a checkpoint restores into."""
    shapes = jax.eval_shape(initial_state_fn(method), key, example)
    shardings = parallel.state_shardings(shapes, mesh, method.split_collections)
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        shapes, shardings)


def with_average(state: TrainState, ema: dict[str, Any]) -> TrainState:
    """``state`` with the parameters of each model in ``ema`` (``{name: params}``, the Polyak
    average of ``train.ema_decay``) in place of its own: what evaluation uses."""
    if not ema:
        return state
    models = {n: m.replace(params=ema[n]) if n in ema else m for n, m in state.models.items()}
    return state.replace(models=models)


_EVAL_KEY_SALT = 0x6E76  # fixed per run: the same eval binarization/noise at every evaluation


def log(msg: str) -> None:
    """Prints one engine line to standard error."""
    print(msg, file=sys.stderr, flush=True)


def data_spec(ds: ArrayDataset) -> DataSpec:
    """What a method may know of a loaded dataset (:class:`DataSpec`)."""
    return DataSpec(
        shape=tuple(ds.shape), num_bits=ds.num_bits, num_classes=ds.num_classes, name=ds.name
    )


class Run:
    """A method and its state, and what the engine does with them however the state was made.

    Evaluation, sampling and pictures call the method's protocol
    (:class:`~genjax.train.method.BaseMethod`) on :meth:`eval_state` in true float32;
    checkpoints go through :class:`~genjax.train.checkpoint.CheckpointStore` (content-hashed,
    verified at restore). Subclasses: :class:`genjax.train.loop.Trainer` (the step loop) and
    :class:`Fitter` (a fitted method's own algorithm); :func:`genjax.train.loop.load_trainer`
    restores either.

    Attributes:
      config: the experiment.
      workdir: the run's folder, or ``None`` (in memory, no checkpoints).
      method: the method instance.
      state: the :class:`TrainState` (step, rng, model states).
      current_step: the step the state is at, known on the host without a device transfer.
      devices_note: which devices the run uses, in words (for log lines).
      ema: ``{model name: averaged params}`` when ``train.ema_decay > 0``, else ``{}``.
      checkpoints: the run's :class:`CheckpointStore`, or ``None`` without a workdir.
    """

    config: Config
    workdir: Path | None
    method: BaseMethod
    state: TrainState
    current_step: int
    devices_note: str
    base_key: jax.Array
    ema: dict[str, Any]
    checkpoints: CheckpointStore | None
    _eval_data: ArrayDataset | None

    @property
    def eval_data(self) -> ArrayDataset:
        """The eval split (``data.eval_split``, at most ``eval.max_examples`` or
        ``data.max_eval_examples`` examples), loaded on first use."""
        if self._eval_data is None:
            cfg = self.config
            limit = cfg.eval.max_examples or cfg.data.max_eval_examples
            self._eval_data = load_split(cfg, cfg.data.eval_split, limit)
        return self._eval_data

    def eval_key(self) -> jax.Array:
        """The run's fixed evaluation key: the same noise at every evaluation and picture."""
        return jax.random.fold_in(self.base_key, _EVAL_KEY_SALT)

    def eval_state(self) -> TrainState:
        """The state evaluation, sampling and pictures use: with the EMA parameters when on."""
        return with_average(self.state, self.ema)

    def evaluated_parameters(self) -> str | None:
        """Which parameters :meth:`evaluate` uses, for ``results.json``; ``None`` where there
        is no choice (a fitted run)."""
        return None

    def evaluate(self) -> dict[str, Any]:
        """The method's metrics of :meth:`eval_state` on :attr:`eval_data`."""
        with matmul_precision("float32"):  # reported numbers: true float32 on every backend
            return self.method.evaluate(self.eval_state(), self.eval_data, self.eval_key())

    def sample(self, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples from the evaluated parameters (see :meth:`eval_state`)."""
        with matmul_precision("float32"):
            return self.method.sample(self.eval_state(), key, num)

    def write_pictures(self, outdir: Path) -> list[Path]:
        """The method's pictures of :meth:`eval_state` at :attr:`current_step`, in ``outdir``."""
        with matmul_precision("float32"):
            return self.method.write_pictures(
                self.eval_state(), outdir, dataset=self.eval_data, key=self.eval_key(),
                step=self.current_step,
            )

    # -- checkpoints -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The JSON saved beside the state in each checkpoint."""
        raise NotImplementedError

    def save(self, *, wait: bool = False) -> None:
        """Saves the state at :attr:`current_step` (asynchronously unless ``wait``), with its
        content hash, :meth:`meta` and the parameter average when there is one."""
        extras = {"ema": self.ema} if self.ema else None
        self.checkpoints.save(self.current_step, self.state, self.meta(), wait=wait,
                              extras=extras)

    def restore(self) -> bool:
        """Restores the newest intact checkpoint; returns whether one was found."""
        if self.checkpoints is None:
            return False
        extras = {"ema": self.ema} if self.ema else {}
        restored = self.checkpoints.restore_latest(self.state, extras=extras)
        if restored is None:
            return False
        self.state, meta, restored_extras = restored
        self.current_step = int(self.state.step)
        self._restored(meta, restored_extras)
        return True

    def _restored(self, meta: dict[str, Any], extras: dict[str, Any]) -> None:
        """Takes what a restored checkpoint holds beside the state."""


class Fitter(Run):
    """Holds a fitted method (:class:`~genjax.train.method.FitMethod`) and its state.

    :meth:`fit` makes the state by the method's own algorithm on the train split, once, at
    step 0; everything else (evaluation, samples, pictures, the verified checkpoint) is
    :class:`Run`'s, as for a trained run. Its evaluations start with the fit's report
    (iterations, convergence, wall seconds), saved in the checkpoint's meta. The method runs on
    the default device.

    Args:
      config: the experiment.
      workdir: the run's folder, or ``None`` (in memory, no checkpoints).
      train_data / eval_data: datasets to use instead of loading ``config.data``.
      read_only: only read checkpoints (evaluate/sample).

    Attributes:
      report: the fit's report (``{}`` before :meth:`fit` or :meth:`restore`).
    """

    def __init__(
        self,
        config: Config,
        workdir: str | Path | None,
        *,
        train_data: ArrayDataset | None = None,
        eval_data: ArrayDataset | None = None,
        read_only: bool = False,
    ):
        check_config(config)  # before any data is read or anything compiled
        if not issubclass(get_method(config.method), FitMethod):
            raise TypeError(f"method {config.method!r} is trained by steps: use "
                            "genjax.train.loop.Trainer")
        self.config = config
        self.workdir = None if workdir is None else Path(workdir)
        self.devices_note = f"1 {jax.devices()[0].platform} device (the default device)"
        self.train_data = train_data or load_split(
            config, config.data.train_split, config.data.max_train_examples
        )
        self._eval_data = eval_data
        self.method: FitMethod = get_method(config.method)(config, data_spec(self.train_data))
        self.base_key = jax.random.key(config.train.seed)
        init_key, self._run_key = jax.random.split(self.base_key)
        example = {"image": self.train_data.images[:1]}
        if self.train_data.labels is not None:
            example["label"] = self.train_data.labels[:1]
        # The structure fit returns, at zero: what a checkpoint is restored into.
        self.state = TrainState.create(self._run_key, self.method.init(init_key, example))
        self.ema: dict[str, Any] = {}
        self.current_step = 0
        self.report: dict[str, Any] = {}
        self._fitted = False
        self.checkpoints = None
        if self.workdir is not None:
            self.checkpoints = CheckpointStore(self.workdir, max_to_keep=1, read_only=read_only)

    def fit(self, log: FitLog | None = None) -> None:
        """Fits the state on the train split (``log(iteration, metrics)`` gets the fit's
        iterations) and keeps the method's report."""
        with matmul_precision("float32"):
            models, report = self.method.fit(self.train_data, self.base_key,
                                             log=log or (lambda step, metrics: None))
        self.state = TrainState.create(self._run_key, models)
        self.report = dict(report)
        self._fitted = True

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("nothing is fitted yet: call Fitter.fit() or Fitter.restore()")

    def evaluate(self) -> dict[str, Any]:
        """The fit's report, then the method's metrics (as in ``results.json``)."""
        self._check_fitted()
        return {**self.report, **super().evaluate()}

    def sample(self, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples from the fitted state (see :meth:`Run.sample`)."""
        self._check_fitted()
        return super().sample(key, num)

    def write_pictures(self, outdir: Path) -> list[Path]:
        """The method's pictures of the fitted state (see :meth:`Run.write_pictures`)."""
        self._check_fitted()
        return super().write_pictures(outdir)

    def meta(self) -> dict[str, Any]:
        """The config, the method and the fit's report (read back by :meth:`restore`)."""
        return {"config": to_dict(self.config), "method": self.config.method, "fit": self.report}

    def _restored(self, meta: dict[str, Any], extras: dict[str, Any]) -> None:
        self.report = dict(meta.get("fit", {}))
        self._fitted = True


__all__ = ["Fitter", "Run", "abstract_state", "data_spec", "initial_state_fn", "with_average"]
