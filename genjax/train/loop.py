"""The training loop and the workdir protocol: ``train_and_evaluate(config, workdir)``.

Phases, in order: (1) devices and data, (2) the method and its initial state, (3) resume from
the newest intact checkpoint in ``workdir``, (4) compile the step, (5) train with logging,
evaluation, pictures and checkpoints, (6) final evaluation.

One workdir protocol serves both kinds of method (:mod:`genjax.train.method`). A
:class:`~genjax.train.run.Run` holds a method and its state and does with it what every run
needs: evaluate, sample, draw pictures, save and restore verified checkpoints.
:class:`Trainer` makes the state by the step loop below; :class:`~genjax.train.run.Fitter` by a
fitted method's own algorithm (phases 4-5 become one call of ``FitMethod.fit``, whose
iterations are logged as train rows). :func:`train_and_evaluate` owns
the workdir for both: the lock, the resume and config-change checks, ``config.json``,
``metrics.jsonl`` and TensorBoard (:class:`~genjax.train.metrics.MetricWriter`), the pictures
and ``results.json``; :func:`load_trainer` restores either kind for ``genjax evaluate`` and
``genjax sample``, which then call the same :class:`Run` methods.

The compiled program runs up to ``train.steps_per_dispatch`` steps in one call (a loop on the
devices over a stack of batches, its trip count an argument, so one program serves every
dispatch): ``(state, ema), batches, n -> (state, ema), metrics``, with the state donated,
replicated over a ``("data",)`` mesh (a method's per-group ``split_collections`` split over it)
and the batches sharded on their batch axis. The loop never
waits for the devices inside a step: the next dispatch's batches are built and placed by a
thread while the current one runs, metrics stay on the devices and are fetched every
``train.log_every`` steps (and before every evaluation and checkpoint), where they are checked
for non-finite values; a checkpoint is only written for a state whose metrics were checked.

Resume is exact: the batch of step ``s`` and the step's rng keys are pure functions of
(seed, s), so a run stopped and resumed at any checkpoint computes bit-for-bit what an
uninterrupted run does, and ``k`` steps in one dispatch compute bit-for-bit ``k`` dispatches
of one step.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.data import ArrayDataset, BatchIterator
from genjax.train import parallel
from genjax.train.checkpoint import CheckpointStore, read_meta
from genjax.train.config import (
    Config,
    apply_overrides,
    config_from_dict,
    to_dict,
    to_json,
)
from genjax.train.method import (
    FitMethod,
    Method,
    check_config,
    get_method,
    load_split,
)
from genjax.train.metrics import MetricWriter, Progress
from genjax.train.pipeline import (
    MetricWindow,
    NonFiniteError,
    Prefetcher,
    dispatch_plan,
    stack_batches,
)
from genjax.train.precision import compiler_options, matmul_precision
from genjax.train.run import Fitter, Run, abstract_state, data_spec, initial_state_fn, log
from genjax.train.state import TrainState
from genjax.train.workdir import ConfigChangeError, WorkdirLock, check_resume, compare_configs


class Trainer(Run):
    """Holds a step-trained method, its compiled dispatch program and its state; drives training.

    Args:
      config: the experiment.
      workdir: where checkpoints, metrics and pictures go; ``None`` keeps everything in memory
        (no checkpoints; used by tests and benchmarks).
      devices: devices of the data mesh (default: :func:`parallel.choose_devices` from
        ``train.num_devices`` and the batch size).
      train_data / eval_data: datasets to use instead of loading ``config.data``.
      read_only: only read checkpoints (evaluate/sample, possibly beside a live run).

    Attributes:
      state: the :class:`TrainState` (on the devices, replicated but for the method's
        ``split_collections``, split over them).
      ema: ``{model name: averaged params}`` when ``train.ema_decay > 0``, else ``{}``.
      current_step: the step the state is at, known on the host without a device transfer.
      compile_seconds: time spent compiling the dispatch program (``None`` before the first).
    """

    def __init__(
        self,
        config: Config,
        workdir: str | Path | None,
        *,
        devices: list | None = None,
        train_data: ArrayDataset | None = None,
        eval_data: ArrayDataset | None = None,
        read_only: bool = False,
    ):
        check_config(config)  # before any data is read or anything compiled
        if issubclass(get_method(config.method), FitMethod):
            raise TypeError(f"method {config.method!r} is fitted by its own algorithm, not by "
                            "steps: use genjax.train.loop.Fitter (train_and_evaluate and "
                            "load_trainer pick it)")
        self.config = config
        self.workdir = None if workdir is None else Path(workdir)
        if devices is None:
            devices, self.devices_note = parallel.choose_devices(config.train.batch_size,
                                                                 config.train.num_devices)
        else:
            self.devices_note = f"{len(devices)} given device(s)"
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

        # Replicated, but for the method's per-group collections (split over the devices).
        self._state_shardings = jax.tree.map(
            lambda a: a.sharding, abstract_state(self.method, self.base_key, example, self.mesh))
        self.state: TrainState = jax.jit(initial_state_fn(self.method),
                                         out_shardings=self._state_shardings)(
            self.base_key, example
        )
        self.ema: dict[str, Any] = self._fresh_ema() if config.train.ema_decay > 0 else {}
        self.current_step = 0
        self.num_traces = 0
        self.compile_seconds: float | None = None
        self._dispatch_jit = jax.jit(
            self._dispatch,
            in_shardings=((self._state_shardings, self._replicated),
                          parallel.stacked_batch_sharded(self.mesh), self._replicated),
            out_shardings=((self._state_shardings, self._replicated), self._replicated),
            donate_argnums=0,
        )
        self._executable = None
        # XLA options of the training program (on GPUs: deterministic algorithms only, see
        # genjax.train.precision.compiler_options); the benchmark compiles its steps with them.
        self.compiler_options = compiler_options(config.train,
                                                 self.mesh.devices.flat[0].platform)
        # jax 0.10 on several (fake) CPU devices can deadlock when steps with cross-device
        # reductions are dispatched back to back: there, wait for each dispatch to finish.
        self.wait_each_dispatch = (
            self.mesh.devices.size > 1 and self.mesh.devices.flat[0].platform == "cpu"
        )
        self.checkpoints = None
        if self.workdir is not None:
            self.checkpoints = CheckpointStore(self.workdir, max_to_keep=config.train.max_to_keep,
                                               read_only=read_only)

    # -- the compiled program ---------------------------------------------------------------
    def _fresh_ema(self) -> dict[str, Any]:
        """The average's start: a copy of the current parameters of every model."""
        return jax.tree.map(jnp.copy, {n: m.params for n, m in self.state.models.items()})

    def _one_step(self, state: TrainState, ema: dict, batch: dict[str, jax.Array]):
        new_state, metrics = self.method.train_step(state, batch)
        new_state = new_state.replace(step=state.step + 1)
        if ema:  # Polyak average: ema <- decay * ema + (1 - decay) * params
            params = {n: new_state.models[n].params for n in ema}
            ema = optax.incremental_update(params, ema, 1.0 - self.config.train.ema_decay)
        return new_state, ema, metrics

    def _dispatch(self, carry, batches: dict[str, jax.Array], num_steps: jax.Array):
        """Runs ``num_steps`` (<= k, a traced count) steps over ``batches`` of shape (k, B, ...).

        Returns the new ``(state, ema)`` and ``{name: (k,) values}``, the metrics of each step
        (entries past ``num_steps`` are zeros).
        """
        self.num_traces += 1  # runs only while tracing: counts compilations
        size = next(iter(batches.values())).shape[0]
        state, ema = carry
        with matmul_precision(self.config.train.compute_dtype), parallel.split_over(self.mesh):
            shapes = jax.eval_shape(
                self._one_step, state, ema, jax.tree.map(lambda b: b[0], batches)
            )[2]
            buffers = {k: jnp.zeros((size, *s.shape), s.dtype) for k, s in shapes.items()}

            def body(i, loop_carry):
                (state, ema), buffers = loop_carry
                batch = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(b, i, 0, False),
                                     batches)
                state, ema, metrics = self._one_step(state, ema, batch)
                buffers = {k: jax.lax.dynamic_update_index_in_dim(buffers[k], metrics[k], i, 0)
                           for k in buffers}
                return (state, ema), buffers

            return jax.lax.fori_loop(0, num_steps, body, ((state, ema), buffers))

    def _run_dispatch(self, batches: dict[str, jax.Array], num_steps: int):
        """Dispatches ``num_steps`` steps (asynchronously) and returns their device metrics."""
        count = np.int32(num_steps)
        carry = (self.state, self.ema)
        if self._executable is None:
            t0 = time.perf_counter()
            self._executable = self._dispatch_jit.lower(carry, batches, count).compile(
                self.compiler_options or None)
            self.compile_seconds = time.perf_counter() - t0
        (self.state, self.ema), metrics = self._executable(carry, batches, count)
        self.current_step += num_steps
        if self.wait_each_dispatch:
            jax.block_until_ready(metrics)
        return metrics

    def _place(self, stacked: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return parallel.shard_batch(stacked, self.mesh, stacked=True)

    def host_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's batch of ``step`` on the host: the dataset's, plus the method's inputs."""
        return self.method.host_batch(step, self.iterator.batch_at(step))

    def step(self) -> dict[str, float]:
        """Runs one training step synchronously and returns its metrics as host floats.

        Raises :class:`NonFiniteError` (naming the step and term) on a non-finite value. The
        asynchronous loop is :meth:`train`; this is for tests, notebooks and debugging.
        """
        k = self.config.train.steps_per_dispatch
        first = self.current_step
        batches = self._place(stack_batches([self.host_batch(first)], k))
        window = MetricWindow()
        window.add(first, 1, self._run_dispatch(batches, 1))
        window.fetch()
        return {k: v for k, v in window.summary().items()
                if not k.endswith("_last") and k != "window_steps"}

    def train(self, num_steps: int, *, hooks: LoopHooks | None = None) -> dict[str, Any]:
        """Runs ``num_steps`` more steps through the asynchronous loop.

        Batches are built and placed ahead by a thread, ``train.steps_per_dispatch`` steps run
        per call, metrics are fetched and checked every ``train.log_every`` steps and at every
        evaluation/checkpoint boundary and stop request (see :class:`LoopHooks`). With no hooks
        it only trains (benchmarks use it: the real loop without checkpoints or evaluation).

        Returns:
          ``{"steps": steps run, "seconds": wall time of the call, "steps_per_second": ...,
          "stopped": None | "signal" | "budget"}``.

        Raises:
          NonFiniteError: at the first fetched window with a NaN or infinite metric.
        """
        hooks = hooks or LoopHooks()
        cfg = self.config.train
        start, end = self.current_step, self.current_step + num_steps
        intervals = (cfg.log_every, cfg.eval_every, cfg.checkpoint_every)
        plan = dispatch_plan(start, end, cfg.steps_per_dispatch, intervals)
        prefetch = Prefetcher(plan, self.host_batch, self._place, cfg.steps_per_dispatch)
        window, in_flight, stopped = MetricWindow(), [], None
        t0 = time.perf_counter()
        try:
            for first, n, batches in prefetch:
                metrics = self._run_dispatch(batches, n)
                window.add(first, n, metrics)
                step = first + n
                in_flight.append(metrics)
                if len(in_flight) > 2:  # at most two dispatches queued on the devices
                    jax.block_until_ready(in_flight.pop(0))
                if first == start:  # compile + first dispatch: not part of the rate
                    jax.block_until_ready(metrics)
                    hooks.on_first_dispatch(step, time.perf_counter() - t0)
                event = hooks.event_at(step)
                logged = step % cfg.log_every == 0 or step == end
                if logged or event:
                    window.fetch()  # raises NonFiniteError before anything is saved
                hooks.on_progress(step, window.latest)
                if logged:
                    hooks.on_log(step, window.summary())
                if event:
                    hooks.on_event(step, event)
                stopped = hooks.should_stop(step)  # after the event: a signal may arrive in it
                if stopped:
                    window.fetch()
                    summary = window.summary()
                    if summary:
                        hooks.on_log(step, summary)
                    break
            window.fetch()
        finally:
            prefetch.close()
        jax.block_until_ready(self.state)
        seconds = time.perf_counter() - t0
        steps = self.current_step - start
        return {"steps": steps, "seconds": seconds,
                "steps_per_second": steps / seconds if seconds > 0 else float("nan"),
                "stopped": stopped}

    # -- evaluation and checkpoints ----------------------------------------------------------
    def evaluated_parameters(self) -> str:
        """Which parameters :meth:`evaluate` uses, for ``results.json``."""
        decay = self.config.train.ema_decay
        return f"ema (decay {decay})" if self.ema else "raw (no parameter average)"

    def meta(self) -> dict[str, Any]:
        """The config and the data position (seed, next step, epoch) saved in each checkpoint."""
        step = self.current_step
        return {
            "config": to_dict(self.config),
            "data": {
                "seed": self.config.train.seed,
                "next_step": step,
                "epoch": step // self.iterator.steps_per_epoch,
                "steps_per_epoch": self.iterator.steps_per_epoch,
            },
            "method": self.config.method,
            # The data's shape, bits and classes: a network restores from its checkpoint
            # alone (genjax.eval.features.load_classifier), even for tfds: datasets.
            "data_spec": dataclasses.asdict(self.method.data),
        }

    def _restored(self, meta: dict[str, Any], extras: dict[str, Any]) -> None:
        if not self.ema:
            return
        if "ema" in extras:
            self.ema = extras["ema"]
        else:
            self.ema = self._fresh_ema()
            log(f"genjax: the checkpoint of step {self.current_step} has no parameter "
                "average; train.ema_decay starts one from its parameters.")


@dataclasses.dataclass
class LoopHooks:
    """What :meth:`Trainer.train` does besides training; the default does nothing.

    After every dispatch ending at ``step``: ``on_progress(step, latest)`` (the newest fetched
    values, possibly from an earlier window); at log boundaries ``on_log(step, summary)`` (window
    means and ``<name>_last`` values); ``event_at(step)`` names the event due (``"eval"``,
    ``"checkpoint"``, both as ``"eval+checkpoint"``, or ``None``) and the loop fetches and checks
    the metrics before calling ``on_event``; then ``should_stop(step)`` (``"signal"``,
    ``"budget"`` or ``None``) ends the loop after that step. ``on_first_dispatch(step,
    seconds)`` reports the first dispatch (compilation included) once it has finished.
    """

    on_log: Callable[[int, dict[str, float]], None] = lambda step, summary: None
    on_progress: Callable[[int, dict[str, float]], None] = lambda step, latest: None
    on_first_dispatch: Callable[[int, float], None] = lambda step, seconds: None
    event_at: Callable[[int], str | None] = lambda step: None
    on_event: Callable[[int, str], None] = lambda step, event: None
    should_stop: Callable[[int], str | None] = lambda step: None


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


def train_and_evaluate(config: Config, workdir: str | Path, *,
                       allow_config_change: bool = False) -> dict[str, Any]:
    """Trains (or fits) ``config`` in ``workdir``, resuming if it holds checkpoints, and
    evaluates; the one workdir protocol of every method.

    A workdir is one run: the process holds a lock on it while it trains (a second train is
    refused), and a resume must keep the method, model and data of the saved ``config.json``;
    optimizer, seed, batch size, compute dtype and parameter-average changes need
    ``allow_config_change`` (see :mod:`genjax.train.workdir`). A step-trained method runs the
    step loop (:class:`Trainer`); a fitted method is fitted once (:class:`Fitter`; a workdir
    holding its checkpoint is evaluated again without refitting). Either way the same code then
    writes ``config.json``, the verified checkpoints, ``metrics.jsonl`` and TensorBoard
    (train rows, then the evaluation), the pictures and ``results.json``.

    Returns a summary: ``{"status": "finished" | "budget" | "interrupted", "step": ...,
    "eval": {...}, "pictures": [...], ...}`` (a trained run adds ``"parameters"`` and its
    speed and seconds). ``"budget"``: ``train.max_seconds`` ran out; the run saved a
    checkpoint and was evaluated (resume it with the same command). The final evaluation is
    also written to ``<workdir>/results.json``.
    """
    t0 = time.perf_counter()
    check_config(config)
    workdir = Path(workdir)
    lock = WorkdirLock(workdir).acquire() if jax.process_index() == 0 else None
    try:
        _check_resume(config, workdir, allow_config_change)
        return _run_in_workdir(config, workdir, t0)
    finally:
        if lock is not None:
            lock.release()


def _saved_config(workdir: Path) -> dict[str, Any] | None:
    path = workdir / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def _unchecked_model_fields(config: Config) -> tuple[str, ...]:
    """Model fields a saved config may differ in: those that change evaluation only
    (``EVAL_ONLY_FIELDS``) and those the section no longer has (``RETIRED_FIELDS``)."""
    cls = type(config.model)
    return (*getattr(cls, "EVAL_ONLY_FIELDS", ()), *getattr(cls, "RETIRED_FIELDS", {}))


def _check_resume(config: Config, workdir: Path, allow_changes: bool) -> None:
    """Compares the requested config with the run's before any checkpoint is touched."""
    saved = _saved_config(workdir)
    has_checkpoints = any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*"))
    if saved is None or not has_checkpoints:
        return
    meta = read_meta(workdir) or {}
    check_resume(workdir, saved, json.loads(to_json(config)), allow_changes=allow_changes,
                 step=meta.get("step"),
                 eval_only_model_fields=_unchecked_model_fields(config))


def _make_run(config: Config, workdir: Path | None, **options) -> Run:
    """A :class:`Fitter` for a fitted method, else a :class:`Trainer`."""
    fitted = issubclass(get_method(config.method), FitMethod)
    return (Fitter if fitted else Trainer)(config, workdir, **options)


def _run_in_workdir(config: Config, workdir: Path, t0: float) -> dict[str, Any]:
    run = _make_run(config, workdir)
    resumed = run.restore()
    if jax.process_index() == 0:  # only process 0 writes the run's files
        (workdir / "config.json").write_text(to_json(config))
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
    pictures = _process_zero_writes(workdir / "pictures")
    # Closed however the run ends (a non-finite loss raises): an open TensorBoard writer
    # fails in its atexit hook on Python 3.12 and its last events would be lost.
    try:
        if isinstance(run, Fitter):
            status, notes = _fit(run, writer, resumed)
        else:
            status, notes = _train_steps(run, writer, pictures, resumed, t0)
        summary: dict[str, Any] = {"status": status, "step": run.current_step}
        if status != "interrupted":
            results = run.evaluate()
            writer.write(run.current_step, results, split="eval")
            written = run.write_pictures(pictures)
            writer.write_pictures(run.current_step, written)
            summary["eval"] = results
            if (parameters := run.evaluated_parameters()) is not None:
                summary["parameters"] = parameters
            summary["pictures"] = [str(p) for p in written]
            summary.update(notes())
            if jax.process_index() == 0:
                (workdir / "results.json").write_text(json.dumps(summary, indent=2))
    finally:
        writer.close()
        if pictures != workdir / "pictures":  # another process's scratch copies
            shutil.rmtree(pictures, ignore_errors=True)
    return summary


def _fit(fitter: Fitter, writer: MetricWriter, resumed: bool):
    """Phases 4-5 of a fitted method: one fit (its iterations logged as train rows) and its
    checkpoint; nothing when the workdir already holds it. Returns ``(status, notes)``."""
    config = fitter.config
    log(f"genjax: {config.method} on {config.data.name} ({len(fitter.train_data)} train "
        f"examples), fitted by its own algorithm on {fitter.devices_note}, workdir "
        f"{fitter.workdir}")
    if resumed:
        log(f"genjax: {fitter.workdir} holds the fit (checkpoint of step "
            f"{fitter.current_step}); evaluating it again")
    else:
        start = time.perf_counter()
        fitter.fit(log=lambda step, metrics: writer.write(step, metrics, split="train"))
        log(f"genjax: fitted in {time.perf_counter() - start:.1f} s")
        fitter.save(wait=True)
    fitter.checkpoints.close()
    return "finished", dict


def _train_steps(trainer: Trainer, writer: MetricWriter, pictures: Path, resumed: bool,
                 t0: float):
    """Phases 4-5 of a step-trained method: the loop with its logging, evaluations, pictures
    and checkpoints. Returns ``(status, notes)``: ``notes()`` gives the summary's speed and
    seconds once the run is evaluated."""
    config, cfg = trainer.config, trainer.config.train
    log(
        f"genjax: {config.method} on {config.data.name} ({len(trainer.train_data)} train examples, "
        f"{trainer.iterator.steps_per_epoch} steps/epoch), {trainer.devices_note}, "
        f"compute dtype {cfg.compute_dtype}, "
        f"{cfg.steps_per_dispatch} step(s) per dispatch, workdir {trainer.workdir}"
    )
    if resumed:
        log(f"genjax: resumed from step {trainer.current_step}")
    start = trainer.current_step
    progress = Progress(start, cfg.num_steps, enabled=cfg.progress and jax.process_index() == 0)
    saved_at: list[int] = []

    def first_dispatch(step: int, seconds: float) -> None:
        log(f"genjax: first dispatch ({step - start} step(s), compile {trainer.compile_seconds:.1f}"
            f" s) took {seconds:.1f} s")
        progress.restart(step)  # the rate and ETA leave out the compilation

    def event_at(step: int) -> str | None:
        due = ["eval"] if step % cfg.eval_every == 0 and step < cfg.num_steps else []
        if step % cfg.checkpoint_every == 0 or step == cfg.num_steps:
            due.append("checkpoint")
        return "+".join(due) or None

    def on_event(step: int, event: str) -> None:
        if "eval" in event:
            writer.write(step, trainer.evaluate(), split="eval")
            writer.write_pictures(step, trainer.write_pictures(pictures))
        if "checkpoint" in event:
            trainer.save()
            saved_at.append(step)

    def should_stop(step: int) -> str | None:
        reason = None
        if stop.signal is not None:
            reason = "signal"
        elif cfg.max_seconds and time.perf_counter() - t0 >= cfg.max_seconds:
            reason = "budget"
        return _agreed_stop(reason)

    hooks = LoopHooks(
        on_log=lambda step, summary: writer.write(step, summary, split="train"),
        on_progress=lambda step, latest: progress.update(
            step, {k: v for k, v in latest.items() if k.endswith("loss")}),
        on_first_dispatch=first_dispatch,
        event_at=event_at,
        on_event=on_event,
        should_stop=should_stop,
    )
    status = "finished"
    try:
        with _StopFlag() as stop:
            report = trainer.train(max(cfg.num_steps - start, 0), hooks=hooks)
            if report["stopped"]:
                if saved_at and saved_at[-1] == trainer.current_step:
                    trainer.checkpoints.wait()  # this step is being saved: no second save
                else:
                    trainer.save(wait=True)
                status = "interrupted" if report["stopped"] == "signal" else "budget"
                if status == "budget":
                    log(f"genjax: train.max_seconds={cfg.max_seconds} reached at step "
                        f"{trainer.current_step} of {cfg.num_steps}; checkpoint saved, evaluating.")
    finally:
        progress.close()
        trainer.checkpoints.close()

    def notes() -> dict[str, Any]:
        out = {"train_steps_per_second": report["steps_per_second"],
               "compile_seconds": trainer.compile_seconds}
        if status == "budget":
            out["budget"] = (f"cut by train.max_seconds={cfg.max_seconds} at step "
                             f"{trainer.current_step} of {cfg.num_steps}")
        out["seconds"] = time.perf_counter() - t0
        return out

    return status, notes


_STOP_REASONS = (None, "budget", "signal")


def _agreed_stop(reason: str | None) -> str | None:
    """One process's reason to stop, agreed by all: the strongest reason of any process.

    A signal (SIGTERM on preemption) or the time budget may reach one process only; every
    process asks at the same steps, so all stop after the same step and save the same
    checkpoint. With one process this is ``reason`` itself (no communication).
    """
    if jax.process_count() == 1:
        return reason
    from jax.experimental import multihost_utils

    codes = multihost_utils.process_allgather(np.int32(_STOP_REASONS.index(reason)))
    return _STOP_REASONS[int(np.max(codes))]


def _process_zero_writes(pictures: Path) -> Path:
    """Where this process writes pictures: ``pictures`` on process 0, a scratch folder on the
    others (every process computes them: sampling runs on the global arrays)."""
    if jax.process_index() == 0:
        return pictures
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"genjax-pictures-{jax.process_index()}-"))


