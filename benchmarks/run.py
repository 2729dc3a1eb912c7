"""Training throughput of genjax's MNIST-scale configs, with ratios measured in the same run.

    python benchmarks/run.py --families vae dcgan wgangp realnvp pixelcnn gated_pixelcnn \\
        cyclegan --budget-minutes 20 --data-root /work/shared/data --out bench.json
    python benchmarks/run.py --configs vae_digits --budget-minutes 0.3 --out /tmp/b.json

One row per config x compute dtype (``--dtypes``, default float32 and bfloat16 through
``--set train.compute_dtype=...``). Each row reports:

* compile time: ``jax.jit(method.train_step, donate_argnums=0).lower(state, batch).compile()``
  timed (and the engine's own compile of its dispatch program);
* the real loop: ``Trainer(config, None).train(n)`` (prefetching, ``train.steps_per_dispatch``
  steps per call, metrics fetched every ``train.log_every`` steps; no checkpoints or
  evaluation), one warm-up call then timed calls: steps/s and examples/s;
* the jitted step alone: the AOT-compiled step over a few batches placed on the devices
  beforehand, state copied from the trainer (it is donated), blocking only at the end; and the
  loop's overhead ``1 - real / engine_free`` in percent;
* FLOPs per step from XLA's cost analysis of that step, achieved FLOP/s at the real loop's rate
  and its fraction of the peak of the row's dtype, measured in the same run just before the timed rows (large
  float32 and bfloat16 matmuls);
* peak device memory where the backend reports it (``device.memory_stats()``; None on CPU) and
  the compiled step's buffer sizes (``memory_analysis()``);
* with torch importable, a PyTorch twin of the same network, optimizer and batch
  (``benchmarks/twins``): genjax's initial parameters are copied into it and its first loss on
  genjax's batch and noise must equal genjax's within 1e-4 relative (checked in float32), and
  so must the second step's (after one optimizer update: this checks the optimizer, and the
  layers a zero initialisation hides from the first loss, e.g. Real NVP's couplings);
  otherwise the row says why and gives no ratio. A step's loss can be ill-conditioned (a GAN
  loss can be a small difference of large terms; Adam's first update divides each gradient by
  its own magnitude): genjax's own two losses are computed again from
  its initial parameters times ``1 + 1e-7 N(0,1)`` (float32's round-off), and a step whose loss
  moves by r that way is checked at ``max(1e-4, 10 r)`` if genjax's step is deterministic (run
  again unperturbed from the same state it gives the same loss; otherwise 1e-4); the row keeps
  r, the rerun's difference and the tolerance. The step is compiled with the trainer's XLA
  options (``Trainer.compiler_options``: on GPUs, deterministic algorithms only). The twin is timed in the same process right
  after genjax's numbers, repeat by repeat, and the ratio is genjax's steps/s over the twin's
  (> 1: genjax faster), from the medians of the repeats.

``--budget-minutes M``: the whole command (imports included) aims to fit in M minutes. First
every row is prepared (data, initialisation, both compilations, the twin check, a warm-up call
of the real loop); the steps these run calibrate a row's cost per step. Then what is left of the
budget is shared equally by the rows that are ready: each row's number of timed steps per
repeat fills its share, and repeats stop early when the next would not fit. When the fixed costs
alone exceed the budget, every row still gets 2 % of the budget (at least 5 s) of timed steps
(one repeat of one step at the least), so the command runs over; it prints how long it took. The table says how many steps x repeats each
number is from. A row that cannot be set up (missing data, a dtype a family does not support
yet) gets the error message and the command goes on.

``--measure-lock FILE`` (``fcntl.flock``): several commands started together on one machine (say
one per family) set their rows up in parallel under a shared lock on FILE, and each measures the
peak and times its rows under an exclusive one: nothing is timed while another command (or
anything else that holds FILE, e.g. ``flock -s FILE pytest ...``) compiles or runs. A command's
budget counts from its own start, so with the lock give ``--row-seconds S`` (each row's timed
seconds) rather than rely on an equal share of the budget.

``--report A.json B.json ...`` prints one table from the JSON files of earlier commands (the
rows of all of them, with each file's device, peak and date) and measures nothing.

Timings on a shared machine drift: compare numbers only within one run (the ratios), never
across runs. Nothing here asserts on speed.
"""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()  # the budget counts from here, imports included
# OpenMP threads that spin while waiting (GNU OpenMP's default) make PyTorch 10-50x slower on a
# CPU shared with other jobs (measured here: 1 vs 50 steps/s for a small MLP). Unless the user
# chose a policy, threads sleep instead; set before anything loads an OpenMP runtime.
OMP_WAIT_POLICY = os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cpu_devices_from_argv(argv: list[str]) -> int:
    """``--cpu-devices N`` read before jax is imported (XLA reads its flags once)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--cpu-devices=") else (
            argv[i + 1] if arg == "--cpu-devices" and i + 1 < len(argv) else None)
        if value is not None:
            return int(value) if value.isdigit() else 0  # parse_args reports a bad value
    return 0


_EARLY_CPU_DEVICES = _cpu_devices_from_argv(sys.argv[1:]) if __name__ == "__main__" else 0
if _EARLY_CPU_DEVICES > 1:
    # N host "devices", each running its share of the batch with single-threaded kernels
    # (the loop's data parallelism; genjax.host_devices): measured on the 2-core CPU,
    # PixelCNN's jitted step 1360-1487 ms against 1568-1969 ms as one multi-threaded device.
    from genjax.host_devices import split_host_cpu

    try:
        split_host_cpu(_EARLY_CPU_DEVICES)
    except ValueError as err:
        sys.exit(f"run.py: error: {err}")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import traceback  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from genjax.experiments import load_config  # noqa: E402
from genjax.models.convolution import FORMULATIONS, default_formulation  # noqa: E402
from genjax.train import parallel  # noqa: E402
from genjax.train.loop import Trainer  # noqa: E402
from genjax.train.precision import matmul_precision  # noqa: E402

FAMILIES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "vae": [("vae_binarized_mnist", ()), ("vae_binarized_mnist", ("train.batch_size=100",))],
    "dcgan": [("dcgan_mnist", ())],
    "wgangp": [("wgangp_mnist", ())],
    "realnvp": [("realnvp_mnist", ())],
    "pixelcnn": [("pixelcnn_binarized_mnist", ())],
    "gated_pixelcnn": [("gated_pixelcnn_mnist", ())],
    "cyclegan": [("cyclegan_mnist", ())],
}
DTYPES = ("float32", "bfloat16")
TWIN_TOLERANCE = 1e-4  # relative, on the losses of the first two steps (float32)
# ... unless round-off alone moves genjax's own loss further: the gate of a step is then
# ROUNDOFF_FACTOR x how far its loss moves under parameter noise at float32's round-off.
ROUNDOFF_FACTOR = 10.0
NUM_BATCHES = 4  # distinct batches placed on the devices for the engine-free loop
TAIL_SECONDS = 2.0  # kept for the table and the JSON
# Timed seconds every row gets even when the fixed costs (compilations, checks) have used up
# the budget: numbers from a single step would say little.
MIN_ROW_SECONDS, MIN_ROW_FRACTION = 5.0, 0.02


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# -- environment --------------------------------------------------------------------------------
def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """CPUs this process may run on (what XLA's CPU thread pool uses)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def environment(args: argparse.Namespace) -> dict:
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "num_devices": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_count": cpu_count(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in
                     ("jax", "jaxlib", "flax", "optax", "numpy", "torch")},
        "budget_minutes": args.budget_minutes,
        "omp_wait_policy": OMP_WAIT_POLICY,
        "conv_formulation": args.conv_formulation,
        "cpu_devices": args.cpu_devices,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "note": "timings drift on shared machines: compare within one run (ratios) only",
    }


