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

from _report import TRAIN_HEADER, bench_sampling, bench_train_steps, report, sampling_header


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
    translate = [r for c in args.configs for r in bench_sampling(
        c, args.overrides, args.translate_batches, args.repeats, unit="images")]
    report({"train steps": (TRAIN_HEADER, train),
            "translation": (sampling_header("images"), translate)}, args.out)


if __name__ == "__main__":
    main()
