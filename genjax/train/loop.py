"""The training loop: ``train_and_evaluate(config, workdir)``.

Phases, in order: (1) devices and data, (2) the method and its initial state, (3) resume from
the newest intact checkpoint in ``workdir``, (4) compile the step, (5) train with logging,
evaluation, pictures and checkpoints, (6) final evaluation.

The jitted step is ``step(state, batch) -> (state, metrics)`` with the state donated,
replicated over a ``("data",)`` mesh and the batch sharded on its leading axis. Resume is
exact: the batch of step ``s`` and the step's rng keys are pure functions of (seed, s), so a
run stopped and resumed at any checkpoint computes bit-for-bit what an uninterrupted run does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from genjax.data import ArrayDataset, BatchIterator, load_dataset
from genjax.train import parallel
from genjax.train.checkpoint import CheckpointStore
from genjax.train.config import Config, apply_overrides, config_from_dict, to_dict, to_json
from genjax.train.method import DataSpec, FitMethod, Method, get_method
from genjax.train.metrics import MetricWriter, Progress
from genjax.train.state import TrainState

_EVAL_KEY_SALT = 0x6E76  # fixed per run: the same eval binarization/noise at every evaluation


class NonFiniteError(FloatingPointError):
    """A loss term or norm became NaN or infinite; names the step and the term."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_split(config: Config, split: str, max_examples: int) -> ArrayDataset:
    """Loads one split as configured, optionally truncated to ``max_examples``."""
    ds = load_dataset(
        config.data.name,
        split,
        data_dir=config.data.data_dir or None,
        manual_dir=config.data.manual_dir or None,
    )
    if max_examples and max_examples < len(ds):
        labels = None if ds.labels is None else ds.labels[:max_examples]
        ds = dataclasses.replace(ds, images=ds.images[:max_examples], labels=labels)
    return ds


def data_spec(ds: ArrayDataset) -> DataSpec:
    return DataSpec(
        shape=tuple(ds.shape), num_bits=ds.num_bits, num_classes=ds.num_classes, name=ds.name
    )


