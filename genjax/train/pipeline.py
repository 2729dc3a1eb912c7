"""The host side of the asynchronous loop: which steps each dispatch runs, the batches of the
coming dispatches built ahead in a thread, and the metric windows fetched from the devices.

The loop (:meth:`genjax.train.loop.Trainer.train`) never waits for the devices inside a step:

* :func:`dispatch_plan` cuts the run into dispatches of at most ``train.steps_per_dispatch``
  steps that end on every logging, evaluation and checkpoint boundary, so those land on the
  same steps whatever ``steps_per_dispatch`` is;
* :class:`Prefetcher` builds the host batches of the next dispatches in a background thread
  and puts them on the devices while the current dispatch runs;
* :class:`MetricWindow` keeps each dispatch's metrics on the devices and fetches them only when
  asked (every ``train.log_every`` steps, and before every evaluation or checkpoint): one
  device-to-host transfer per window. On each fetch it checks every step of the window for
  non-finite values and names the first bad step and term.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np


class NonFiniteError(FloatingPointError):
    """A loss term or norm became NaN or infinite; names the step and the term."""


def steps_to_boundary(step: int, interval: int) -> int:
    """Steps from ``step`` to the next multiple of ``interval`` (``interval`` if on one)."""
    return interval - step % interval


def dispatch_plan(start: int, end: int, steps_per_dispatch: int,
                  intervals: tuple[int, ...] = ()) -> Iterator[tuple[int, int]]:
    """Yields ``(first_step, num_steps)`` for each dispatch from ``start`` up to ``end``.

    A dispatch runs at most ``steps_per_dispatch`` steps and never crosses a multiple of any of
    ``intervals`` (logging, evaluation, checkpoints), so those happen exactly on their steps.
    """
    if steps_per_dispatch < 1:
        raise ValueError(f"train.steps_per_dispatch must be >= 1, got {steps_per_dispatch}")
    step = start
    while step < end:
        n = min(steps_per_dispatch, end - step,
                *(steps_to_boundary(step, i) for i in intervals if i > 0))
        yield step, n
        step += n


def stack_batches(batches: list[dict[str, np.ndarray]], size: int) -> dict[str, np.ndarray]:
    """``size`` host batches stacked on a new leading axis; missing slots are zeros (unused)."""
    if len(batches) == size == 1:
        return {k: v[None] for k, v in batches[0].items()}
    out = {}
    for key, first in batches[0].items():
        stacked = np.zeros((size, *first.shape), first.dtype)
        for i, batch in enumerate(batches):
            stacked[i] = batch[key]
        out[key] = stacked
    return out


_DONE = object()


class Prefetcher:
    """Device batches of the planned dispatches, built ``depth`` dispatches ahead in a thread.

    Args:
      plan: ``(first_step, num_steps)`` pairs (see :func:`dispatch_plan`).
      host_batch: ``step -> {name: np.ndarray}``, this process's batch of a step (pure in step).
      place: puts a stacked host batch ``{name: (k, b, ...)}`` on the devices.
      size: ``k``, the leading size of every stacked batch.
      depth: dispatches prepared ahead (0: built in the caller's thread, when asked).

    Iterating yields ``(first_step, num_steps, device_batch)``. An exception raised while
    building a batch is raised in the consumer. :meth:`close` stops the thread.
    """

    def __init__(self, plan: Iterator[tuple[int, int]], host_batch: Callable[[int], dict],
                 place: Callable[[dict], Any], size: int, *, depth: int = 2):
        self._plan, self._host_batch, self._place, self._size = plan, host_batch, place, size
        self._depth = depth
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._thread = None
        if depth > 0:
            self._thread = threading.Thread(target=self._work, name="genjax-prefetch", daemon=True)
            self._thread.start()

    def _build(self, first: int, n: int):
        host = stack_batches([self._host_batch(s) for s in range(first, first + n)], self._size)
        return first, n, self._place(host)

    def _work(self) -> None:
        try:
            for first, n in self._plan:
                item = self._build(first, n)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(_DONE)
        except BaseException as e:  # handed to the consumer
            self._queue.put(e)

    def __iter__(self):
        if self._thread is None:
            for first, n in self._plan:
                yield self._build(first, n)
            return
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._thread.join()


class MetricWindow:
    """Per-step metrics kept on the devices until fetched; checked and summarised on the host.

    :meth:`add` takes one dispatch's metrics (``{name: (k,) device array}``, of which the first
    ``num_steps`` entries are real). :meth:`fetch` transfers everything added since the last
    fetch in one ``device_get``, raises :class:`NonFiniteError` naming the first non-finite step
    and term, and keeps the values until :meth:`summary` (the logged window: means over its
    steps and each term's last value, ``<name>_last``) empties it.
    """

    def __init__(self):
        self._pending: list[tuple[int, int, dict[str, jax.Array]]] = []
        self._rows: list[dict[str, np.ndarray]] = []
        self.last_step: int | None = None
        self.latest: dict[str, float] = {}  # the newest fetched step's values

    def add(self, first_step: int, num_steps: int, metrics: dict[str, jax.Array]) -> None:
        self._pending.append((first_step, num_steps, metrics))

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def fetch(self) -> None:
        """Brings pending metrics to the host and checks them (raises NonFiniteError)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        host = jax.device_get([m for _, _, m in pending])
        for (first, n, _), values in zip(pending, host, strict=True):
            values = {k: np.asarray(v)[:n] for k, v in values.items()}
            _check_finite(first, n, values)
            self._rows.append(values)
            self.last_step = first + n
            self.latest = {k: float(v[-1]) for k, v in values.items()}

    def summary(self) -> dict[str, float]:
        """Window means and last values of everything fetched since the last summary."""
        if not self._rows:
            return {}
        rows, self._rows = self._rows, []
        out: dict[str, float] = {}
        for key in rows[0]:
            values = np.concatenate([r[key] for r in rows])
            out[key] = float(np.mean(values, dtype=np.float64))
            out[f"{key}_last"] = float(values[-1])
        out["window_steps"] = int(sum(len(next(iter(r.values()))) for r in rows))
        return out


def _check_finite(first: int, n: int, values: dict[str, np.ndarray]) -> None:
    finite = np.all([np.isfinite(v) for v in values.values()], axis=0)
    if finite.all():
        return
    i = int(np.argmin(finite))  # the first step with a non-finite term
    bad = ", ".join(f"{k}={float(v[i])}" for k, v in values.items() if not math.isfinite(float(v[i])))
    raise NonFiniteError(
        f"non-finite value at step {first + i + 1}: {bad}. The run stopped; the last good "
        "checkpoint is intact. Lower optim.learning_rate or set optim.grad_clip_norm, then resume."
    )


__all__ = [
    "MetricWindow",
    "NonFiniteError",
    "Prefetcher",
    "dispatch_plan",
    "stack_batches",
    "steps_to_boundary",
]
