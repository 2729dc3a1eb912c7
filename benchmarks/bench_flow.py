"""Real NVP throughput: training steps/s and sampling (images or points per second).

    python benchmarks/bench_flow.py                                   # realnvp_digits, realnvp_toy2d
    python benchmarks/bench_flow.py --configs realnvp_mnist --set data.manual_dir=DIR \
        --sample-batches 64 256 --out bench_flow.json

Training rows: the engine's jitted data-parallel step on every visible device (host->device
transfer and the per-step metric fetch included). Sampling rows: ``x = f^{-1}(T eps)`` for a
batch of ``n`` latents, one jitted inverse pass, timed over ``--repeats`` calls after a compile
call, result fetched to the host. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import time

import jax
from _report import TRAIN_HEADER, bench_train_steps, report

from genjax.experiments import load_config
from genjax.train.loop import Trainer


def bench_sampling(name: str, overrides: list[str], batches: list[int], repeats: int) -> list[dict]:
    trainer = Trainer(load_config(name, overrides + ["train.progress=false"]), None)
    method, state = trainer.method, trainer.state
    rows = []
    for n in batches:
        t0 = time.perf_counter()
        method.sample(state, jax.random.key(0), n)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in range(repeats):
            method.sample(state, jax.random.key(r + 1), n)
        elapsed = (time.perf_counter() - t0) / repeats
        rows.append({
            "config": name, "batch": n, "device_kind": jax.devices()[0].device_kind,
            "compile_plus_first_s": round(compile_s, 3), "ms_per_batch": round(1000 * elapsed, 2),
            "samples_per_s": round(n / elapsed, 1),
        })
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["realnvp_digits", "realnvp_toy2d"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--sample-batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default="bench_flow.json")
    args = p.parse_args()
    train = [bench_train_steps(c, args.overrides, args.steps, args.warmup) for c in args.configs]
    sample = [r for c in args.configs
              for r in bench_sampling(c, args.overrides, args.sample_batches, args.repeats)]
    sample_header = ["config", "batch", "device_kind", "compile_plus_first_s", "ms_per_batch",
                     "samples_per_s"]
    report({"train steps": (TRAIN_HEADER, train), "sampling": (sample_header, sample)}, args.out)


if __name__ == "__main__":
    main()