# -- the device's peak --------------------------------------------------------------------------
def matmul_peak(dtype_name: str, *, target_s: float = 0.05, max_n: int = 16384,
                accelerator_n: int = 8192) -> dict:
    """FLOP/s of an ``n x n`` matmul in ``dtype_name``: the best of 5 timed samples.

    On the CPU, n doubles from 256 until one call takes ``target_s``. On a GPU or TPU n is
    ``accelerator_n`` at once: every new shape costs a compilation with autotuning there
    (measured on an H200: doubling from 256 took 65 s for the two dtypes), and a sample repeats
    the call until it lasts ``target_s``. float32 runs at 'highest' precision (what genjax's
    float32 rows trace with).
    """
    dtype = jnp.dtype(dtype_name)
    on_cpu = jax.devices()[0].platform == "cpu"
    # Several host devices (--cpu-devices) run a data-parallel step side by side: the peak is
    # then one n x n product per device at once (a batch of them split over the devices).
    count = jax.device_count() if on_cpu else 1
    if count > 1:
        split = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(jax.devices()), ("d",)),
                                           jax.sharding.PartitionSpec("d"))
        fn = jax.jit(jnp.matmul, in_shardings=(split, split), out_shardings=split)
    else:
        split, fn = None, jax.jit(lambda a, b: a @ b)
    n = 256 if on_cpu else accelerator_n
    with matmul_precision(dtype_name):
        while True:
            shape = (count, n, n) if count > 1 else (n, n)
            a = jax.random.normal(jax.random.key(0), shape, dtype)
            b = jax.random.normal(jax.random.key(1), shape, dtype)
            if split is not None:
                a, b = jax.device_put(a, split), jax.device_put(b, split)
            fn(a, b).block_until_ready()
            t0 = time.perf_counter()
            fn(a, b).block_until_ready()
            elapsed = time.perf_counter() - t0
            if not on_cpu or elapsed >= target_s or n >= max_n:
                break
            n *= 2
        calls = max(1, math.ceil(target_s / max(elapsed, 1e-9)))
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                out = fn(a, b)
            out.block_until_ready()
            times.append((time.perf_counter() - t0) / calls)
    best = min(times)
    return {"flops_per_s": count * 2 * n**3 / best, "n": n, "seconds": best, "dtype": dtype_name,
            "calls_per_sample": calls, "devices": count}


# -- one row ------------------------------------------------------------------------------------
def copy_tree(tree):
    """New buffers with the same shardings (the step donates its state)."""
    return jax.tree.map(lambda x: jax.device_put(x, x.sharding, may_alias=False), tree)


def flops_of(compiled) -> float | None:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return float(flops) if flops is not None and flops > 0 else None


def memory_of(compiled) -> dict | None:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return None
    if stats is None:
        return None
    names = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
             "temp_size_in_bytes", "generated_code_size_in_bytes")
    return {n: int(getattr(stats, n)) for n in names if hasattr(stats, n)}


def device_peak_memory() -> int | None:
    """The process's peak bytes on the first device so far (None where the backend says nothing).

    The backend keeps one running peak per process and has no reset, so a row's value is the peak
    of everything the process did up to the end of that row; :func:`step_bytes` is the row's own.
    """
    stats = jax.devices()[0].memory_stats()
    if not stats:
        return None
    return int(stats.get("peak_bytes_in_use", stats.get("bytes_in_use", 0))) or None


def step_bytes(memory: dict | None) -> int | None:
    """Device bytes one call of the compiled step holds at once, by XLA's buffer assignment:
    arguments + outputs - donated (aliased) + temporaries."""
    if not memory:
        return None
    try:
        return (memory["argument_size_in_bytes"] + memory["output_size_in_bytes"]
                - memory["alias_size_in_bytes"] + memory["temp_size_in_bytes"])
    except KeyError:
        return None


