"""Where an accelerator's train step departs from the host CPU's, parameter by parameter.

    python benchmarks/compare_backends.py --configs pixelcnn_binarized_mnist \\
        --data-root ../shared/data --steps 2 --out cmp.json

For each config: one trainer (its data, its initial state), the same state and batches copied
to the default backend's first device and to the host CPU, then ``--steps`` float32 train steps
(``jax.jit(method.train_step)`` at ``"highest"`` matmul precision, as the loop traces them) on
each. Printed and saved per step: every metric on both backends and their relative difference;
and after each step, for every parameter and optimizer leaf, how far the accelerator's update
(``new - old``) is from the CPU's, relative to the CPU update's largest entry, and how many
entries differ in sign. Adam's first update is ``-lr * g / (|g| + eps)``, so a gradient entry at
round-off level (``|g|`` near ``eps``) that one backend computes as 0 and the other as 1e-9
moves that entry by a whole learning rate on one side only: the sign counts find such leaves.

The accelerator's step is compiled with the options the loop uses (``Trainer.compiler_options``:
on GPUs ``xla_gpu_exclude_nondeterministic_ops``, see ``genjax.train.precision``), then those of
``--compiler-option NAME=VALUE``; ``--set train.gpu_exclude_nondeterministic_ops=false`` compiles
it as XLA would by default (how the wrong PixelCNN gradients on an H200 were found).

``--conv-formulation`` (as in ``benchmarks/run.py``) sets what genjax's convolutions'
``formulation="auto"`` means on both sides, so "cpu" runs the CPU formulation on the
accelerator too, and "lax" the accelerator's plain convolutions on the CPU. With only a CPU
(no accelerator) the two sides are the same device, and every difference must be 0: that is
the script's own check.

A diagnostic, not a benchmark: nothing is timed, and nothing in the test suite runs it on an
accelerator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.experiments import load_config
from genjax.models.convolution import FORMULATIONS, default_formulation
from genjax.train.loop import Trainer
from genjax.train.precision import matmul_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import row_overrides  # noqa: E402  (benchmarks/run.py: data root -> manual_dir)

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def leaf_differences(before, after_a, after_b, *, top: int) -> list[dict]:
    """Per leaf of the state: how far update ``a`` (after_a - before) is from update ``b``.

    ``rel`` is max |du_a - du_b| over max |du_b| (0/0 counts as 0); ``sign_flips`` counts
    entries whose updates have opposite signs or where exactly one is zero. The ``top`` leaves
    with the largest ``rel`` are returned, largest first.
    """
    rows = []
    flat_before = jax.tree_util.tree_flatten_with_path(before)[0]
    flat_a = jax.tree_util.tree_leaves(after_a)
    flat_b = jax.tree_util.tree_leaves(after_b)
    for (path, x0), xa, xb in zip(flat_before, flat_a, flat_b, strict=True):
        if np.asarray(x0).dtype.kind != "f" or np.size(x0) == 0:
            continue  # the step counter, rng keys
        x0, xa, xb = (np.asarray(v, np.float64) for v in (x0, xa, xb))
        da, db = xa - x0, xb - x0
        scale = float(np.max(np.abs(db)))
        gap = float(np.max(np.abs(da - db)))
        flips = int(np.sum(np.sign(da) != np.sign(db)))
        rows.append({"leaf": jax.tree_util.keystr(path), "shape": list(x0.shape),
                     "rel": gap / scale if scale > 0 else (0.0 if gap == 0 else float("inf")),
                     "abs": gap, "update_scale": scale, "sign_flips": flips,
                     "entries": int(x0.size)})
    rows.sort(key=lambda r: -r["rel"])
    return rows[:top]


def parse_compiler_options(items: list[str]) -> dict:
    """``["xla_gpu_autotune_level=0", ...]`` -> ``{"xla_gpu_autotune_level": 0}`` (ints and
    true/false converted; XLA's debug options by name, applied to the accelerator's step only)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--compiler-option {item!r}: expected NAME=VALUE")
        low = value.lower()
        out[key] = (low == "true") if low in ("true", "false") else (
            int(value) if value.lstrip("-").isdigit() else value)
    return out


