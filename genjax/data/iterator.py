"""Deterministic, resumable batches: the batch of a global step is a pure function of it.

There is no iterator state to checkpoint: ``BatchIterator(ds, B, seed=s).batch_at(step)`` is the
same array whenever and wherever it is computed, so a run resumed at step ``k`` sees exactly the
batches ``k, k + 1, ...`` an uninterrupted run would have seen.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Iterator

import numpy as np

from genjax.data.dataset import ArrayDataset


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


@functools.lru_cache(maxsize=8)
def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the examples: a pure function of its arguments.

    The permutation is ``argsort`` of ``num_examples`` raw 64-bit outputs of numpy's PCG64 bit
    generator seeded with ``SeedSequence((seed, epoch))``. Both are covered by numpy's stream
    stability, unlike ``Generator.permutation``'s algorithm, so the order does not change with
    the numpy version. (A tie between two 64-bit draws, probability ~N^2 / 2^65, is broken by
    index through the stable sort.)

    Args:
      seed: non-negative run seed.
      epoch: non-negative epoch number.
      num_examples: size of the dataset.

    Returns:
      int64 array of shape ``(num_examples,)``, read-only, a permutation of ``range(num_examples)``.
    """
    bits = np.random.PCG64(np.random.SeedSequence((seed, epoch))).random_raw(num_examples)
    perm = np.argsort(np.asarray(bits, dtype=np.uint64), kind="stable")
    perm.flags.writeable = False
    return perm


class BatchIterator:
    """Batches of an :class:`ArrayDataset`, addressed by global step.

    Step ``s`` belongs to epoch ``e = s // steps_per_epoch`` and is batch ``s % steps_per_epoch``
    of that epoch's order (:func:`epoch_permutation` of ``(seed, e)`` when shuffling, the stored
    order otherwise). Every example is seen exactly once per epoch; with ``drop_remainder`` the
    ``num_examples % batch_size`` examples at the end of each epoch's order are left out of that
    epoch (different ones each epoch when shuffling).

    With several processes (multi-host data parallelism) each process computes the same global
    batch and keeps its contiguous slice ``np.array_split(global_batch, process_count)
    [process_index]``: the slices of processes ``0 .. process_count - 1``, concatenated, are the
    global batch. ``batch_size`` must be a multiple of ``process_count``; only the smaller last
    batch of an epoch with ``drop_remainder=False`` may give processes unequal slices.

    Args:
      dataset: the examples.
      batch_size: global batch size (all processes together).
      seed: non-negative seed of the shuffling order.
      shuffle: visit each epoch in a fresh random order; ``False`` keeps the stored order
        (evaluation).
      drop_remainder: keep only full batches (training); ``False`` adds a last, smaller batch
        per epoch so that an evaluation pass sees every example.
      process_index: this process (``jax.process_index()``).
      process_count: number of processes (``jax.process_count()``).

    Attributes:
      steps_per_epoch: batches per epoch.
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool = True,
        drop_remainder: bool = True,
        process_index: int = 0,
        process_count: int = 1,
    ):
        if not isinstance(dataset, ArrayDataset):
            raise TypeError(f"dataset must be a genjax.data.ArrayDataset; got {type(dataset)}")
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.process_count = _check_int("process_count", process_count, 1)
        self.process_index = _check_int("process_index", process_index, 0)
        if self.process_index >= self.process_count:
            raise ValueError(
                f"process_index must be in [0, process_count={self.process_count}); "
                f"got {self.process_index}"
            )
        if self.batch_size % self.process_count:
            raise ValueError(
                f"batch_size must be a multiple of process_count={self.process_count}; "
                f"got {self.batch_size}"
            )
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        n = len(dataset)
        if drop_remainder:
            self.steps_per_epoch = n // self.batch_size
        else:
            self.steps_per_epoch = -(-n // self.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"dataset {dataset.name!r} split {dataset.split!r} has {n} examples, fewer than "
                f"batch_size={self.batch_size} (with drop_remainder={drop_remainder})"
            )

    def __len__(self) -> int:
        return self.steps_per_epoch

    def indices_at(self, step: int) -> np.ndarray:
        """Dataset indices of this process's part of the batch of global step ``step``."""
        step = _check_int("step", step, 0)
        epoch, i = divmod(step, self.steps_per_epoch)
        n = len(self.dataset)
        if self.shuffle:
            order = epoch_permutation(self.seed, epoch, n)
        else:
            order = np.arange(n)
        batch = order[i * self.batch_size : (i + 1) * self.batch_size]
        return np.array_split(batch, self.process_count)[self.process_index]

    def batch_at(self, step: int) -> dict[str, np.ndarray]:
        """The batch of global step ``step`` (this process's slice); pure in ``step``.

        Returns:
          ``{"image": uint8 (b, H, W, C), "label": int32 (b,)}`` with ``b = batch_size /
          process_count`` (smaller for the last batch of an epoch when ``drop_remainder`` is
          off); ``"label"`` only when the dataset has labels. Fresh arrays (copies).
        """
        idx = self.indices_at(step)
        batch = {"image": self.dataset.images[idx]}
        if self.dataset.labels is not None:
            batch["label"] = self.dataset.labels[idx]
        return batch

    def epoch_batches(self, epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """Yields the batches of epoch ``epoch`` in order (an evaluation pass for epoch 0)."""
        epoch = _check_int("epoch", epoch, 0)
        for step in range(epoch * self.steps_per_epoch, (epoch + 1) * self.steps_per_epoch):
            yield self.batch_at(step)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """One pass over epoch 0 (with ``shuffle=False``: the stored order)."""
        return self.epoch_batches(0)

    def iterate(
        self, start_step: int = 0, num_steps: int | None = None, *, prefetch: int = 2
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yields ``batch_at(start_step)``, ``batch_at(start_step + 1)``, ... .

        The next ``prefetch`` batches are gathered in a background thread while the caller
        works on the current one; the batches are exactly those of :meth:`batch_at`.

        Args:
          start_step: first global step (resume here).
          num_steps: how many batches; ``None`` for an endless stream.
          prefetch: batches gathered ahead (0 disables the thread).
        """
        start_step = _check_int("start_step", start_step, 0)
        prefetch = _check_int("prefetch", prefetch, 0)
        if num_steps is not None:
            num_steps = _check_int("num_steps", num_steps, 0)
        stop = None if num_steps is None else start_step + num_steps

        def steps():
            s = start_step
            while stop is None or s < stop:
                yield s
                s += 1

        if prefetch == 0:
            for s in steps():
                yield self.batch_at(s)
            return
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="genjax-data") as pool:
            pending = []
            step_iter = steps()
            try:
                for s in step_iter:
                    pending.append(pool.submit(self.batch_at, s))
                    if len(pending) > prefetch:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:
                for f in pending:
                    f.cancel()