def row_overrides(name: str, overrides: list[str], dtype: str, data_root: str | None) -> list[str]:
    out = [*overrides, "train.progress=false", f"train.compute_dtype={dtype}"]
    if data_root and not any(o.split("=", 1)[0].strip() == "data.manual_dir" for o in out):
        dataset = load_config(name).data.name
        folder = Path(data_root).expanduser() / dataset
        if folder.is_dir():
            out.append(f"data.manual_dir={folder}")
    return out


class UnsupportedDtype(ValueError):
    """The requested compute dtype does not reach the family's step."""


def dtype_name_in_program(dtype: str, lowered) -> bool | None:
    """Whether the lowered step has an operation in ``dtype`` (None: the text is unavailable)."""
    short = {"bfloat16": "bf16", "float16": "f16"}.get(dtype, dtype)
    try:
        text = lowered.as_text()
    except Exception:  # not every jax version exposes the text
        return None
    return f"x{short}>" in text or f"<{short}>" in text or f"tensor<{short}" in text


class TwinCheck:
    """The float32 equivalence check of a twin, cached per (config, overrides)."""

    cache: dict[tuple, dict] = {}


def twin_losses_check(twin, compiled, trainer, host, device_batches, steps: int = 2) -> dict:
    """Runs ``steps`` genjax steps and twin steps from the same parameters on genjax's inputs.

    Returns ``{"losses": [{name: {genjax, torch, rel_diff}} per step], "step_seconds": (genjax,
    twin) seconds of the last step, "roundoff": [...], "rerun": [...]}`` (the last step doubles
    as calibration; the last two from :func:`roundoff_sensitivity`).
    """
    from twins.common import relative_difference, synchronize

    state = copy_tree(trainer.state)
    twin.load(state)
    per_step, timing = [], None
    for s in range(steps):
        inputs = twin.genjax_inputs(state, host[s % len(host)])
        t0 = time.perf_counter()
        state, metrics = compiled(state, device_batches[s % len(device_batches)])
        metrics = jax.device_get(metrics)
        t_jax = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = twin.train_step(inputs)
        synchronize(twin.device)
        t_twin = time.perf_counter() - t0
        per_step.append({
            name: {"genjax": float(metrics[gname]), "torch": float(out[name]),
                   "rel_diff": relative_difference(out[name], metrics[gname])}
            for name, gname in twin.losses.items()})
        timing = (t_jax, t_twin)
    first_run = [{gname: step[name]["genjax"] for name, gname in twin.losses.items()}
                 for step in per_step]
    return {"losses": per_step, "step_seconds": timing,
            **roundoff_sensitivity(compiled, trainer, device_batches,
                                   list(twin.losses.values()), steps, first_run=first_run)}


ROUNDOFF = 1e-7  # relative parameter noise of the conditioning run: about float32's round-off


def step_tolerance(roundoff: float, rerun: float = 0.0) -> float:
    """The twin check's gate for a step whose loss moves by ``roundoff`` under round-off.

    Only a deterministic step (``rerun == 0``: the same program on the same state gave the same
    loss twice) can vouch for its own conditioning: a nondeterministic one's noise run measures
    its nondeterminism along with its conditioning, so it keeps the flat ``TWIN_TOLERANCE``.
    (On an H200, with the nondeterministic algorithms XLA picks by default, PixelCNN's wrong
    gradients also moved the noise run's second loss by 2.6e-4, against 3.6e-7 on the CPU: that
    widened the gate to 2.6e-3, over the error it should have caught, 1.3e-3.)
    """
    if rerun > 0:
        return TWIN_TOLERANCE
    return max(TWIN_TOLERANCE, ROUNDOFF_FACTOR * roundoff)


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def roundoff_sensitivity(compiled, trainer, device_batches, names, steps: int = 2,
                         first_run: list[dict] | None = None) -> dict[str, list[float]]:
    """How far genjax's own losses move, step by step, when every initial parameter is multiplied
    by ``1 + ROUNDOFF * N(0, 1)``: what round-off alone can do to the twin check's numbers (a
    loss after an Adam update can move by far more than the round-off put in).

    Returns ``{"roundoff": [...], "rerun": [...]}`` per step: the largest relative move of a
    loss under the noise (against an unperturbed rerun), and how far that unperturbed rerun is
    from ``first_run`` (the same program from the same state, e.g. the twin check's own run:
    0 for a deterministic step; all 0 when ``first_run`` is None).
    """
    def run(state):
        out = []
        for s in range(steps):
            state, metrics = compiled(state, device_batches[s % len(device_batches)])
            metrics = jax.device_get(metrics)
            out.append({n: float(metrics[n]) for n in names})
        return out

    base = run(copy_tree(trainer.state))
    state = copy_tree(trainer.state)
    key = jax.random.key(0)
    for i, (name, model) in enumerate(state.models.items()):
        leaves, tree = jax.tree.flatten(model.params)
        keys = jax.random.split(jax.random.fold_in(key, i), len(leaves))
        noisy = [p * (1 + ROUNDOFF * jax.random.normal(k, p.shape, p.dtype))
                 if jnp.issubdtype(p.dtype, jnp.floating) else p
                 for p, k in zip(leaves, keys, strict=True)]
        state = state.replace_model(name, model.replace(params=jax.tree.unflatten(tree, noisy)))
    moved = run(state)
    roundoff = [max(_relative(m[n], b[n]) for n in names)
                for b, m in zip(base, moved, strict=True)]
    rerun = ([max(_relative(b[n], f[n]) for n in names)
              for b, f in zip(base, first_run, strict=True)]
             if first_run is not None else [0.0] * steps)
    return {"roundoff": roundoff, "rerun": rerun}