def load_trainer(workdir: str | Path, overrides: list[str] | None = None) -> Run:
    """The run of ``workdir`` restored from its newest intact checkpoint with the config saved
    there, for ``genjax evaluate`` / ``genjax sample``: a :class:`Trainer` or a :class:`Fitter`,
    used through the same :class:`Run` methods (``evaluate``, ``sample``, ``current_step``).

    ``overrides`` may change evaluation settings only (``eval.*``, the method's evaluation
    fields, devices); others raise :class:`~genjax.train.workdir.ConfigChangeError`.
    """
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {workdir} a genjax workdir?")
    saved = json.loads(path.read_text())
    config = config_from_dict(saved, get_method(saved["method"]).model_config)
    config = apply_overrides(config, overrides or [])
    diff = compare_configs(saved, json.loads(to_json(config)),
                           _unchecked_model_fields(config))
    if diff["refused"]:
        keys = ", ".join(diff["refused"])
        raise ConfigChangeError(
            f"--set {keys}: the checkpoints of {workdir} hold another model or data; only "
            "evaluation settings (eval.*, the method's evaluation fields) can change here"
        )
    run = _make_run(config, workdir, read_only=True)
    if not run.restore():
        raise FileNotFoundError(f"no checkpoint in {Path(workdir) / 'checkpoints'}; train first")
    return run


__all__ = [
    "Fitter",
    "LoopHooks",
    "NonFiniteError",
    "Run",
    "Trainer",
    "train_and_evaluate",
    "load_trainer",
]
