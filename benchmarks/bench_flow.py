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

from _report import TRAIN_HEADER, bench_sampling, bench_train_steps, report, sampling_header


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
    report({"train steps": (TRAIN_HEADER, train), "sampling": (sampling_header(), sample)},
           args.out)


if __name__ == "__main__":
    main()