def make_twin_for(trainer, dtype: str, args):
    """``(twin, None)`` or ``(None, reason)``."""
    if args.no_twins:
        return None, "skipped: --no-twins"
    try:
        import torch
        import twins
    except ImportError as err:
        return None, f"skipped: torch is not importable ({err})"
    device = "cuda" if jax.devices()[0].platform == "gpu" and torch.cuda.is_available() else "cpu"
    if jax.devices()[0].platform != "cpu" and device == "cpu":
        return None, (f"skipped: genjax runs on {jax.devices()[0].platform}, torch has no such "
                      "device here: a ratio across devices means nothing")
    try:
        return twins.make_twin(trainer.method, device=device, compute_dtype=dtype,
                               seed=trainer.config.train.seed), None
    except twins.UnsupportedConfig as err:
        return None, f"no twin: {err}"


def time_engine_free(compiled, trainer, device_batches, n: int) -> float:
    state = copy_tree(trainer.state)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    metrics = None
    for i in range(n):
        state, metrics = compiled(state, device_batches[i % len(device_batches)])
        if trainer.wait_each_dispatch:  # as the loop does (jax 0.10's multi-device CPU deadlock)
            jax.block_until_ready(metrics)
    jax.block_until_ready((state, metrics))
    return n / (time.perf_counter() - t0)


def time_twin(twin, host, n: int, log_every: int) -> float:
    from twins.common import synchronize

    t0 = time.perf_counter()
    for i in range(n):
        out = twin.train_step(twin.draw_inputs(host[i % len(host)]))
        if (i + 1) % log_every == 0 or i == n - 1:  # fetch the losses as the real loop does
            _ = [float(v) for v in out.values()]
    synchronize(twin.device)
    return n / (time.perf_counter() - t0)


