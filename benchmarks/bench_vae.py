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
import json
import platform
import time

import jax

from genjax.experiments import load_config
from genjax.train.loop import Trainer


def bench(name: str, overrides: list[str], steps: int, warmup: int) -> dict:
    config = load_config(name, overrides + ["train.progress=false"])
    trainer = Trainer(config, None)
    t0 = time.perf_counter()
    trainer.step()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        trainer.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    elapsed = time.perf_counter() - t0
    batch = config.train.batch_size
    return {
        "config": name,
        "batch_size": batch,
        "devices": trainer.mesh.devices.size,
        "device_kind": jax.devices()[0].device_kind,
        "compile_plus_first_step_s": round(compile_s, 3),
        "steps_per_s": round(steps / elapsed, 2),
        "examples_per_s": round(steps * batch / elapsed, 1),
        "ms_per_step": round(1000 * elapsed / steps, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["vae_digits"])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default="bench_vae.json")
    args = p.parse_args()
    rows = [bench(c, args.overrides, args.steps, args.warmup) for c in args.configs]
    header = ["config", "batch_size", "devices", "device_kind", "compile_plus_first_step_s",
              "steps_per_s", "examples_per_s", "ms_per_step"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(" | ".join(str(r[h]) for h in header))
    meta = {"jax": jax.__version__, "python": platform.python_version(),
            "platform": jax.devices()[0].platform, "cpu": platform.processor() or platform.machine()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
