"""The evaluation loops: batches split over the devices, results kept on them, fetched once.

Every likelihood method (VAE, flow, autoregressive) and the classifier report the mean of a
per-example value over an evaluation split. :func:`dataset_means` is the one loop that computes
it:

* the split is cut into batches of ``batch_size`` in stored order, the last one padded with
  zero rows to the same size (one compiled shape) and a mask that drops the padding;
* each batch is split over the devices holding the parameters (a 1-D ``("data",)`` mesh, the
  run's mesh: the largest number of its devices, per process, that divides the batch), and the
  masked per-batch sums stay on the devices;
* all per-batch sums are fetched once, at the end, and added in float64 on the host.

The numbers do not depend on the device count: a batch is the same rows with the same random
keys on one device or on eight (JAX's partitionable threefry draws the same value for an
element whatever the split, and padding rows come after the real ones), only the order of the
float32 additions inside a batch differs. :func:`bits_per_dim` converts nats once, for all.

:func:`batch_outputs` is the same loop for outputs kept per example (GAN samples, classifier and
Inception features, BiGAN encodings, CycleGAN/StarGAN translations): the same devices and
padding; all batches' outputs are fetched at the end (with several processes every process
receives every row).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from genjax.data import ArrayDataset
from genjax.train import parallel
from genjax.train.metrics import Progress

PerExample = Callable[[Any, jax.Array, dict[str, jax.Array], jax.Array, jax.Array],
                      dict[str, jax.Array]]


def bits_per_dim(nats: float, num_dims: int, *, num_bits: int = 0) -> float:
    """Nats per example -> bits per dimension, ``(nats + D ln 2^bits) / (D ln 2)``.

    ``num_bits`` > 0 adds the offset of a dequantized density: a density on ``[0, 1)^D`` (or
    on a rescaling of it) of ``b``-bit data is a discrete likelihood only after the volume of
    each of the ``2^b`` bins per dimension is counted, ``D ln 2^b`` nats (Theis et al. 2016;
    the Real NVP and PixelCNN++ convention). 0: a discrete model, no offset.

    The host, float64 counterpart of :func:`genjax.losses.bits_per_dim` after
    :func:`genjax.losses.discrete_nll_from_continuous` (which a step uses on device arrays):
    reported means are float64 sums, and stay so.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return (nats + num_dims * num_bits * math.log(2)) / (num_dims * math.log(2))


def evaluation_mesh(params: Any, batch_size: int) -> Mesh:
    """The devices an evaluation batch of ``batch_size`` is split over.

    Those of ``params`` (a run's replicated state), as many per process as divide
    ``batch_size`` (:func:`genjax.train.parallel.split_count`, the rule a run's devices are
    chosen by); one device for parameters that are not on a mesh (NumPy arrays, one device).
    """
    leaves = jax.tree.leaves(params)
    sharding = getattr(leaves[0], "sharding", None) if leaves else None
    if not isinstance(sharding, jax.sharding.NamedSharding):
        device = next(iter(sharding.device_set)) if sharding is not None else jax.devices()[0]
        return parallel.data_mesh([device])
    groups = parallel.by_process(list(sharding.mesh.devices.flat))
    if batch_size % len(groups):
        raise ValueError(f"an evaluation batch of {batch_size} does not split over "
                         f"{len(groups)} processes; choose a multiple of {len(groups)}")
    local = min(len(g) for g in groups.values())
    d = parallel.split_count(batch_size, local, len(groups))
    if all(len(g) == d for g in groups.values()):
        return sharding.mesh
    return parallel.data_mesh(parallel.take_per_process(groups, d))


def _queue_depth(mesh: Mesh) -> int:
    """Batches kept in flight. On several (fake) CPU devices jax 0.10 can deadlock when calls
    with cross-device sums are queued back to back: wait for each there."""
    return 1 if (mesh.devices.size > 1 and mesh.devices.flat[0].platform == "cpu") else 2