def compare(name: str, args) -> dict:
    overrides = row_overrides(name, list(args.set), "float32", args.data_root)
    config = load_config(name, overrides)
    log(f"{name}: building the trainer")
    trainer = Trainer(config, None)
    accel = jax.devices()[0]
    host = jax.devices("cpu")[0]
    batches = [trainer.host_batch(s) for s in range(args.steps)]
    state0 = jax.device_get(trainer.state)
    step = jax.jit(trainer.method.train_step)
    sides = {"accelerator": accel, "cpu": host}
    result = {"config": name, "overrides": overrides, "accelerator": str(accel),
              "accelerator_kind": getattr(accel, "device_kind", accel.platform),
              "conv_formulation": args.conv_formulation, "steps": []}
    states = {k: jax.device_put(state0, d) for k, d in sides.items()}
    # What the loop compiles with (on GPUs: deterministic algorithms only), then --compiler-option;
    # --set train.gpu_exclude_nondeterministic_ops=false gives XLA's own choice.
    options = {**trainer.compiler_options, **parse_compiler_options(args.compiler_option)}
    compiled = None
    if options:
        with matmul_precision("float32"), default_formulation(args.conv_formulation):
            lowered = step.lower(states["accelerator"], jax.device_put(batches[0], accel))
        try:
            compiled = lowered.compile(options)
        except Exception as err:  # e.g. "No such compile option": XLA names the option
            raise SystemExit(f"compiling {name} with XLA options {options} failed: "
                             f"{str(err).splitlines()[0]}") from None
    result["compiler_options"] = options
    for s, batch in enumerate(batches):
        before = jax.device_get(states["cpu"])
        metrics = {}
        for k, d in sides.items():
            run = compiled if (k == "accelerator" and compiled is not None) else step
            with matmul_precision("float32"), default_formulation(args.conv_formulation):
                states[k], m = run(states[k], jax.device_put(batch, d))
            metrics[k] = {n: float(np.asarray(v)) for n, v in jax.device_get(m).items()
                          if np.ndim(v) == 0}
        diff = {}
        for n, b in metrics["cpu"].items():
            a = metrics["accelerator"].get(n)
            if a is not None:
                diff[n] = abs(a - b) / abs(b) if b != 0 else abs(a - b)
        leaves = leaf_differences(before, jax.device_get(states["accelerator"]),
                                  jax.device_get(states["cpu"]), top=args.top)
        result["steps"].append({"step": s, "metrics": metrics, "metric_rel_diff": diff,
                                "leaves": leaves})
        log(f"{name} step {s}:")
        for n in sorted(diff):
            log(f"    {n:>28s}  accel {metrics['accelerator'][n]: .8g}  "
                f"cpu {metrics['cpu'][n]: .8g}  rel {diff[n]:.2e}")
        log("    leaves whose updates differ most (rel = max|du_acc - du_cpu| / max|du_cpu|):")
        for r in leaves:
            log(f"      {r['leaf'][:90]:<90s} {str(r['shape']):>18s} rel {r['rel']:.2e} "
                f"sign flips {r['sign_flips']}/{r['entries']} |du| {r['update_scale']:.2e}")
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", required=True)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--top", type=int, default=12, help="leaves listed per step")
    p.add_argument("--data-root", default=None,
                   help="folder with one subfolder of original files per dataset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--conv-formulation", default="auto", choices=FORMULATIONS)
    p.add_argument("--compiler-option", action="append", default=[], metavar="NAME=VALUE",
                   help="an XLA option for compiling the accelerator's step only, e.g. "
                        "xla_gpu_autotune_level=0 (repeatable)")
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be at least 1 (got {args.steps})")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        p.error(f"--out {args.out}: the folder does not exist")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    jnp.zeros(())  # initialise the backends before timing the log
    results = [compare(name, args) for name in args.configs]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
