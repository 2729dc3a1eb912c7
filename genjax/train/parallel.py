"""Data parallelism: a 1-D ``("data",)`` mesh over every device of every process.

The batch is sharded on its leading axis, the train state is replicated, and the step is an
ordinary ``jax.jit`` with those shardings (what ``pmap`` used to do). Because random numbers
are drawn for the *global* batch inside the step (``jax_threefry_partitionable`` is on by
default), each device draws different noise, and N devices compute the same numbers as one
device on the same global batch, up to the order of float reductions.

On several hosts call ``jax.distributed.initialize()`` first (``genjax train --distributed``);
each process then loads only its slice of the global batch (see
:meth:`genjax.data.BatchIterator`) and :func:`shard_batch` assembles the global array.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"

# The data mesh of the program being traced (set by the trainer and the evaluation runner while
# they trace): arrays a step creates itself (noise, critic parts) are split over it.
_TRACING_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar(
    "genjax_tracing_mesh", default=None)


@contextlib.contextmanager
def split_over(mesh: Mesh | None) -> Iterator[None]:
    """While tracing under this context, :func:`along_batch` splits arrays over ``mesh``."""
    token = _TRACING_MESH.set(mesh)
    try:
        yield
    finally:
        _TRACING_MESH.reset(token)


def along_batch(tree: Any) -> Any:
    """``tree``'s arrays split on their leading (batch) axis over the traced step's data mesh.

    A step's inputs arrive split over the devices, and XLA carries that split through whatever
    depends on them; an array a step makes itself (the generator's noise ``z``, and so ``G(z)``
    and ``D(G(z))``) depends on no input, and XLA would compute it whole on every device. Methods
    pass such arrays through this function. Outside :func:`split_over` (one device, eager
    code, tests calling a step directly) it returns ``tree`` unchanged. Values never change:
    with ``jax_threefry_partitionable`` (JAX's default) random draws are the same however they
    are split.
    """
    return _constrain(tree, PartitionSpec(DATA_AXIS))


def _constrain(tree: Any, spec: PartitionSpec) -> Any:
    """``tree``'s arrays split by ``spec`` over the traced step's mesh; an array whose split axis
    does not divide over the devices (a history pool of one group on 4 devices) is left to XLA."""
    mesh = _TRACING_MESH.get()
    if mesh is None or mesh.devices.size == 1:
        return tree
    sharding = NamedSharding(mesh, spec)
    axis, n = list(spec).index(DATA_AXIS), mesh.devices.size

    def constrain(a):
        if a.ndim <= axis or a.shape[axis] % n:
            return a
        return jax.lax.with_sharding_constraint(a, sharding)

    return jax.tree.map(constrain, tree)


def critic_parts(x: jax.Array, n: int) -> jax.Array:
    """The ``n`` parts of a batch for ``n`` critic updates: part ``i`` is rows ``i, i + n, ...``.

    Shape ``(B, ...)`` -> ``(n, B / n, ...)``. Strided, not contiguous, parts: when ``B / n``
    divides over the devices every device holds ``B / (n d)`` rows of every part, so each critic
    update stays split over all devices with no data moved between them (contiguous parts would
    sit on a subset of the devices and make XLA gather the batch).
    """
    if x.shape[0] % n:
        raise ValueError(f"a batch of {x.shape[0]} does not split into {n} critic parts")
    parts = jnp.moveaxis(x.reshape(x.shape[0] // n, n, *x.shape[1:]), 1, 0)
    return _constrain(parts, PartitionSpec(None, DATA_AXIS))


def by_process(devices: list) -> dict[int, list]:
    """``devices`` grouped by the process that owns them, in order: ``{process index: [...]}``."""
    groups: dict[int, list] = {}
    for device in devices:
        groups.setdefault(device.process_index, []).append(device)
    return dict(sorted(groups.items()))


def split_count(batch_size: int, local: int, processes: int) -> int:
    """The most devices per process, at most ``local``, over which ``batch_size`` splits.

    The largest ``d <= local`` with ``batch_size % (d * processes) == 0`` (1 always qualifies
    once the processes divide the batch: the caller checks that).
    """
    return max(n for n in range(1, local + 1) if batch_size % (n * processes) == 0)


def take_per_process(groups: dict[int, list], d: int) -> list:
    """The first ``d`` devices of every process, process by process."""
    return [device for p in groups for device in groups[p][:d]]


def choose_devices(batch_size: int, num_devices: int = 0) -> tuple[list, str]:
    """The devices of a run's data mesh, and a line for the log saying why.

    Every process takes the same number of its own devices, ``d`` per process: ``num_devices``
    when given (it must divide the batch with the process count and not exceed the devices a
    process has), else the most of them (up to all) for which ``d * process_count`` divides
    ``batch_size`` (:func:`split_count`).

    Raises:
      ValueError: ``num_devices`` is more than a process has, or does not divide the batch.
    """
    local = jax.local_device_count()
    processes = jax.process_count()
    if batch_size % processes:
        raise ValueError(f"train.batch_size={batch_size} must be divisible by the number of "
                         f"processes ({processes})")
    if num_devices:
        if num_devices > local:
            raise ValueError(f"train.num_devices={num_devices}; this process has {local} "
                             f"{jax.default_backend()} device(s)")
        if batch_size % (num_devices * processes):
            raise ValueError(
                f"train.num_devices={num_devices}; expected a count that divides "
                f"train.batch_size={batch_size} over {processes} process(es): one of "
                f"{[d for d in range(1, local + 1) if batch_size % (d * processes) == 0]}")
        d, why = num_devices, f"train.num_devices={num_devices}"
    else:
        d = split_count(batch_size, local, processes)
        why = ("all of them" if d == local else
               f"train.batch_size={batch_size} does not split over {local * processes}")
    devices = take_per_process(by_process(jax.devices()), d)
    line = (f"{len(devices)} of {local * processes} {jax.default_backend()} device(s) ({why})"
            + (f", {d} in each of {processes} processes" if processes > 1 else ""))
    return devices, line


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def state_shardings(state: Any, mesh: Mesh, split: tuple[str, ...] = ()) -> Any:
    """Per-leaf shardings of a train state (or its ``jax.eval_shape``): replicated, except
    the leaves of the non-trained collections named in ``split`` (a method's
    ``split_collections``), whose leading axis is split over the devices where it divides.

    Such a collection holds per-group state whose values do not depend on the split (CycleGAN's
    history pools, one per batch position): kept split, it is updated where its batch rows are,
    and nothing is gathered.
    """
    whole, rows = replicated(mesh), batch_sharded(mesh)
    n = mesh.devices.size

    def place(path, leaf):
        names = [getattr(k, "name", getattr(k, "key", None)) for k in path]
        in_split = any(a == "collections" and b in split
                       for a, b in zip(names[:-1], names[1:], strict=True))
        if in_split and leaf.ndim >= 1 and leaf.shape[0] % n == 0:
            return rows
        return whole

    return jax.tree_util.tree_map_with_path(place, state)


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
    """Raises unless the global batch splits evenly over the devices and processes."""
    n = mesh.devices.size
    if global_batch_size < 1:
        raise ValueError(f"train.batch_size must be positive, got {global_batch_size}")
    if global_batch_size % n:
        raise ValueError(
            f"train.batch_size={global_batch_size} must be divisible by the number of devices "
            f"({n}); choose a multiple of {n}"
        )
    if global_batch_size % jax.process_count():
        raise ValueError(
            f"train.batch_size={global_batch_size} must be divisible by the number of "
            f"processes ({jax.process_count()})"
        )


def stacked_batch_sharded(mesh: Mesh) -> NamedSharding:
    """Batches stacked for several steps ``(k, B, ...)``: sharded on the batch axis (1)."""
    return NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh, *, stacked: bool = False
                ) -> dict[str, jax.Array]:
    """Places this process's slice of a batch onto the mesh as one global array per key.

    ``stacked``: the arrays are ``(k, b, ...)``, the batches of k steps, sharded on axis 1.
    """
    sharding = stacked_batch_sharded(mesh) if stacked else batch_sharded(mesh)
    if jax.process_count() == 1:
        return {k: jax.device_put(v, sharding) for k, v in batch.items()}
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of ``tree`` on all devices of the mesh (a leaf already there is kept).

    Works with several processes, where ``jax.device_put`` refuses a sharding over devices
    another process owns: each process places its copy on its own devices (the value must be
    the same on every process, as a run's parameters and keys are). A leaf replicated over
    another mesh (devices of other processes among them) is read from this process's copy;
    leaves must be replicated, not split, wherever they are.
    """
    target = replicated(mesh)

    def place(a):
        if isinstance(a, jax.Array):
            if a.sharding.is_equivalent_to(target, a.ndim):
                return a
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(place(jax.random.key_data(a)),
                                                impl=jax.random.key_impl(a))
            if not a.is_fully_addressable:
                a = a.addressable_data(0)
        if jax.process_count() == 1:
            return jax.device_put(a, target)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

    return jax.tree.map(place, tree)