def _process_slice(inputs: dict[str, np.ndarray], i: int, batch_size: int, n: int
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """This process's rows of batch ``i`` (``evaluation_mesh``: the batch splits over the
    processes): ``(inputs' rows with padding rows zeroed, int32 row numbers, mask)``."""
    local = batch_size // jax.process_count()
    me = jax.process_index()
    rows = np.arange(i * batch_size, (i + 1) * batch_size)[me * local:(me + 1) * local]
    mask = rows < n
    rows = np.where(mask, rows, 0).astype(np.int32)
    batch = {k: np.where(mask.reshape(-1, *[1] * (v.ndim - 1)), v[rows], np.zeros((), v.dtype))
             for k, v in inputs.items()}
    return batch, rows, mask


@functools.lru_cache(maxsize=64)
def _batch_sums(per_example: PerExample, static: Hashable, mesh: Mesh) -> Callable[..., Any]:
    """The jitted masked batch sums of ``per_example`` on ``mesh`` (one per triple, kept)."""
    del static  # a key only: what ``per_example`` reads besides its arguments
    replicated, split = parallel.replicated(mesh), parallel.batch_sharded(mesh)

    def batch_sums(params, key, batch, i, rows, mask):
        with parallel.split_over(mesh):
            values = per_example(params, key, batch, i, rows)
        return {k: jnp.sum(jnp.where(mask, v.astype(jnp.float32), 0.0)) for k, v in values.items()}

    return jax.jit(batch_sums, in_shardings=(replicated, replicated, split, replicated, split,
                                             split),
                   out_shardings=replicated)


def dataset_means(
    per_example: PerExample,
    params: Any,
    dataset: ArrayDataset,
    *,
    batch_size: int,
    key: jax.Array | None = None,
    static: Hashable = None,
    desc: str = "evaluate",
    progress: bool = True,
) -> tuple[dict[str, float], int]:
    """Means over ``dataset`` of the per-example values of ``per_example``.

    Args:
      per_example: ``(params, key, batch, i, rows) -> {name: (B,) values}``: ``batch`` is
        ``{"image": (B, ...), "label": (B,)}`` (``"label"`` when the dataset has labels), ``i``
        the batch number (an int32 scalar, for keys such as ``fold_in(key, i)``) and ``rows``
        the examples' int32 positions in ``dataset`` (for per-example keys). Padding rows hold
        zeros; their values are masked out (even NaN). Compiled once per ``(per_example,
        static, devices)`` and batch shape and kept, so it must be hashable and stable: a
        method (``self.score``) or a module-level function, not a fresh closure.
      params: passed through to ``per_example`` (a run's replicated parameters: the devices
        they are on are the devices used).
      dataset: the evaluation split.
      batch_size: examples per batch (the global batch over all processes).
      key: passed through to ``per_example`` (default ``PRNGKey(0)``).
      static: a hashable value for everything else ``per_example`` reads while it is traced
        (a method's config): a different value compiles anew, an equal one reuses the program.
      desc, progress: the progress line (batches done; nothing is fetched to show a value).

    Returns:
      ``({name: mean}, number of examples)``; the means are float64 sums of float32 batch
      sums divided by the number of examples.
    """
    n = len(dataset)
    batch_size = min(int(batch_size), n)
    if batch_size < 1:
        raise ValueError(f"an evaluation needs a batch size >= 1 and a non-empty dataset; got "
                         f"batch_size={batch_size} for {n} examples")
    mesh = evaluation_mesh(params, batch_size)
    params = parallel.replicate(params, mesh)
    key = parallel.replicate(jax.random.PRNGKey(0) if key is None else key, mesh)
    fn = _batch_sums(per_example, static, mesh)
    depth = _queue_depth(mesh)
    num_batches = -(-n // batch_size)
    bar = Progress(0, num_batches, desc=desc, enabled=progress, unit="batch")
    images = {"image": dataset.images}
    if dataset.labels is not None:
        images["label"] = dataset.labels
    sums = []
    for i in range(num_batches):
        batch, rows, mask = _process_slice(images, i, batch_size, n)
        placed = parallel.shard_batch({**batch, " rows": rows, " mask": mask}, mesh)
        rows, mask = placed.pop(" rows"), placed.pop(" mask")
        sums.append(fn(params, key, placed, parallel.replicate(np.int32(i), mesh), rows, mask))
        if len(sums) >= depth:
            jax.block_until_ready(sums[-depth])  # waits on the devices; transfers nothing
        bar.update(i + 1, {})
    host = jax.device_get(sums)  # the one transfer of the evaluation
    bar.close()
    names = host[0].keys() if host else ()
    return {k: float(np.sum([np.float64(s[k]) for s in host])) / n for k in names}, n


BatchFn = Callable[[Any, dict[str, jax.Array]], Any]


@functools.lru_cache(maxsize=64)
def _batch_outputs(fn: BatchFn, static: Hashable, mesh: Mesh) -> Callable[..., Any]:
    """The jitted ``fn`` on ``mesh``, batch in and out split over it (one per triple, kept)."""
    del static  # a key only, as in _batch_sums
    split = parallel.batch_sharded(mesh)

    def run(params, batch):
        with parallel.split_over(mesh):
            return fn(params, batch)

    return jax.jit(run, in_shardings=(parallel.replicated(mesh), split), out_shardings=split)


def batch_outputs(
    fn: BatchFn,
    params: Any,
    inputs: dict[str, np.ndarray],
    *,
    batch_size: int,
    static: Hashable = None,
    desc: str = "map",
    progress: bool = False,
) -> Any:
    """``fn`` over the rows of ``inputs`` in batches split over the devices, gathered on the host.

    The loop of :func:`dataset_means` for outputs that are kept per example (generated
    images, features, translations): the same devices (:func:`evaluation_mesh`), the same
    padded last batch; each batch's outputs stay on the devices until all are fetched at the
    end (with several processes, every process receives all rows).

    Args:
      fn: ``(params, batch) -> pytree of (B, ...) arrays`` computed row by row (padding rows
        hold zeros and their outputs are dropped); hashable and stable, as for
        :func:`dataset_means`.
      params: passed through to ``fn`` (replicated parameters: their devices are used).
      inputs: ``{name: (N, ...) array}``, the same N for every entry, N >= 1.
      batch_size: rows per batch (all processes together); capped at N.
      static: a hashable value for everything else ``fn`` reads while traced.
      desc, progress: the progress line (off by default).

    Returns:
      ``fn``'s pytree with leaves of shape ``(N, ...)`` as NumPy arrays.
    """
    sizes = {k: len(v) for k, v in inputs.items()}
    if not sizes or len(set(sizes.values())) != 1 or not next(iter(sizes.values())):
        raise ValueError(f"inputs must be non-empty arrays with the same number of rows, got "
                         f"{sizes}")
    n = next(iter(sizes.values()))
    batch_size = min(int(batch_size), n)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    mesh = evaluation_mesh(params, batch_size)
    params = parallel.replicate(params, mesh)
    fn_on_mesh = _batch_outputs(fn, static, mesh)
    depth = _queue_depth(mesh)
    num_batches = -(-n // batch_size)
    bar = Progress(0, num_batches, desc=desc, enabled=progress, unit="batch")
    outs = []
    for i in range(num_batches):
        batch, _, _ = _process_slice(inputs, i, batch_size, n)
        outs.append(fn_on_mesh(params, parallel.shard_batch(batch, mesh)))
        if len(outs) >= depth:
            jax.block_until_ready(outs[-depth])
        bar.update(i + 1, {})
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        outs = multihost_utils.process_allgather(outs, tiled=True)  # the one transfer
    host = jax.device_get(outs)  # the one transfer (a no-op after the gather)
    bar.close()
    return jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *host)