class Row:
    """One config x dtype: :meth:`prepare` (set-up, compile, twin check, warm-up, calibration),
    then :meth:`measure` (the timed repeats). ``self.row`` holds every number as it is measured;
    an error is recorded there (with the stage) and the command goes on."""

    def __init__(self, name: str, overrides: list[str], label: str, dtype: str, args):
        self.name, self.overrides, self.dtype, self.args = name, list(overrides), dtype, args
        self.row: dict = {"label": label, "config": name, "overrides": list(overrides),
                          "dtype": dtype, "status": "ok", "error": None, "error_stage": None,
                          "seconds": 0.0}
        self.trainer = self.compiled = self.twin = None
        self.host = self.device_batches = None
        self.per_step: dict[str, float] = {}  # seconds per step: free, real, twin
        self._stage = "config"

    @property
    def ok(self) -> bool:
        return self.row["status"] == "ok"

    def _fail(self, stage: str, err: Exception) -> None:
        self.row.update(status="error", error_stage=stage,
                        error=f"{type(err).__name__}: {err}".strip()[:2000],
                        traceback=traceback.format_exc(limit=6))
        log(f"{self.row['label']} [{self.dtype}]: error during {stage}: {self.row['error'][:300]}")
        self.trainer = self.compiled = self.twin = None  # free the memory

    def prepare(self) -> None:
        self._timed_stages(self._prepare)

    def _timed_stages(self, fn) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as err:  # the row records the error; the command goes on
            self._fail(self._stage, err)
        self.row["seconds"] += time.perf_counter() - t0

    def _prepare(self) -> None:
        row, args, dtype = self.row, self.args, self.dtype
        config = load_config(self.name, row_overrides(self.name, self.overrides, dtype,
                                                      args.data_root))
        cfg = config.train
        row.update(method=config.method, dataset=config.data.name, batch_size=cfg.batch_size,
                   steps_per_dispatch=cfg.steps_per_dispatch, log_every=cfg.log_every)
        self._stage = "trainer (data, initialisation)"
        trainer = self.trainer = Trainer(config, None)
        row["devices"] = int(trainer.mesh.devices.size)
        self.host = [trainer.host_batch(s) for s in range(NUM_BATCHES)]
        self.device_batches = [parallel.shard_batch(b, trainer.mesh) for b in self.host]

        self._stage = "compile"
        step = jax.jit(trainer.method.train_step, donate_argnums=0)
        t0 = time.perf_counter()
        with matmul_precision(dtype):
            lowered = step.lower(trainer.state, self.device_batches[0])
        t1 = time.perf_counter()
        if dtype != "float32" and dtype_name_in_program(dtype, lowered) is False:
            raise UnsupportedDtype(
                f"train.compute_dtype={dtype} has no effect on this family's step: the lowered "
                f"program has no {dtype} operation (the family does not implement it yet); the "
                "row would repeat the float32 one, so it is not measured")
        # The trainer's XLA options (on GPUs: deterministic algorithms only), so that the step
        # timed and checked here is the one the loop runs.
        row["compiler_options"] = dict(trainer.compiler_options)
        self.compiled = lowered.compile(trainer.compiler_options or None)
        t2 = time.perf_counter()
        row["compile"] = {"lower_s": t1 - t0, "compile_s": t2 - t1, "total_s": t2 - t0}
        log(f"  compiled the step in {t2 - t0:.1f} s")
        # XLA's cost analysis covers one device's partition of a data-parallel step
        per_device = flops_of(self.compiled)
        row["flops_per_step"] = (per_device * row["devices"] if per_device is not None
                                 else None)
        row["memory"] = {"compiled_step": memory_of(self.compiled)}
        row["memory"]["step_bytes"] = step_bytes(row["memory"]["compiled_step"])

        self._stage = "twin"
        try:
            self._prepare_twin()
        except Exception as err:  # a broken twin costs the ratio, never genjax's numbers
            self.twin = None
            self.per_step.pop("twin", None)
            row.setdefault("twin", {}).update(
                status="failed", reason=f"{type(err).__name__}: {err}"[:2000],
                traceback=traceback.format_exc(limit=6))
            log(f"{row['label']} [{dtype}]: twin failed: {row['twin']['reason'][:300]}")

        log(f"  twin: {row['twin']['status']}")
        self._stage = "calibration (jitted step)"
        if "free" not in self.per_step:
            state = copy_tree(trainer.state)
            state, m = self.compiled(state, self.device_batches[0])
            jax.block_until_ready((state, m))
            t0 = time.perf_counter()
            state, m = self.compiled(state, self.device_batches[1])
            jax.block_until_ready((state, m))
            self.per_step["free"] = time.perf_counter() - t0
            del state, m

        self._stage = "real loop (warm-up call)"
        extra = 2 if self.per_step["free"] < 0.5 else 0  # a few steps past the compile: calibration
        warm = trainer.train(1 + extra)
        log(f"  real loop warm-up call (compiles the engine's program): {warm['seconds']:.1f} s")
        compile_s = getattr(trainer, "compile_seconds", None)
        row["compile"]["engine_compile_s"] = compile_s
        row["compile"]["engine_warmup_call_s"] = warm["seconds"]
        real = (warm["seconds"] - compile_s) / warm["steps"] if compile_s is not None else None
        self.per_step["real"] = max(real or 0.0, self.per_step["free"])

    def _prepare_twin(self) -> None:
        row, dtype = self.row, self.dtype
        twin, reason = make_twin_for(self.trainer, dtype, self.args)
        tw: dict = {"status": "skipped" if twin is None else "ok", "reason": reason}
        row["twin"] = tw
        if twin is None:
            return
        import torch

        tw.update(device=twin.device, threads=torch.get_num_threads(), compute_dtype=dtype,
                  parameters=twin.num_parameters())
        check = self._float32_check(twin)
        first, second = check["losses"][0], check["losses"][1]
        tw["first_loss_float32"] = first
        tw["second_loss_float32"] = second  # after one update: checks the optimizer too
        tw["first_loss_max_rel_diff"] = max(v["rel_diff"] for v in first.values())
        tw["second_loss_max_rel_diff"] = max(v["rel_diff"] for v in second.values())
        tw["roundoff_parameter_noise"] = ROUNDOFF
        tw["first_loss_roundoff"], tw["second_loss_roundoff"] = check["roundoff"][:2]
        # genjax's step run twice on the same state: > 0 means nondeterministic (the gate then
        # stays at TWIN_TOLERANCE, see step_tolerance)
        tw["first_loss_rerun"], tw["second_loss_rerun"] = check["rerun"][:2]
        for which, losses in (("first", first), ("second", second)):
            worst = tw[f"{which}_loss_max_rel_diff"]
            roundoff = tw[f"{which}_loss_roundoff"]
            rerun = tw[f"{which}_loss_rerun"]
            tolerance = tw[f"{which}_loss_tolerance"] = step_tolerance(roundoff, rerun)
            if not worst <= tolerance:
                tw["status"] = "check failed"
                tw["reason"] = (
                    f"the {which} step's loss differs from genjax's by {worst:.3g} relative "
                    f"(tolerance {tolerance:.2g}): " + ", ".join(
                        f"{k}: torch {v['torch']:.7g} vs genjax {v['genjax']:.7g}"
                        for k, v in losses.items())
                    + "; the twin (or the noise it is given, or its optimizer) no longer "
                    "matches genjax's step, so no ratio is given (round-off alone, genjax's "
                    f"initial parameters x (1 + {ROUNDOFF:g} N(0,1)), moves genjax's own loss "
                    f"by {roundoff:.2g}" + (
                        f"; genjax's step is not deterministic here (run twice from the same "
                        f"state its loss differs by {rerun:.2g}), so that does not widen the "
                        "tolerance)" if rerun > 0 else ")"))
                log(f"{row['label']} [{dtype}]: twin check FAILED: {tw['reason']}")
                return
        if dtype == "float32":
            self.per_step["free"], self.per_step["twin"] = check["step_seconds"]
        else:  # the same comparison in this dtype, for information (not a gate)
            same = twin_losses_check(twin, self.compiled, self.trainer, self.host,
                                     self.device_batches)
            tw["first_loss_same_dtype"] = same["losses"][0]
            self.per_step["free"], self.per_step["twin"] = same["step_seconds"]
        self.twin = twin

    def _float32_check(self, twin) -> dict:
        """The float32 twin check of this config: this row's when float32, else cached/rebuilt."""
        key = (self.name, tuple(self.overrides))
        if self.dtype == "float32":
            TwinCheck.cache[key] = twin_losses_check(twin, self.compiled, self.trainer, self.host,
                                                     self.device_batches)
        elif key not in TwinCheck.cache:
            log(f"{self.row['label']}: building a float32 trainer for the twin check")
            cfg = load_config(self.name, row_overrides(self.name, self.overrides, "float32",
                                                       self.args.data_root))
            tr32 = Trainer(cfg, None)
            with matmul_precision("float32"):
                c32 = jax.jit(tr32.method.train_step, donate_argnums=0).lower(
                    tr32.state, self.device_batches[0]).compile(tr32.compiler_options or None)
            twin32, reason = make_twin_for(tr32, "float32", self.args)
            if twin32 is None:
                raise RuntimeError(reason)
            TwinCheck.cache[key] = twin_losses_check(twin32, c32, tr32, self.host,
                                                     self.device_batches)
        return TwinCheck.cache[key]

    def plan_steps(self, seconds: float) -> tuple[int, int]:
        """``(steps per repeat, repeats)`` filling ``seconds`` by the calibration."""
        per_step = self.per_step["real"] + self.per_step["free"] + self.per_step.get("twin", 0.0)
        repeats = self.args.repeats
        n = int((seconds / repeats - 0.05) / per_step)
        if n < 3:
            repeats = 1
            n = int((seconds - 0.05) / per_step)
        return max(1, min(n, self.args.max_steps)), repeats

    def measure(self, deadline: float, peaks: dict) -> None:
        self._stage = "timed repeats"
        self._timed_stages(lambda: self._measure(deadline, peaks))

    def _recalibrate(self) -> None:
        """Under ``--measure-lock`` the set-up's calibration ran beside other commands' set-up:
        a short pilot of each phase, timed alone, replaces it (the real loop's pilot doubles its
        steps until it lasts 0.1 s, so its fixed cost per call does not count as per-step)."""
        trainer, k = self.trainer, 2
        while True:
            result = trainer.train(k)
            if result["seconds"] >= 0.1 or k >= 256:
                break
            k *= 2
        self.per_step["real"] = result["seconds"] / result["steps"]
        self.per_step["free"] = 1.0 / time_engine_free(self.compiled, trainer,
                                                       self.device_batches, k)
        if self.twin is not None:
            self.per_step["twin"] = 1.0 / time_twin(self.twin, self.host, k,
                                                    trainer.config.train.log_every)

    def _measure(self, deadline: float, peaks: dict) -> None:
        row, trainer, cfg = self.row, self.trainer, self.trainer.config.train
        if self.args.measure_lock is not None:
            self._recalibrate()
        n, repeats = self.plan_steps(deadline - time.perf_counter())
        row["calibration"] = {f"{k}_step_s": v for k, v in self.per_step.items()}
        row["calibration"].update(planned_steps=n, planned_repeats=repeats,
                                  seconds_left=deadline - time.perf_counter())
        real, free, torch_rates = [], [], []

        def run_real():
            result = trainer.train(n)
            real.append(result["steps"] / result["seconds"])

        def run_free():
            free.append(time_engine_free(self.compiled, trainer, self.device_batches, n))

        def run_twin():
            if self.twin is None:
                return
            try:
                torch_rates.append(time_twin(self.twin, self.host, n, cfg.log_every))
            except Exception as err:  # the twin's failure costs the ratio only
                row["twin"].update(status="failed", reason=f"{type(err).__name__}: {err}",
                                   traceback=traceback.format_exc(limit=6))
                self.twin = None
                torch_rates.clear()

        phases = [run_real, run_free, run_twin]
        for r in range(repeats):
            t_rep = time.perf_counter()
            # The order rotates from repeat to repeat, so that whatever a phase leaves behind
            # (measured: the real loop right after the PyTorch twin ran ~15% slower than right
            # after genjax's own runs) falls on each phase alike.
            for phase in phases[r % 3:] + phases[:r % 3]:
                phase()
            spent = time.perf_counter() - t_rep
            if r + 1 < repeats and time.perf_counter() + spent > deadline:
                break
        row["steps_timed"] = n
        row["repeats"] = len(real)
        real_rate, free_rate = statistics.median(real), statistics.median(free)
        row["real_loop"] = {"steps_per_s": real_rate, "examples_per_s": real_rate * cfg.batch_size,
                            "all_steps_per_s": real, "api": "Trainer.train"}
        row["engine_free"] = {"steps_per_s": free_rate,
                              "examples_per_s": free_rate * cfg.batch_size,
                              "all_steps_per_s": free}
        row["loop_overhead_pct"] = 100.0 * (1.0 - real_rate / free_rate)
        flops = row.get("flops_per_step")
        peak = peaks.get(self.dtype, {}).get("flops_per_s")
        if flops:
            row["achieved_flops_per_s"] = flops * real_rate
            row["fraction_of_peak"] = flops * real_rate / peak if peak else None
            row["peak_dtype"] = self.dtype
        if torch_rates:
            t_rate = statistics.median(torch_rates)
            row["twin"].update(steps_per_s=t_rate, examples_per_s=t_rate * cfg.batch_size,
                               all_steps_per_s=torch_rates,
                               ratio_genjax_over_torch=real_rate / t_rate,
                               ratio_engine_free_over_torch=free_rate / t_rate)
        row["memory"]["device_peak_bytes_process"] = device_peak_memory()

    def release(self) -> None:
        self.trainer = self.compiled = self.twin = None
        self.host = self.device_batches = None


