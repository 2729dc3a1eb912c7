"""Autoregressive sampling speed: naive vs cached PixelCNN sampling vs the multiscale sampler.

    python benchmarks/bench_ar_sampling.py                         # 8x8 and 16x16, batch 1/16/64
    python benchmarks/bench_ar_sampling.py --sizes 16 32 --batches 1 16 256 --out ar.json

For each image size ``H x H`` (C = 1 Bernoulli pixels by default, ``--channels 3
--likelihood categorical`` for 256-way RGB) and batch size, three samplers draw a batch from
randomly initialised models of the same width (``--features``, ``--layers``):

* ``naive``: PixelCNN, one full network pass per sub-pixel (H W C passes over the whole image);
* ``cached``: the same PixelCNN and the same sample for the same key, computing one position per
  step (Ramachandran et al. 2017);
* ``multiscale``: the parallel multiscale PixelCNN (Reed et al. 2017) with a 4x4 base image and
  ``log2(H / 4)`` upscalings; its sequential network evaluations are listed.

Each entry is the median wall time of ``--repeats`` jitted calls after one compile call, the
result fetched to the host; samples/s and the speed-up over naive at the same size and batch
are derived from it. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import jax
import jax.numpy as jnp
from _report import report

from genjax.methods.autoregressive import AutoregressiveConfig, AutoregressiveMethod
from genjax.models.sampling import multiscale_num_evaluations
from genjax.train.config import Config, DataConfig, TrainConfig
from genjax.train.method import DataSpec
from genjax.train.state import TrainState


def _method(architecture, shape, likelihood, features, layers):
    num_bits = 1 if likelihood == "bernoulli" else 8
    cfg = AutoregressiveConfig(
        architecture=architecture, likelihood=likelihood, features=features, num_layers=layers,
        output_features=2 * features, base_features=features, num_blocks=2,
        num_scales=max(1, int(math.log2(shape[0] // 4))),
    )
    config = Config(
        method="autoregressive", model=cfg,
        data=DataConfig(preprocess="binary" if likelihood == "bernoulli" else "integer"),
        train=TrainConfig(num_steps=1),
    )
    method = AutoregressiveMethod(config, DataSpec(shape, num_bits, None, "bench"))
    models = method.init(jax.random.key(0), {"image": jnp.zeros((1, *shape), jnp.uint8)})
    return method, TrainState.create(jax.random.key(1), models)


def _time(method, state, batch, sampler, repeats):
    t0 = time.perf_counter()
    method.sample_values(state, jax.random.key(0), batch, sampler=sampler)
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        method.sample_values(state, jax.random.key(r + 1), batch, sampler=sampler)
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--likelihood", default="bernoulli", choices=["bernoulli", "categorical"])
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samplers", nargs="+", default=["naive", "cached", "multiscale"])
    p.add_argument("--out", default="bench_ar_sampling.json")
    args = p.parse_args()
    if args.likelihood == "bernoulli" and args.channels != 1:
        p.error("--likelihood bernoulli is for one channel; use --likelihood categorical")
    rows = []
    for size in args.sizes:
        if size < 8 or size & (size - 1):
            p.error(f"--sizes must be powers of two >= 8, got {size}")
        shape = (size, size, args.channels)
        models = {
            "naive": _method("pixelcnn", shape, args.likelihood, args.features, args.layers),
            "multiscale": _method("multiscale", shape, args.likelihood, args.features,
                                  args.layers),
        }
        models["cached"] = models["naive"]
        s = models["multiscale"][0].config.model.num_scales
        evaluations = {
            "naive": size * size * args.channels, "cached": size * size * args.channels,
            "multiscale": multiscale_num_evaluations(size, size, args.channels, s),
        }
        for batch in args.batches:
            base = None
            for sampler in args.samplers:
                method, state = models[sampler]
                compile_s, sec = _time(method, state, batch, sampler, args.repeats)
                base = sec if sampler == "naive" else base
                rows.append({
                    "size": f"{size}x{size}x{args.channels}", "batch": batch, "sampler": sampler,
                    "sequential_steps": evaluations[sampler],
                    "compile_s": round(compile_s, 2), "seconds": round(sec, 4),
                    "samples_per_s": round(batch / sec, 1),
                    "speedup_vs_naive": round(base / sec, 1) if base else "",
                })
                print(rows[-1], flush=True)
    header = ["size", "batch", "sampler", "sequential_steps", "compile_s", "seconds",
              "samples_per_s", "speedup_vs_naive"]
    report({"sampling": (header, rows)}, args.out)


if __name__ == "__main__":
    main()