class Trainer:
    """Holds a method, its compiled step and its state; drives training one step at a time.

    Args:
      config: the experiment.
      workdir: where checkpoints, metrics and pictures go; ``None`` keeps everything in memory
        (no checkpoints; used by tests and benchmarks).
      devices: devices of the data mesh (default: all).
      train_data / eval_data: datasets to use instead of loading ``config.data``.
    """

    def __init__(
        self,
        config: Config,
        workdir: str | Path | None,
        *,
        devices: list | None = None,
        train_data: ArrayDataset | None = None,
        eval_data: ArrayDataset | None = None,
    ):
        self.config = config
        self.workdir = None if workdir is None else Path(workdir)
        self.mesh = parallel.data_mesh(devices)
        parallel.check_batch_size(config.train.batch_size, self.mesh)
        # Phase 1: data.
        self.train_data = train_data or load_split(
            config, config.data.train_split, config.data.max_train_examples
        )
        self._eval_data = eval_data
        self.iterator = BatchIterator(
            self.train_data,
            config.train.batch_size,
            seed=config.train.seed,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        # Phase 2: method and initial state (jitted init with replicated out-shardings).
        self.method: Method = get_method(config.method)(config, data_spec(self.train_data))
        self.base_key = jax.random.key(config.train.seed)
        example = parallel.shard_batch(self.host_batch(0), self.mesh)
        self._replicated = parallel.replicated(self.mesh)

        def init(key, batch):
            init_key, run_key = jax.random.split(key)
            return TrainState.create(run_key, self.method.init(init_key, batch))

        self.state: TrainState = jax.jit(init, out_shardings=self._replicated)(
            self.base_key, example
        )
        self.num_traces = 0
        self._step_fn = jax.jit(
            self._step,
            in_shardings=(self._replicated, parallel.batch_sharded(self.mesh)),
            out_shardings=(self._replicated, self._replicated),
            donate_argnums=0,
        )
        self.checkpoints = None
        if self.workdir is not None:
            self.checkpoints = CheckpointStore(self.workdir, max_to_keep=config.train.max_to_keep)

    # -- the step ---------------------------------------------------------------------------
    def _step(self, state: TrainState, batch: dict[str, jax.Array]):
        self.num_traces += 1  # runs only while tracing: counts compilations
        new_state, metrics = self.method.train_step(state, batch)
        return new_state.replace(step=state.step + 1), metrics

    def host_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's batch of ``step`` on the host: the dataset's, plus the method's inputs."""
        return self.method.host_batch(step, self.iterator.batch_at(step))

    def step(self) -> dict[str, float]:
        """Runs one training step on the batch of the current step; returns host metrics."""
        step = int(self.state.step)
        batch = parallel.shard_batch(self.host_batch(step), self.mesh)
        new_state, metrics = self._step_fn(self.state, batch)
        # Blocking on the metrics each step keeps the host in lock-step with the devices (and
        # avoids a known multi-device CPU dispatch deadlock); they are a few scalars.
        host = {k: float(v) for k, v in jax.device_get(metrics).items()}
        bad = [k for k, v in host.items() if not math.isfinite(v)]
        self.state = new_state  # the old buffers were donated to the step
        if bad:
            raise NonFiniteError(
                f"non-finite value at step {step + 1}: {', '.join(f'{k}={host[k]}' for k in bad)}. "
                "The run stopped; the last good checkpoint is intact. Lower "
                "optim.learning_rate or set optim.grad_clip_norm, then resume."
            )
        return host

    # -- data and evaluation ---------------------------------------------------------------
    @property
    def eval_data(self) -> ArrayDataset:
        if self._eval_data is None:
            cfg = self.config
            limit = cfg.eval.max_examples or cfg.data.max_eval_examples
            self._eval_data = load_split(cfg, cfg.data.eval_split, limit)
        return self._eval_data

    def eval_key(self) -> jax.Array:
        return jax.random.fold_in(self.base_key, _EVAL_KEY_SALT)

    def evaluate(self) -> dict[str, float]:
        return self.method.evaluate(self.state, self.eval_data, self.eval_key())

    def write_pictures(self, outdir: Path) -> list[Path]:
        return self.method.write_pictures(
            self.state, outdir, dataset=self.eval_data, key=self.eval_key(), step=int(self.state.step)
        )

    # -- checkpoints -----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        step = int(self.state.step)
        return {
            "config": to_dict(self.config),
            "data": {
                "seed": self.config.train.seed,
                "next_step": step,
                "epoch": step // self.iterator.steps_per_epoch,
                "steps_per_epoch": self.iterator.steps_per_epoch,
            },
            "method": self.config.method,
        }

    def save(self, *, wait: bool = False) -> None:
        self.checkpoints.save(int(self.state.step), self.state, self.meta(), wait=wait)

    def restore(self) -> bool:
        """Restores the newest intact checkpoint; returns whether one was found."""
        if self.checkpoints is None:
            return False
        restored = self.checkpoints.restore_latest(self.state)
        if restored is None:
            return False
        self.state, meta = restored
        saved = meta.get("config", {})
        current = json.loads(to_json(self.config))
        for section in ("method", "model", "data"):
            if saved.get(section) != current.get(section):
                log(
                    f"genjax: warning: config section {section!r} differs from the one saved "
                    f"with the checkpoint in {self.workdir}; resuming with the current config."
                )
        return True


class _StopFlag:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # second signal: give up immediately
            raise KeyboardInterrupt
        self.signal = signum
        log(f"genjax: received {signal.Signals(signum).name}; saving a checkpoint, then exiting.")

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def train_and_evaluate(config: Config, workdir: str | Path) -> dict[str, Any]:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints) and evaluates.

    Returns a summary: ``{"status": "finished" | "interrupted", "step": ..., "eval": {...}}``.
    The final evaluation is also written to ``<workdir>/results.json``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    method_cls = get_method(config.method)
    if issubclass(method_cls, FitMethod):  # EM / closed-form methods fit themselves
        return method_cls(config).fit(workdir)
    cfg = config.train
    t0 = time.perf_counter()
    trainer = Trainer(config, workdir)
    log(
        f"genjax: {config.method} on {config.data.name} ({len(trainer.train_data)} train examples, "
        f"{trainer.iterator.steps_per_epoch} steps/epoch), {trainer.mesh.devices.size} "
        f"{jax.devices()[0].platform} device(s), workdir {workdir}"
    )
    if trainer.restore():
        log(f"genjax: resumed from step {int(trainer.state.step)}")
    (workdir / "config.json").write_text(to_json(config))
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
    pictures = workdir / "pictures"
    start = int(trainer.state.step)
    progress = Progress(start, cfg.num_steps, enabled=cfg.progress and jax.process_index() == 0)
    status = "finished"
    try:
        with _StopFlag() as stop:
            while int(trainer.state.step) < cfg.num_steps:
                t_step = time.perf_counter()
                metrics = trainer.step()
                step = int(trainer.state.step)
                if step == start + 1:
                    log(f"genjax: first step (compile + run) took {time.perf_counter() - t_step:.1f} s")
                progress.update(step, {k: v for k, v in metrics.items() if k.endswith("loss")})
                if step % cfg.log_every == 0 or step == cfg.num_steps:
                    writer.write(step, metrics, split="train")
                if step % cfg.eval_every == 0 and step < cfg.num_steps:
                    writer.write(step, trainer.evaluate(), split="eval")
                    trainer.write_pictures(pictures)
                saved = step % cfg.checkpoint_every == 0 or step == cfg.num_steps
                if saved:
                    trainer.save()
                if stop.signal is not None:  # e.g. arrived during this step's evaluation
                    if saved:  # this step is already being saved: wait for it, save no twin
                        trainer.checkpoints.wait()
                    else:
                        trainer.save(wait=True)
                    status = "interrupted"
                    break
    finally:
        progress.close()
        trainer.checkpoints.close()
    summary: dict[str, Any] = {"status": status, "step": int(trainer.state.step)}
    if status == "finished":
        results = trainer.evaluate()
        writer.write(int(trainer.state.step), results, split="eval")
        written = trainer.write_pictures(pictures)
        summary["eval"] = results
        summary["pictures"] = [str(p) for p in written]
        summary["seconds"] = time.perf_counter() - t0
        (workdir / "results.json").write_text(json.dumps(summary, indent=2))
    writer.close()
    return summary


def load_trainer(workdir: str | Path, overrides: list[str] | None = None) -> Trainer:
    """A trainer restored from ``workdir`` using the config saved there (for evaluate/sample)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {workdir} a genjax workdir?")
    saved = json.loads(path.read_text())
    config = config_from_dict(saved, get_method(saved["method"]).model_config)
    config = apply_overrides(config, overrides or [])
    trainer = Trainer(config, workdir)
    if not trainer.restore():
        raise FileNotFoundError(f"no checkpoint in {Path(workdir) / 'checkpoints'}; train first")
    return trainer


__all__ = [
    "NonFiniteError",
    "Trainer",
    "train_and_evaluate",
    "load_trainer",
]