# -- output -------------------------------------------------------------------------------------
def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        if abs(x) >= 10 ** digits:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}"
    return str(x)


TABLE = ["config", "dtype", "batch", "compile s", "loop steps/s", "loop ex/s", "jit-only steps/s",
         "loop overhead %", "GFLOP/step", "% of peak", "step MB", "torch steps/s", "genjax/torch",
         "twin loss diff (1st / 2nd step)", "steps x reps"]


def table_row(row: dict) -> dict:
    if row["status"] == "error":
        return {"config": row["label"], "dtype": row["dtype"],
                "batch": row.get("batch_size", "-"),
                "compile s": f"error ({row['error_stage']}): {row['error'][:120]}"}
    tw = row.get("twin", {})
    first, second = tw.get("first_loss_max_rel_diff"), tw.get("second_loss_max_rel_diff")
    check = "-"
    if first is not None and second is not None:
        check = f"{first:.1e} / {second:.1e}"
        tolerances = tw.get("first_loss_tolerance"), tw.get("second_loss_tolerance")
        if None not in tolerances and max(tolerances) > TWIN_TOLERANCE:
            check += f" (tolerance {tolerances[0]:.1e} / {tolerances[1]:.1e})"
        if tw["status"] == "check failed":
            check += " FAIL"
    frac = row.get("fraction_of_peak")
    return {
        "config": row["label"], "dtype": row["dtype"], "batch": row["batch_size"],
        "compile s": _fmt(row["compile"]["total_s"]),
        "loop steps/s": _fmt(row["real_loop"]["steps_per_s"]),
        "loop ex/s": _fmt(row["real_loop"]["examples_per_s"]),
        "jit-only steps/s": _fmt(row["engine_free"]["steps_per_s"]),
        "loop overhead %": f"{row['loop_overhead_pct']:.1f}",
        "GFLOP/step": _fmt(None if row.get("flops_per_step") is None
                           else row["flops_per_step"] / 1e9),
        "% of peak": "-" if frac is None else f"{100 * frac:.1f}",
        "step MB": _fmt(None if row["memory"].get("step_bytes") is None
                        else row["memory"]["step_bytes"] / 2**20),
        "torch steps/s": _fmt(tw.get("steps_per_s")),
        "genjax/torch": _fmt(tw.get("ratio_genjax_over_torch")),
        "twin loss diff (1st / 2nd step)":
            check if tw.get("status") != "skipped" else tw.get("reason", "-"),
        "steps x reps": f"{row['steps_timed']} x {row['repeats']}",
    }


