"""Training-step throughput of the VAE configs: compile time, steps/s, examples/s.

    python benchmarks/bench_vae.py                       # vae_digits on every visible device
    python benchmarks/bench_vae.py --configs vae_digits vae_mnist --steps 200 \
        --set data.manual_dir=../shared/data/mnist --out bench_vae.json

Each row: one config on the device mesh the engine builds (all devices). The timed region is
``--steps`` jitted steps after ``--warmup`` steps, including host->device batch transfer and the
per-step metric fetch that the real loop does. Reports, never asserts.
"""

from __future__ import annotations

import argparse

from _report import TRAIN_HEADER, bench_train_steps, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["vae_digits"])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default="bench_vae.json")
    args = p.parse_args()
    rows = [bench_train_steps(c, args.overrides, args.steps, args.warmup) for c in args.configs]
    report({"train steps": (TRAIN_HEADER, rows)}, args.out)


if __name__ == "__main__":
    main()
