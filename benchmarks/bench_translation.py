"""CycleGAN / StarGAN throughput: training steps/s and translation (images per second).

    python benchmarks/bench_translation.py                       # cyclegan_digits, stargan_digits
    python benchmarks/bench_translation.py --configs cyclegan_mnist stargan_mnist \
        --set data.manual_dir=DIR --translate-batches 64 256 --out bench_translation.json

Training rows: the engine's jitted data-parallel step on every visible device (host->device
transfer and the per-step metric fetch included). One CycleGAN step updates both generators
and both discriminators on ``batch_size / 2`` images per domain; one StarGAN step is
``n_critic`` discriminator updates and one generator update on ``batch_size / n_critic``
images each, so "examples_per_s" counts every image of the global batch once. Translation
rows: the method's ``sample`` (eval images of the first domain through the generator, one
jitted pass per batch, result fetched to the host), timed over ``--repeats`` calls after a
compile call. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import time

import jax
from _report import TRAIN_HEADER, bench_train_steps, report

import genjax.methods.translation  # noqa: F401  (registers cyclegan and stargan)
from genjax.experiments import load_config
from genjax.train.loop import Trainer


def bench_translation(name: str, overrides: list[str], batches: list[int], repeats: int) -> list:
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
            "images_per_s": round(n / elapsed, 1),
        })
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["cyclegan_digits", "stargan_digits"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--translate-batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default="bench_translation.json")
    args = p.parse_args()
    train = [bench_train_steps(c, args.overrides, args.steps, args.warmup) for c in args.configs]
    translate = [r for c in args.configs for r in bench_translation(
        c, args.overrides, args.translate_batches, args.repeats)]
    header = ["config", "batch", "device_kind", "compile_plus_first_s", "ms_per_batch",
              "images_per_s"]
    report({"train steps": (TRAIN_HEADER, train), "translation": (header, translate)}, args.out)


if __name__ == "__main__":
    main()