def print_header(meta: dict, prefix: str = "") -> None:
    print(f"{prefix}{meta['device_kind']} ({meta['platform']}, {meta['num_devices']} device(s)); "
          f"CPU {meta['cpu']} x {meta['cpu_count']}; jax {meta['versions']['jax']}, "
          f"torch {meta['versions']['torch']}; {meta['date']}"
          + ("" if meta.get("conv_formulation", "auto") == "auto"
             else f"; convolutions: formulation {meta['conv_formulation']!r} forced"))
    peaks = meta.get("peaks") or {}
    print("peak (matmul): " + (", ".join(
        f"{k} {v['flops_per_s'] / 1e9:.1f} GFLOP/s (n={v['n']})" for k, v in peaks.items())
        or "not measured (the command stopped before its measurements)"))
    device_peak = meta.get("device_peak_bytes_process")
    print("peak device memory of the whole process: " + (
        "not reported by this backend" if device_peak is None else f"{device_peak / 2**20:,.0f} MB")
        + "; step MB: one call of the compiled step (XLA's buffer assignment: arguments + "
        "outputs - donated + temporaries)")


def print_rows(rows: list[dict]) -> None:
    cells = [table_row(r) for r in rows]
    print("| " + " | ".join(TABLE) + " |")
    print("|" + "|".join("---" for _ in TABLE) + "|")
    for c in cells:
        print("| " + " | ".join(str(c.get(h, "")) for h in TABLE) + " |")
    for r in rows:
        tw = r.get("twin") or {}
        if r["status"] == "ok" and tw.get("status") != "ok":
            print(f"- {r['label']} [{r['dtype']}]: twin {tw['status']}: {tw['reason']}")


def print_table(rows: list[dict], meta: dict) -> None:
    print()
    print_header(meta)
    print()
    print_rows(rows)
    print(f"\ntotal {meta['elapsed_s']:.0f} s of a {meta['budget_minutes']}-minute budget; "
          "numbers are medians over the repeats; genjax/torch > 1 means genjax is faster. "
          "Timings drift on a shared machine: compare within this run only.")


def write_json(out: Path, meta: dict, rows: list[dict], *, complete: bool) -> None:
    """Writes the results so far (``meta["complete"]`` says whether every row is in): a command
    stopped part-way (a time limit, an interrupt) keeps the rows it measured."""
    meta["complete"] = complete
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(_json_safe({"meta": meta, "rows": rows}), indent=2))
    tmp.replace(out)


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def report(paths: list[str]) -> int:
    """One table from earlier commands' JSON files (``--report``); rows not yet measured in a
    file that a stopped command left (``meta.complete`` false) are listed as such."""
    rows = []
    for i, path in enumerate(paths):
        try:
            data = json.loads(Path(path).read_text())
            meta, file_rows = data["meta"], data["rows"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"error: {path} is not a JSON file written by benchmarks/run.py ({err})",
                  file=sys.stderr)
            return 2
        print_header(meta, prefix=f"[{i + 1}] {path}: ")
        print(f"    command: {meta.get('command', '?')}"
              + ("" if meta.get("complete") else "  (stopped before it finished)"))
        for r in file_rows:
            if r.get("status") == "ok" and "real_loop" not in r:
                r = {**r, "status": "error", "error_stage": "measure",
                     "error": "not measured (the command stopped first)"}
            rows.append({**r, "label": f"{r['label']} [{i + 1}]"})
    print()
    print_rows(rows)
    print("\nnumbers are medians over the repeats; genjax/torch > 1 means genjax is faster; "
          "[k] names the file (and so the run) a row comes from: compare within one run only.")
    return 0


class MeasureLock:
    """``--measure-lock FILE``: commands started together share FILE through ``flock``.

    Each holds a shared lock while it sets its rows up (data, compilations, twin checks) and
    converts it to an exclusive one to measure the peak and time its rows, so nothing times while
    any of them (or anything else holding FILE, e.g. ``flock -s FILE pytest``) still compiles or
    runs. Without a path every method does nothing.
    """

    def __init__(self, path: str | None):
        self.file = None if path is None else open(path, "a")  # noqa: SIM115 (held for the run)
        self.path = path
        self._flock(shared=True)

    def _flock(self, *, shared: bool) -> float:
        if self.file is None:
            return 0.0
        import fcntl

        t0 = time.perf_counter()
        fcntl.flock(self.file.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        return time.perf_counter() - t0

    @contextlib.contextmanager
    def exclusive(self, meta: dict):
        if self.file is not None:
            log(f"waiting until nothing else holds {self.path} (set-up or timing elsewhere)")
            meta["lock_wait_s"] = self._flock(shared=False)
            log(f"  holding it alone after {meta['lock_wait_s']:.1f} s")
        try:
            yield
        finally:
            if self.file is not None:
                self.file.close()  # releases the lock
                self.file = None


# -- main ---------------------------------------------------------------------------------------
def plan(args) -> list[tuple[str, tuple[str, ...], str]]:
    """``(config, row overrides, label)`` for every requested config (families, then configs)."""
    out = []
    for family in args.families or []:
        for name, extra in FAMILIES[family]:
            label = name + "".join(f"[{o}]" for o in extra)
            out.append((name, extra, label))
    for name in args.configs or []:
        out.append((name, (), name))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=None,
                   help="families to run (each names its MNIST-scale config)")
    p.add_argument("--configs", nargs="+", default=None, help="configs to run by name or path")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="the whole command aims to fit in this many minutes (required)")
    p.add_argument("--out", default=None, help="the JSON file to write (required)")
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override for every row (repeatable)")
    p.add_argument("--data-root", default=None,
                   help="sets data.manual_dir to DIR/<dataset name> when that folder exists")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per row (median)")
    p.add_argument("--max-steps", type=int, default=20000, help="cap on timed steps per repeat")
    p.add_argument("--no-twins", action="store_true", help="skip the PyTorch twins")
    p.add_argument("--measure-lock", default=None, metavar="FILE",
                   help="set up under a shared and time under an exclusive lock on FILE, for "
                        "commands run in parallel")
    p.add_argument("--row-seconds", type=float, default=None, metavar="S",
                   help="timed seconds per row, instead of an equal share of the budget")
    p.add_argument("--conv-formulation", choices=FORMULATIONS, default="auto",
                   help="what genjax's convolutions' formulation='auto' means for this command "
                        "(genjax.models.convolution.default_formulation): 'cpu' on a GPU runs "
                        "the CPU formulation there, to compare the two")
    p.add_argument("--cpu-devices", type=int, default=0, metavar="N",
                   help="split the host CPU into N JAX devices (data parallel over the batch), "
                        "each with single-threaded kernels: XLA_FLAGS gets "
                        "'--xla_force_host_platform_device_count=N "
                        "--xla_cpu_multi_thread_eigen=false' and JAX_PLATFORMS=cpu before jax "
                        "is imported (genjax.host_devices, as `genjax train --cpu-devices N`; "
                        "only when run as a script); 0: as the environment says")
    p.add_argument("--report", nargs="+", default=None, metavar="JSON",
                   help="print one table from earlier commands' JSON files; measures nothing")
    args = p.parse_args(argv)
    if args.report:
        return args
    for flag in ("budget_minutes", "out"):
        if getattr(args, flag) is None:
            p.error(f"--{flag.replace('_', '-')} is required (or --report FILES)")
    if not args.families and not args.configs:
        args.families = list(FAMILIES)
    if args.budget_minutes <= 0:
        p.error(f"--budget-minutes must be > 0, got {args.budget_minutes}")
    if args.row_seconds is not None and args.row_seconds <= 0:
        p.error(f"--row-seconds must be > 0, got {args.row_seconds}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.cpu_devices < 0 or args.cpu_devices == 1:
        p.error(f"--cpu-devices must be 0 (as the environment says) or >= 2, got "
                f"{args.cpu_devices}")
    if args.cpu_devices > 1 and jax.device_count() != args.cpu_devices:
        p.error(f"--cpu-devices {args.cpu_devices}: jax has {jax.device_count()} device(s); the "
                "flag takes effect only when benchmarks/run.py is the script run (XLA reads "
                "XLA_FLAGS once, before this check) and only on the CPU backend")
    if args.measure_lock is not None and not Path(args.measure_lock).parent.is_dir():
        p.error(f"--measure-lock {args.measure_lock}: the folder "
                f"{Path(args.measure_lock).parent} does not exist (the lock file is created "
                "there; create the folder or name a file in an existing one, e.g. /tmp)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    with default_formulation(args.conv_formulation):
        return measure_all(args)


def measure_all(args: argparse.Namespace) -> int:
    deadline = _T0 + 60.0 * args.budget_minutes - TAIL_SECONDS
    meta = environment(args)
    try:
        import torch

        torch.set_num_threads(meta["cpu_count"])
        torch.set_flush_denormal(True)  # as XLA's CPU code does
        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:
        meta["torch_threads"] = None
    out = Path(args.out)
    meta["peaks"] = None
    lock = MeasureLock(args.measure_lock)
    rows = [Row(n, [*o, *args.overrides], label, d, args)
            for n, o, label in plan(args) for d in args.dtypes]
    # Phase 1, every row: set-up, compile, twin check, warm-up, calibration (fixed costs).
    for i, row in enumerate(rows):
        log(f"prepare {i + 1}/{len(rows)}: {row.row['label']} [{row.dtype}]")
        row.prepare()
    write_json(out, meta, [r.row for r in rows], complete=False)
    with lock.exclusive(meta):
        log("measuring the matmul peak")
        meta["peaks"] = {d: matmul_peak(d) for d in DTYPES}
        write_json(out, meta, [r.row for r in rows], complete=False)
        # Phase 2: what is left of the budget, shared equally by the rows that are ready.
        ready = [r for r in rows if r.ok]
        floor = max(MIN_ROW_SECONDS, MIN_ROW_FRACTION * 60.0 * args.budget_minutes)
        for i, row in enumerate(ready):
            now = time.perf_counter()
            share = args.row_seconds or max(floor, (deadline - now) / (len(ready) - i))
            log(f"measure {i + 1}/{len(ready)}: {row.row['label']} [{row.dtype}], {share:.0f} s")
            row.measure(now + share, meta["peaks"])
            row.release()
            if row.ok:
                r = row.row
                log(f"  {r['real_loop']['steps_per_s']:.3g} steps/s through the loop, "
                    f"{r['steps_timed']} steps x {r['repeats']}")
            meta["elapsed_s"] = time.perf_counter() - _T0
            write_json(out, meta, [r.row for r in rows], complete=False)
    rows = [r.row for r in rows]
    meta["elapsed_s"] = time.perf_counter() - _T0
    meta["device_peak_bytes_process"] = device_peak_memory()
    write_json(out, meta, rows, complete=True)
    print_table(rows, meta)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
